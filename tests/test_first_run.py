"""The first-run experience: every dead end says what to do next; colours and progress bars
only on a terminal; shell completion works."""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ArchiveFixture, invoke


def _dead_end(res, *needles: str) -> None:
    assert res.exit_code == 2, (res.stdout, res.stderr)
    assert res.stderr.startswith("archiver: error:") and res.stderr.count("\n") == 1, res.stderr
    for n in needles:
        assert n in res.stderr, res.stderr


def test_no_archive_says_run_init(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _dead_end(invoke("list"), "run `archiver init")
    _dead_end(invoke("--archive", str(tmp_path / "nowhere"), "verify"), "archiver init")


def test_no_key_says_run_keys_generate(tmp_path, arabic_dir):
    root = tmp_path / "fresh"
    assert invoke("init", str(root)).exit_code == 0
    _dead_end(invoke("--archive", str(root), "ingest", str(arabic_dir)), "archiver keys generate NAME")


def test_key_of_the_wrong_role_says_which(archive: ArchiveFixture, arabic_dir):
    archive.ok("keys", "generate", "audrey", "--role", "auditor")
    _dead_end(archive.run("--key", "audrey", "ingest", str(arabic_dir)), "role auditor")
    _dead_end(archive.run("--key", "alice", "audit"), "auditor")


def test_locked_archive_says_who_and_how_to_wait(archive: ArchiveFixture, arabic_dir):
    from archiver import Archive

    with Archive.open(archive.root).writer_lock():
        res = archive.run("ingest", str(arabic_dir))
    _dead_end(res, "locked by PID", "--wait")


def _on_a_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal; returns (exit code, what it showed)."""
    exe = shutil.which("archiver")
    assert exe
    master, slave = pty.openpty()
    proc = subprocess.Popen([exe, *args], stdout=slave, stderr=slave, stdin=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def many(archive: ArchiveFixture, tmp_path: Path) -> tuple[ArchiveFixture, Path, dict[str, str]]:
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(30):
        (folder / f"{i:02d}.txt").write_text(f"نص رقم {i}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "ARCHIVER_ARCHIVE")}
    env["ARCHIVER_KEY_DIR"] = str(archive.keydir)
    env["TERM"] = "xterm"
    return archive, folder, env


def test_progress_and_colours_on_a_terminal(many):
    archive, folder, env = many
    code, shown = _on_a_terminal(["--archive", str(archive.root), "ingest", str(folder)], env)
    assert code == 0, shown
    assert "ingesting" in shown and "30/30" in shown  # the bar reached the end
    code, shown = _on_a_terminal(["--archive", str(archive.root), "verify"], env)
    assert code == 0 and "verifying" in shown and "\x1b[32m" in shown  # OK in green
    code, shown = _on_a_terminal(["--archive", str(archive.root), "cat", "zz"], env)
    assert code == 2 and "\x1b[31m" in shown  # the error prefix in red


def test_no_colour_with_no_color_and_nothing_when_piped(many):
    archive, folder, env = many
    code, shown = _on_a_terminal(
        ["--archive", str(archive.root), "ingest", str(folder)], {**env, "NO_COLOR": "1"}
    )
    assert code == 0 and "\x1b[3" not in shown
    code, shown = _on_a_terminal(["--archive", str(archive.root), "verify"], {**env, "NO_COLOR": "1"})
    assert code == 0 and "\x1b[" not in shown.replace("\x1b[?25l", "").replace("\x1b[?25h", "")
    # piped (not a terminal): no bar, no colour, just the answer
    res = subprocess.run(
        ["archiver", "--archive", str(archive.root), "verify"], capture_output=True, text=True, env=env
    )
    assert res.returncode == 0 and "verifying" not in res.stderr and "\x1b[" not in res.stdout + res.stderr
    # --json on a terminal: no bar either (the output is for a program)
    code, shown = _on_a_terminal(["--archive", str(archive.root), "verify", "--json"], env)
    assert code == 0 and "verifying" not in shown


def test_shell_completion(tmp_path):
    env = {**os.environ, "_ARCHIVER_COMPLETE": "bash_source"}
    res = subprocess.run(["archiver"], capture_output=True, text=True, env=env)
    assert res.returncode == 0 and "_archiver_completion" in res.stdout
    env = {
        **os.environ,
        "_ARCHIVER_COMPLETE": "bash_complete",
        "COMP_WORDS": "archiver ver",
        "COMP_CWORD": "1",
    }
    res = subprocess.run(["archiver"], capture_output=True, text=True, env=env)
    assert "verify" in res.stdout
    env["COMP_WORDS"], env["COMP_CWORD"] = "archiver export ", "2"
    res = subprocess.run(["archiver"], capture_output=True, text=True, env=env)
    assert "bagit" in res.stdout and "wacz" in res.stdout


def test_every_command_is_loaded_by_name_and_none_is_missing():
    """Commands load when named (start-up speed): the name-to-module map must cover exactly
    what the command modules define, and each name must load its command."""
    import importlib
    import pkgutil

    import archiver.cli as cli_pkg
    from archiver.cli import COMMANDS, cli

    for info in pkgutil.iter_modules(cli_pkg.__path__):
        importlib.import_module(f"archiver.cli.{info.name}")
    assert set(cli.commands) == set(COMMANDS)
    for name, module in COMMANDS.items():
        command = cli.commands[name]
        defined_in = (command.callback.__module__ if command.callback else None) or module
        assert defined_in == f"archiver.cli.{module}", name
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, archiver.cli; print(sorted(m for m in sys.modules if m.startswith('archiver.')))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "archiver.verify" not in res.stdout and "archiver.cli.verify_cmd" not in res.stdout, res.stdout


#: modules ``verify DOC`` and ``log prove DOC`` have no use for, each costing milliseconds of
#: their start-up: x509 (a 9 ms regex at import), an HTTP client, warcio, and cryptography's
#: serialization package (its SSH and cipher modules: 28-50 ms; keys are read from raw bytes)
#: (cryptography as a whole: signatures are checked by libsodium from the keys' raw bytes;
#: ctypes and subprocess: libc is called only by commands that write)
UNUSED = ("cryptography", "http.client", "warcio", "ctypes", "subprocess")


def test_verifying_a_document_loads_no_module_it_does_not_use(tmp_path):
    """``verify DOC`` is start-up bound (docs/performance.md): in an archive without time-stamp
    tokens it must not import any of ``UNUSED``."""
    import shutil

    from conftest import REPO

    for part in ("manifests", "store"):
        shutil.copytree(REPO / part, tmp_path / part)
    doc = sorted((tmp_path / "manifests" / "events").glob("*/*.json"))[0].name[:32]
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "import importlib, sys\n"
            "from archiver.archive import Archive\n"
            "report = importlib.import_module('archiver.verify').verify(Archive.open(sys.argv[1]), [sys.argv[2]])\n"
            f"print(len(report.problems), [m for m in {UNUSED!r} if m in sys.modules])",
            str(tmp_path),
            doc,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert res.stdout.split() == ["0", "[]"], res.stdout


@pytest.mark.parametrize("command", [["verify"], ["verify", "--checkpoint", "KEPT"], ["log", "prove"]])
def test_the_start_up_bound_commands_load_no_module_they_do_not_use(
    archive: ArchiveFixture, arabic_dir: Path, tmp_path: Path, command: list[str]
) -> None:
    """The same for the commands as run: ``archiver verify DOC`` (also an auditor's, against
    a kept checkpoint, whose signature is checked) and ``archiver log prove DOC``. The
    command line imports more than the API (the key store, for commands that sign), and a
    checkpoint's signer is found by a key id computed from the key's raw bytes."""
    [doc] = archive.ingest(arabic_dir / "a.txt")
    kept = tmp_path / "kept-checkpoint.txt"
    kept.write_text(archive.ok("log", "checkpoint").stdout)
    command = [str(kept) if part == "KEPT" else part for part in command]
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from archiver.cli import cli\n"
            "try:\n"
            "    cli.main(sys.argv[1:], prog_name='archiver')\n"
            "except SystemExit as e:\n"
            "    print('exit', e.code, file=sys.stderr)\n"
            f"print([m for m in {UNUSED!r} if m in sys.modules], file=sys.stderr)",
            "--archive",
            archive.location,
            *command,
            doc,
        ],
        capture_output=True,
        text=True,
    )
    assert res.stderr.splitlines()[-2:] == ["exit 0", "[]"], res.stderr

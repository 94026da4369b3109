"""The C accelerator under AddressSanitizer and UndefinedBehaviorSanitizer.

``archiver/_fasthash.c`` reads what an auditor's copy holds: WARC members, manifests'
JSON, texts. A read past a buffer there would not raise an exception; it would return
wrong bytes or crash. So the same source is built here with both sanitizers, into a copy
of the package, and run on (a) ``fuzz_accel.py``'s seeded hostile inputs to every entry
point and (b) ``test_warc_whole.py``, which reads damaged and hostile WARC members both
ways and compares the results with the streaming reader's. Any finding ends the process
with a report on stderr, which the assertion shows. (``test_fasthash.py`` would take a
minute and a half here, its property tests' Python references slowed by the sanitizers
tenfold; the harness calls the same functions with harder inputs.)

Needs gcc with its sanitizer runtimes (Debian: gcc pulls in libasan and libubsan) and the
headers the normal build needs; where CI requires the accelerator (ARCHIVER_REQUIRE_ACCEL),
a missing piece fails instead of skipping.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import REPO

HERE = Path(__file__).resolve().parent
DEFLATE = Path("/usr/include/libdeflate.h").exists()
SANITIZE = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer"]


def _runtime(name: str) -> str | None:
    """The path of gcc's ``name`` runtime library, or None."""
    if shutil.which("gcc") is None:
        return None
    found = subprocess.run(["gcc", f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
    return found if os.path.isabs(found) and os.path.exists(found) else None


def _missing() -> str | None:
    if shutil.which("gcc") is None:
        return "gcc is not installed"
    if not Path("/usr/include/openssl/sha.h").exists():
        return "OpenSSL's headers are not installed (libssl-dev)"
    for lib in ("libasan.so", "libubsan.so"):
        if _runtime(lib) is None:
            return f"gcc's {lib} is not installed"
    return None


@pytest.fixture(scope="module")
def sanitized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process that imports a sanitized build of a copy of the package."""
    missing = _missing()
    if missing is not None:
        if os.environ.get("ARCHIVER_REQUIRE_ACCEL"):
            pytest.fail(f"cannot build the sanitized accelerator: {missing}")
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("sanitized")
    shutil.copytree(
        REPO / "archiver", root / "archiver", ignore=shutil.ignore_patterns("*.so", "__pycache__")
    )
    target = root / "archiver" / f"_fasthash{sysconfig.get_config_var('EXT_SUFFIX')}"
    build = [
        "gcc",
        "-shared",
        "-fPIC",
        "-O1",
        "-g",
        *SANITIZE,
        "-Wno-deprecated-declarations",
        f"-I{sysconfig.get_paths()['include']}",
        *(["-DHAVE_LIBDEFLATE=1"] if DEFLATE else []),
        str(REPO / "archiver" / "_fasthash.c"),
        "-o",
        str(target),
        "-lcrypto",
        "-lz",
        *(["-ldeflate"] if DEFLATE else []),
    ]
    made = subprocess.run(build, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr[-3000:]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LD_PRELOAD")}
    env.update(
        PYTHONPATH=str(root),
        # the runtimes first of all: Python itself is not built with them
        LD_PRELOAD=f"{_runtime('libasan.so')} {_runtime('libubsan.so')}",
        # (Python frees little at exit by design: leaks are not what is looked for here)
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:exitcode=86",
        UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=87",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONMALLOC="malloc",  # (every object in its own block, for ASan to fence)
    )
    probe = subprocess.run(
        [sys.executable, "-c", "import archiver._fasthash as f; print(f.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert probe.stdout.strip() == str(target), probe.stderr[-3000:]
    env["SANITIZED_ROOT"] = str(root)
    return env


def _run(env: dict[str, str], *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=env["SANITIZED_ROOT"],
        timeout=timeout,
    )


def test_hostile_inputs_to_every_entry_point(sanitized):
    done = _run(sanitized, str(HERE / "fuzz_accel.py"), "7", "3000")
    assert done.returncode == 0 and done.stdout.rstrip().endswith("done"), done.stderr[-6000:]
    assert "ERROR: AddressSanitizer" not in done.stderr and "runtime error" not in done.stderr


def test_damaged_warc_members_read_both_ways(sanitized):
    test = str(HERE / "test_warc_whole.py")
    done = _run(sanitized, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", "--rootdir", str(HERE), test)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-6000:])
    assert " passed" in done.stdout and " failed" not in done.stdout
    assert "ERROR: AddressSanitizer" not in done.stderr and "runtime error" not in done.stderr

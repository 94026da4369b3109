"""Every shell command of the README's walk-throughs runs, in order, in a fresh folder."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from conftest import REPO


def walkthrough_script() -> str:
    text = (REPO / "README.md").read_text("utf-8")
    section = text[text.index("## Walk-throughs") : text.index("## Using it")]
    blocks = re.findall(r"```sh\n(.*?)```", section, flags=re.S)
    assert len(blocks) >= 3, "the walk-throughs lost their shell blocks"
    return "\n".join(blocks)


def test_readme_walkthroughs_run_as_written(tmp_path):
    assert shutil.which("archiver"), "the archiver console script is not installed"
    for sub in ("examples", "tools"):
        shutil.copytree(REPO / sub, tmp_path / sub)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCHIVER_")}
    res = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough_script()],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert "OK: no problems found" in out  # verify, and verify of the bag
    assert "OK" in out.splitlines()  # the standalone verifier's verdict
    assert "documents checked: pass" in out
    assert not (tmp_path / "ALERT.json").exists()
    # what the story left behind
    assert (tmp_path / "evidence-bag" / "bagit.txt").is_file()
    assert (tmp_path / "kept-checkpoint.txt").read_text().startswith("archiver/")
    assert "transferred" in out and "accepted" in out and "edited" in out

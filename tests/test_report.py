"""The auditor's HTML report, rendered by a real headless Chromium."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, ArchiveFixture
from tamper import flip_byte, random_arabic

pytestmark = pytest.mark.backends

ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

PROBE = """<script>
const dirs = [...document.querySelectorAll('.title')].map(e => [e.textContent, getComputedStyle(e).direction]);
const r = {titles: dirs, timelines: document.querySelectorAll('svg.timeline').length,
  problems: document.querySelectorAll('tr.problem').length,
  chart: !!document.querySelector('#coverage-chart polyline'),
  timelineWidth: document.querySelector('svg.timeline').getBoundingClientRect().width,
  status: document.querySelector('#status').textContent,
  checkpoint: document.querySelector('#checkpoint').textContent};
document.body.setAttribute('data-probe', JSON.stringify(r));
</script>"""


def _chromium(*args: str, user_dir: Path) -> subprocess.CompletedProcess[str]:
    if CHROMIUM is None:
        if os.environ.get("ARCHIVER_REQUIRE_CHROMIUM"):
            pytest.fail("chromium is required here (ARCHIVER_REQUIRE_CHROMIUM is set) but not installed")
        pytest.skip("chromium is not installed (Debian package chromium); CI installs it")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={user_dir}",
    ]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def reported(archive: ArchiveFixture, tmp_path: Path) -> tuple[ArchiveFixture, Path]:
    archive.ok("keys", "generate", "audrey", "--role", "auditor")
    titles = ["صور قيصر: شهادة أمام الكونغرس", "Caesar photographs: a report", "تسريبات صور قيصر"]
    for i, title in enumerate(titles):
        p = tmp_path / f"doc{i}.txt"
        p.write_text(random_arabic(i, 200), encoding="utf-8")
        (tmp_path / f"doc{i}.txt.meta.json").write_text(json.dumps({"title": title}), encoding="utf-8")
        archive.ok("--key", "alice", "ingest", str(p))
    archive.ok("--key", "audrey", "audit", "--max-bytes", "1")
    archive.ok("--key", "audrey", "audit")
    # one open problem: a document whose WARC record is damaged
    victim = archive.ok("list", "--json").json()[0]["document"]  # type: ignore[index]
    m = archive.ok("show", victim, "--json").json()
    flip_byte(archive.files, "store/" + m["storage"]["warc_file"], m["storage"]["offset"] + 40)  # type: ignore[index]
    out = tmp_path / "report.html"
    archive.ok("report", "--html", str(out))
    return archive, out


def test_report_is_self_contained(reported):
    _, out = reported
    text = out.read_text("utf-8")
    assert not re.search(r"<(script|link|img|iframe)\b", text)
    assert not re.search(r"\b(src|href)=", text)
    assert re.findall(r"https?://[^\"' ]+", text) == ["http://www.w3.org/2000/svg"] * text.count("<svg")
    assert 'dir="auto"' in text and "صور قيصر" in text


def test_report_renders_in_chromium(reported, tmp_path):
    archive, out = reported
    probe = tmp_path / "probe.html"
    probe.write_text(out.read_text("utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    res = _chromium("--dump-dom", probe.as_uri(), user_dir=tmp_path / "chrome")
    m = re.search(r'data-probe="([^"]*)"', res.stdout)
    assert m, res.stderr[-2000:]
    r = json.loads(html.unescape(m.group(1)))
    assert r["timelines"] == 3 and r["chart"] and r["timelineWidth"] > 100
    assert r["problems"] >= 1 and "open problem" in r["status"]
    assert r["checkpoint"].startswith("archiver/")
    directions = dict(r["titles"])
    assert directions["صور قيصر: شهادة أمام الكونغرس"] == "rtl"  # Arabic titles render right to left
    assert directions["تسريبات صور قيصر"] == "rtl"
    assert directions["Caesar photographs: a report"] == "ltr"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "report.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1200,1800", out.as_uri(), user_dir=tmp_path / "c2")
    assert shot.is_file() and shot.stat().st_size > 10_000, res.stderr[-2000:]
    assert archive.verify_codes() != set()  # the report did not hide the problem it shows

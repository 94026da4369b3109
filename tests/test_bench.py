"""bench/caesar.py runs end to end at a tiny size and reports what bench/README.md and
docs/performance.md say it reports. Figures are printed, never asserted on: only the
report's shape and its arithmetic are checked."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def run_caesar(tmp_path, *args: str) -> dict:  # type: ignore[type-arg]
    out = tmp_path / "caesar.json"
    res = subprocess.run(
        [sys.executable, str(REPO / "bench" / "caesar.py"), "--docs", "12", *args, "--json", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "verify / bagit validate" in res.stdout
    return json.loads(out.read_text("utf-8"))  # type: ignore[no-any-return]


def test_each_step_reports_its_cpu_time_and_the_time_stolen_and_pairs_their_ratio(tmp_path):
    r = run_caesar(tmp_path, "--large-mb", "1", "--pairs", "2")
    steps = r["steps"]
    assert {"ingest", "verify", "bagit make_bag", "bagit validate", "hashing floor"} <= set(steps)
    for name, step in steps.items():
        assert step["seconds"] > 0 and step["cpu_seconds"] >= 0 and step["stolen_seconds"] >= 0, name
        assert step["exit"] == 0, name  # (a verify that found problems exits 1)
    pairs = r["verify_validate_pairs"]
    assert len(pairs) == 2
    for p in pairs:
        assert p["ratio"] == round(p["verify"]["seconds"] / p["validate"]["seconds"], 3)
    ratios = sorted(p["ratio"] for p in pairs)
    assert r["ratios"]["verify / validate, pairs median"] == round((ratios[0] + ratios[1]) / 2, 2)
    large = r["large_file"]
    assert large["mb"] == 1 and large["ingest_stolen_seconds"] >= 0 and large["verify_stolen_seconds"] >= 0


def test_no_pairs_means_no_median(tmp_path):
    r = run_caesar(tmp_path, "--large-mb", "0", "--pairs", "0")
    assert r["verify_validate_pairs"] == [] and "verify / validate, pairs median" not in r["ratios"]
    assert "large_file" not in r


def test_flat_rate_reports_each_sizes_rate_and_cpu_per_document(tmp_path):
    out = tmp_path / "flat.json"
    sizes = ["--small", "6", "--large", "12", "--more", "3"]
    res = subprocess.run(
        [sys.executable, str(REPO / "bench" / "flat_rate.py"), *sizes, "--json", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    r = json.loads(out.read_text("utf-8"))
    steps, cpu = r["steps"], r["cpu_ms_per_doc"]
    documents = {
        "ingest small": 6,
        "ingest large": 12,
        "ingest 3 more into small": 3,
        "ingest 3 more into large": 3,
    }
    assert set(steps) == set(cpu) == set(documents)
    for name, n in documents.items():
        assert steps[name]["exit"] == 0, name
        assert cpu[name] == round(steps[name]["cpu_seconds"] * 1000 / n, 3), name
    assert r["ratios"]["CPU per document, large / small"] == round(
        cpu["ingest large"] / cpu["ingest small"], 3
    )
    assert r["ratios"]["large / small, whole ingest"] == round(
        (12 / steps["ingest large"]["seconds"]) / (6 / steps["ingest small"]["seconds"]), 3
    )
    assert "CPU ms/doc" in res.stdout

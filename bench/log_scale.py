"""Does a large log slow ingest? Appends and real ingests at 1,000 and 1,000,000 leaves.

Usage:  python bench/log_scale.py [--big 1000000] [--docs 300] [--json out.json]

Prints a table; timings are wall-clock on this machine (no test asserts on them).
The big log is prefilled with synthetic leaves: ingest never reads old entries,
only O(log n) tree nodes, which is what is being measured.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from caesar import generate  # the same seeded corpus as bench/caesar.py

from archiver import Archive, collect, ingest
from archiver.tlog import Log


def prefill(log: Log, n: int) -> None:
    batch = 100_000
    for start in range(0, n, batch):
        log.append(
            (f"manifests/events/zz/synthetic-{i:09d}.json", i.to_bytes(8, "big"))
            for i in range(start, min(n, start + batch))
        )


def append_rate(log: Log, leaves: int = 2000, per_batch: int = 20) -> float:
    t = time.perf_counter()
    for b in range(leaves // per_batch):
        log.append((f"manifests/events/yy/x-{b}-{i}.json", os.urandom(600)) for i in range(per_batch))
    return leaves / (time.perf_counter() - t)


def ingest_rate(root: Path, texts: Path, docs: int, prefill_to: int) -> float:
    os.environ["ARCHIVER_KEY_DIR"] = str(root / "keys")
    archive = Archive.init(root / "archive")
    archive.generate_key("bench", "archivist", passphrase=None)
    if prefill_to:
        prefill(Log(archive.layout.log), prefill_to)
    key = archive.signing_key("bench", lambda n: None, role="archivist")
    files = sorted(texts.glob("*.txt"))[:docs]
    t = time.perf_counter()
    for i in range(0, len(files), 50):  # commands of 50 documents, each fsynced and checkpointed
        ingest(archive, collect([str(f) for f in files[i : i + 50]], {}), key)
    return len(files) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--small", type=int, default=1_000)
    ap.add_argument("--docs", type=int, default=300)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="archiver-bench-"))
    try:
        texts = work / "texts"
        generate(texts, args.docs, seed=7)  # bench/caesar.py's corpus generator
        results = {}
        for label, n in (("small", args.small), ("big", args.big)):
            log = Log(work / f"log-{label}")
            t = time.perf_counter()
            prefill(log, n)
            fill = time.perf_counter() - t
            results[label] = {
                "leaves": n,
                "prefill_seconds": round(fill, 2),
                "append_leaves_per_s": round(append_rate(log)),
                "ingest_docs_per_s": round(ingest_rate(work / f"ingest-{label}", texts, args.docs, n), 1),
            }
            shutil.rmtree(work / f"log-{label}")
        s, b = results["small"], results["big"]
        results["ratio_append"] = round(b["append_leaves_per_s"] / s["append_leaves_per_s"], 3)
        results["ratio_ingest"] = round(b["ingest_docs_per_s"] / s["ingest_docs_per_s"], 3)
        results["machine"] = (
            f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
        )
        print(f"{'log size':>12} {'append leaves/s':>16} {'ingest docs/s':>14}")
        for label in ("small", "big"):
            r = results[label]
            print(f"{r['leaves']:>12,} {r['append_leaves_per_s']:>16,} {r['ingest_docs_per_s']:>14}")
        print(f"big/small: append {results['ratio_append']:.3f}, ingest {results['ratio_ingest']:.3f}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

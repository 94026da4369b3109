"""Is the cost per document flat as the archive grows? Ingest at 10,000 and at 200,000 documents.

Usage:  python bench/flat_rate.py [--small 10000] [--large 200000] [--json out.json]

Generates LARGE seeded Arabic-like texts with sidecars (bench/caesar.py's generator),
then, each in its own process with its peak RSS: ingests the first SMALL of them into
a new archive, and all LARGE into another, one command each (durable, as in
bench/caesar.py); then ingests 1,000 more documents into each of the two archives,
which measures the rate of a command at either archive size. Prints documents per
second, CPU milliseconds per document (less moved by the host's moment than wall time)
and the ratios (above 1: faster per document at the larger size); writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from caesar import deployed_env, generate, timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=200_000)
    ap.add_argument("--more", type=int, default=1_000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="archiver-flat-"))
    py = sys.executable
    arch = [py, "-m", "archiver"]
    env = deployed_env({**os.environ, "ARCHIVER_KEY_DIR": str(work / "keys")})
    env.pop("ARCHIVER_KEY", None)
    env.pop("ARCHIVER_ARCHIVE", None)
    r: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "small": args.small,
        "large": args.large,
    }
    try:
        texts = work / "texts"
        generate(texts, args.large + args.more)
        names = sorted(p.name for p in texts.iterdir() if not p.name.endswith(".meta.json"))
        folders = {"small": work / "small", "large": work / "large", "more": work / "more"}
        for f in folders.values():
            f.mkdir()
        for i, name in enumerate(names):
            target = "more" if i >= args.large else "large"
            for n in (name, name + ".meta.json"):
                os.link(texts / n, folders[target] / n)
                if target == "large" and i < args.small:
                    os.link(texts / n, folders["small"] / n)
        os.sync()
        steps: dict[str, dict[str, float]] = {}
        docs: dict[str, int] = {}  # documents each step ingests
        for size in ("small", "large"):
            root = str(work / f"archive-{size}")
            timed([*arch, "init", root], env)
            timed([*arch, "--archive", root, "keys", "generate", f"k-{size}"], env)
            steps[f"ingest {size}"] = timed(
                [*arch, "--archive", root, "--key", f"k-{size}", "ingest", str(folders[size])], env
            )
            docs[f"ingest {size}"] = getattr(args, size)
            steps[f"ingest {args.more} more into {size}"] = timed(
                [*arch, "--archive", root, "--key", f"k-{size}", "ingest", str(folders["more"])], env
            )
            docs[f"ingest {args.more} more into {size}"] = args.more
        rate_small = args.small / steps["ingest small"]["seconds"]
        rate_large = args.large / steps["ingest large"]["seconds"]
        more_small = args.more / steps[f"ingest {args.more} more into small"]["seconds"]
        more_large = args.more / steps[f"ingest {args.more} more into large"]["seconds"]
        r["steps"] = steps
        r["docs_per_s"] = {
            f"ingest of {args.small:,}": round(rate_small, 1),
            f"ingest of {args.large:,}": round(rate_large, 1),
            f"{args.more:,} more, into {args.small:,}": round(more_small, 1),
            f"{args.more:,} more, into {args.large:,}": round(more_large, 1),
        }
        # CPU per document as well: the host's moment moves wall time between two
        # commands minutes apart far more than it moves the work done
        cpu_ms = {name: round(v["cpu_seconds"] * 1000 / docs[name], 3) for name, v in steps.items()}
        r["cpu_ms_per_doc"] = cpu_ms
        r["ratios"] = {
            # above 1: faster per document at the larger size
            "large / small, whole ingest": round(rate_large / rate_small, 3),
            f"large / small, {args.more:,} more": round(more_large / more_small, 3),
            "CPU per document, large / small": round(cpu_ms["ingest large"] / cpu_ms["ingest small"], 3),
        }
        print(f"on {r['machine']}")
        print(f"{'step':<36}{'seconds':>10}{'CPU ms/doc':>12}{'peak RSS MB':>14}")
        for name, v in steps.items():
            print(f"{name:<36}{v['seconds']:>10.2f}{cpu_ms[name]:>12.3f}{v['peak_rss_mb']:>14.1f}")
        for name, v in {**r["docs_per_s"], **r["ratios"]}.items():  # type: ignore[dict-item]
            print(f"{name:<36}{v:>10}")
        if args.json:
            args.json.write_text(json.dumps(r, indent=2) + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

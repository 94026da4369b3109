"""Caesar scale, in one run: archiver against bagit-python and the hashing floor.

Usage:  python bench/caesar.py [--docs 55000] [--large-mb 2048] [--json out.json]
(needs `pip install -e '.[bench]'` for bagit)

Generates N seeded Arabic-like texts of 3-7 KB with sidecar metadata, then
times, each in its own process with its peak RSS (/usr/bin/time):
archiver init + keys + ingest of the whole folder, verify, an audit slice of
5 s, reindex, `log prove` and `verify DOC` for one document; bagit-python
make_bag and validate (sha256 + sha512, processes=2) on a copy of the same
files; a plain loop hashing every file with SHA-256 and SHA-512 (the floor);
and ingest + verify of one large random file, with one core's SHA-256 and SHA-512
throughput on it (SHA-512 bounds both). Then verify and validate again, in
``--pairs`` pairs run back to back: the ratio within each pair, and their median
(each step also reports the CPU time stolen from the machine meanwhile). Prints
a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORDS = [
    "صور",
    "قيصر",
    "شهادة",
    "المعتقلين",
    "سوريا",
    "السجون",
    "الضحايا",
    "التعذيب",
    "أدلة",
    "الأمم",
    "المتحدة",
    "محكمة",
    "الشرطة",
    "العسكرية",
    "المستشفى",
    "الصور",
    "الجثث",
    "العدالة",
    "المحاسبة",
    "الحقيقة",
]


def generate(folder: Path, n: int, seed: int = 55) -> int:
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    total = 0
    for i in range(n):
        target = rng.randint(3000, 7000)
        parts, size = [], 0
        while size < target:
            w = rng.choice(WORDS) + (str(rng.randint(0, 99)) if rng.random() < 0.1 else "") + " "
            parts.append(w)
            size += len(w.encode())
        text = "".join(parts)
        (folder / f"{i:06d}.txt").write_text(text, encoding="utf-8")
        meta = {"title": f"وثيقة {i}", "language": "ar", "published": f"20{13 + i % 10}"}
        (folder / f"{i:06d}.txt.meta.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        total += size
    return total


def write_large(path: Path, mb: int) -> None:
    """A file of ``mb`` MiB of incompressible bytes, each MiB distinct (no revisit shortcut)."""
    with open(path, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(mb):
            f.write(block[i % 4096 :] + block[: i % 4096])


def hash_rates(path: Path, mb: int = 256) -> dict[str, float]:
    """One core's SHA-256 and SHA-512 throughput (MB/s) on the first ``mb`` MiB of ``path``,
    read into memory first: the bound of any tool that computes both digests of one large
    file (each stream is sequential; archiver runs the two on two cores, so the slower one,
    SHA-512, bounds it). Measured in the same run, as the host's speed changes by the hour."""
    import hashlib

    with open(path, "rb") as f:
        chunks = [c for c in (f.read(1 << 20) for _ in range(mb)) if c]
    size_mb = sum(map(len, chunks)) / (1 << 20)
    rates = {}
    for name in ("sha256", "sha512"):
        h = hashlib.new(name)
        t = time.perf_counter()
        for c in chunks:
            h.update(c)
        rates[f"{name}_mb_per_s"] = round(size_mb / (time.perf_counter() - t), 1)
    return rates


def stolen_seconds() -> float:
    """CPU time the hypervisor has taken from this machine's vCPUs (summed) since boot (Linux
    ``/proc/stat``'s steal column; 0 elsewhere). On a shared host a step's wall time
    follows it: runs of the same code here differed by a factor of two."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        return int(fields[8]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> dict[str, float]:
    """Wall time, CPU time (user + system), peak RSS of one command, in its own process,
    and the CPU time stolen from the machine meanwhile (``stolen_seconds``)."""
    full = ["/usr/bin/time", "-f", "TIME %e %M %U %S", *cmd]
    stolen = stolen_seconds()
    t = time.perf_counter()
    res = subprocess.run(full, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    stolen = stolen_seconds() - stolen
    line = [ln for ln in res.stderr.splitlines() if ln.startswith("TIME ")][-1]
    _, _, rss, user, system = line.split()
    if res.returncode not in (0, 1):
        raise SystemExit(f"{cmd} failed: {res.stderr[-2000:]}")
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(float(user) + float(system), 2),
        "stolen_seconds": round(stolen, 2),
        "peak_rss_mb": round(int(rss) / 1024, 1),
        "exit": res.returncode,
    }


def side_by_side(verify: list[str], validate: list[str], env: dict[str, str], n: int) -> list[dict[str, Any]]:
    """``n`` pairs of runs, one of each command, back to back, the first alternately one and
    the other: the ratio within each pair. On a shared host the machine's speed drifts
    over minutes (``stolen_seconds``); a pair's two runs share their moment, the single
    runs above are minutes apart."""
    out: list[dict[str, Any]] = []
    for i in range(n):
        if i % 2 == 0:
            a = timed(verify, env)
            b = timed(validate, env)
        else:
            b = timed(validate, env)
            a = timed(verify, env)
        out.append({"verify": a, "validate": b, "ratio": round(a["seconds"] / b["seconds"], 3)})
    return out


def deployed_env(env: dict[str, str]) -> dict[str, str]:
    """Run archiver as installed: from compiled bytecode. (``pip install`` compiles it;
    with PYTHONDONTWRITEBYTECODE set, as on our development machines, every command
    would compile its modules again, about 0.1 s of each start-up.)"""
    import archiver

    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(Path(archiver.__file__).parent)], check=True
    )
    env = dict(env)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=55_000)
    ap.add_argument("--large-mb", type=int, default=2048)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument(
        "--pairs",
        type=int,
        default=3,
        help="verify and bagit validate, run this many times each, side by side (default 3)",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="archiver-caesar-"))
    env = {**os.environ, "ARCHIVER_KEY_DIR": str(work / "keys"), "ARCHIVER_ARCHIVE": str(work / "archive")}
    env.pop("ARCHIVER_KEY", None)
    env = deployed_env(env)
    py = sys.executable
    arch = [py, "-m", "archiver"]
    r: dict[str, object] = {
        "docs": args.docs,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    try:
        texts = work / "texts"
        t = time.perf_counter()
        r["content_bytes"] = generate(texts, args.docs)
        r["generate_seconds"] = round(time.perf_counter() - t, 1)
        shutil.copytree(texts, work / "bag")
        os.sync()  # the generator's writes are not the ingest's to flush
        steps: dict[str, dict[str, float]] = {}
        steps["init"] = timed([*arch, "init", str(work / "archive")], env)
        steps["keys generate"] = timed([*arch, "keys", "generate", "archivist1"], env)
        timed([*arch, "keys", "generate", "auditor1", "--role", "auditor"], env)
        steps["ingest"] = timed([*arch, "--key", "archivist1", "ingest", str(texts)], env)
        verify_cmd = [*arch, "verify"]
        steps["verify"] = timed(verify_cmd, env)
        steps["audit --max-seconds 5"] = timed(
            [*arch, "--key", "auditor1", "audit", "--max-seconds", "5"], env
        )
        steps["reindex"] = timed([*arch, "--key", "archivist1", "reindex"], env)
        doc = json.loads(
            subprocess.run([*arch, "list", "--json"], env=env, capture_output=True, text=True).stdout
        )[args.docs // 2]["document"]
        steps["log prove DOC"] = timed([*arch, "log", "prove", doc], env)
        steps["verify DOC"] = timed([*arch, "verify", doc], env)
        bag = "import bagit,sys; bagit.make_bag(sys.argv[1], checksums=['sha256','sha512'], processes=2)"
        steps["bagit make_bag"] = timed([py, "-c", bag, str(work / "bag")], env)
        val = "import bagit,sys; bagit.Bag(sys.argv[1]).validate(processes=2)"
        validate_cmd = [py, "-c", val, str(work / "bag")]
        steps["bagit validate"] = timed(validate_cmd, env)
        r["verify_validate_pairs"] = pairs = side_by_side(verify_cmd, validate_cmd, env, args.pairs)
        floor = (
            "import hashlib,sys,pathlib\n"
            "for p in sorted(pathlib.Path(sys.argv[1]).iterdir()):\n"
            "    d=p.read_bytes(); hashlib.sha256(d).digest(); hashlib.sha512(d).digest()"
        )
        steps["hashing floor"] = timed([py, "-c", floor, str(texts)], env)
        r["steps"] = steps
        s = steps
        r["ratios"] = {
            "ingest / bagit make_bag": round(s["ingest"]["seconds"] / s["bagit make_bag"]["seconds"], 2),
            "verify / bagit validate": round(s["verify"]["seconds"] / s["bagit validate"]["seconds"], 2),
            **(
                {"verify / validate, pairs median": round(statistics.median(p["ratio"] for p in pairs), 2)}
                if pairs
                else {}
            ),
            "ingest / floor": round(s["ingest"]["seconds"] / s["hashing floor"]["seconds"], 2),
            "verify / floor": round(s["verify"]["seconds"] / s["hashing floor"]["seconds"], 2),
        }
        r["ingest_docs_per_s"] = round(args.docs / s["ingest"]["seconds"], 1)
        if args.large_mb:
            big = work / "large.bin"
            write_large(big, args.large_mb)
            os.sync()
            env2 = {**env, "ARCHIVER_ARCHIVE": str(work / "large-archive")}
            timed([*arch, "init", str(work / "large-archive")], env2)
            timed([*arch, "keys", "generate", "big"], {**env2, "ARCHIVER_KEY_DIR": str(work / "keys-big")})
            env2["ARCHIVER_KEY_DIR"] = str(work / "keys-big")
            ing = timed([*arch, "ingest", str(big)], env2)
            ver = timed([*arch, "verify"], env2)
            mb = args.large_mb
            r["large_file"] = {
                "mb": mb,
                "ingest_mb_per_s": round(mb / ing["seconds"], 1),
                "ingest_peak_rss_mb": ing["peak_rss_mb"],
                "verify_mb_per_s": round(mb / ver["seconds"], 1),
                "verify_peak_rss_mb": ver["peak_rss_mb"],
                "ingest_stolen_seconds": ing["stolen_seconds"],
                "verify_stolen_seconds": ver["stolen_seconds"],
                **hash_rates(big),
            }
        print(f"{args.docs:,} documents, {r['content_bytes']:,} bytes of text, on {r['machine']}")
        print(f"{'step':<24}{'seconds':>10}{'CPU s':>9}{'stolen s':>10}{'peak RSS MB':>14}")
        for name, v in steps.items():
            print(
                f"{name:<24}{v['seconds']:>10.2f}{v['cpu_seconds']:>9.2f}"
                f"{v['stolen_seconds']:>10.2f}{v['peak_rss_mb']:>14.1f}"
            )
        for name, v in r["ratios"].items():  # type: ignore[attr-defined]
            print(f"{name:<34}{v:>8.2f}")
        for p in pairs:
            print(
                f"side by side: verify {p['verify']['seconds']:.2f} s (stolen {p['verify']['stolen_seconds']:.2f}),"
                f" validate {p['validate']['seconds']:.2f} s (stolen {p['validate']['stolen_seconds']:.2f}):"
                f" {p['ratio']:.2f}"
            )
        print(f"ingest rate: {r['ingest_docs_per_s']} documents/s")
        if "large_file" in r:
            print(f"large file: {json.dumps(r['large_file'])}")
        if args.json:
            args.json.write_text(json.dumps(r, indent=2, ensure_ascii=False) + "\n")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Scale-out, in one run: the same corpus into a local archive and into S3 + PostgreSQL.

Usage:  python bench/scale_out.py [--docs 5000] [--large-mb 512] [--json out.json]
(needs the Debian packages radosgw ceph-mon ceph-osd and PostgreSQL; the servers are
started on 127.0.0.1 by scripts/ceph-s3.sh and scripts/pg.sh, in their own folders
and ports, and removed at the end)

Times, each step in its own process with its peak RSS: init, keys, ingest of the
whole folder and a full verify, on local files and on S3 (a single-node Ceph with
bluestore on a sparse file, Object Lock) with its catalog in PostgreSQL; then the
same corpus ingested into a new S3 archive by two processes at once (halves of
the folder), which is what the catalog's coordination is for; and a large random
file ingested and verified on both. Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from caesar import generate, timed, write_large

REPO = Path(__file__).resolve().parents[1]
CEPH = {
    "CEPH_S3_DIR": "/tmp/archiver-bench-ceph",  # noqa: S108 - the scripts own these folders
    "CEPH_S3_PORT": "17482",
    "CEPH_MON_PORT": "13302",
    "CEPH_OSD_PORTS": "17000-17099",
}
PG = {"PG_DIR": "/tmp/archiver-bench-pg", "PG_PORT": "15434"}  # noqa: S108
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "archiver-test-access",
    "AWS_SECRET_ACCESS_KEY": "archiver-test-secret-not-for-production",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": f"http://127.0.0.1:{CEPH['CEPH_S3_PORT']}",
}
PG_ADMIN = f"postgresql://archiver@127.0.0.1:{PG['PG_PORT']}/archiver"


def servers(action: str) -> None:
    for script, env in (("ceph-s3.sh", CEPH), ("pg.sh", PG)):
        res = subprocess.run(
            [str(REPO / "scripts" / script), action],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
        )
        if res.returncode != 0 and action == "start":
            raise SystemExit(f"{script} start failed: {res.stderr}")


def new_catalog() -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=5_000)
    ap.add_argument("--large-mb", type=int, default=512)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="archiver-scale-out-"))
    py = sys.executable
    arch = [py, "-m", "archiver"]
    base = {**os.environ, **S3_ENV, "ARCHIVER_KEY_DIR": str(work / "keys")}
    base.pop("ARCHIVER_KEY", None)
    r: dict[str, object] = {
        "docs": args.docs,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    steps: dict[str, dict[str, float]] = {}
    try:
        t = time.perf_counter()
        servers("clean")
        servers("start")
        r["servers_start_seconds"] = round(time.perf_counter() - t, 1)
        texts = work / "texts"
        r["content_bytes"] = generate(texts, args.docs)
        halves = [work / "half0", work / "half1"]
        for h in halves:
            h.mkdir()
        for p in sorted(texts.iterdir()):  # a text and its sidecar go to the same half
            shutil.copy(p, halves[int(p.name[:6]) % 2] / p.name)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        places = {
            "local": ({**base, "ARCHIVER_ARCHIVE": str(work / "local")}, ["init", str(work / "local")]),
            "s3": (
                {**base, "ARCHIVER_ARCHIVE": f"s3://{bucket}/one", "ARCHIVER_CATALOG": new_catalog()},
                ["init", "--store", f"s3://{bucket}/one", "--retention-days", "1"],
            ),
        }
        for name, (env, init) in places.items():
            steps[f"{name}: init"] = timed([*arch, *init], env)
            timed([*arch, "keys", "generate", f"k-{name}"], env)
            steps[f"{name}: ingest"] = timed([*arch, "--key", f"k-{name}", "ingest", str(texts)], env)
            steps[f"{name}: verify"] = timed([*arch, "verify"], env)
        # two writers at once into one S3 archive
        env2 = {**base, "ARCHIVER_ARCHIVE": f"s3://{bucket}/two", "ARCHIVER_CATALOG": new_catalog()}
        timed([*arch, "init", "--store", f"s3://{bucket}/two", "--retention-days", "1"], env2)
        timed([*arch, "keys", "generate", "k-two"], env2)
        t = time.perf_counter()
        procs = [
            subprocess.Popen([*arch, "--key", "k-two", "ingest", str(h)], env=env2, stdout=subprocess.DEVNULL)
            for h in halves
        ]
        codes = [p.wait() for p in procs]
        if any(codes):
            raise SystemExit(f"concurrent ingest failed: {codes}")
        steps["s3: ingest, 2 processes at once"] = {
            "seconds": round(time.perf_counter() - t, 3),
            "peak_rss_mb": 0.0,
            "exit": 0,
        }
        steps["s3: verify after 2 writers"] = timed([*arch, "verify"], env2)
        if steps["s3: verify after 2 writers"]["exit"] != 0:
            raise SystemExit("the archive written by two processes does not verify clean")
        if args.large_mb:
            big = work / "large.bin"
            write_large(big, args.large_mb)
            large: dict[str, dict[str, float]] = {}
            for name, (env, _) in places.items():
                env_big = {**env}
                if name == "local":
                    env_big["ARCHIVER_ARCHIVE"] = str(work / "local-large")
                    timed([*arch, "init", str(work / "local-large")], env_big)
                else:
                    env_big["ARCHIVER_ARCHIVE"] = f"s3://{bucket}/large"
                    env_big["ARCHIVER_CATALOG"] = new_catalog()
                    timed(
                        [*arch, "init", "--store", f"s3://{bucket}/large", "--retention-days", "1"], env_big
                    )
                timed([*arch, "keys", "generate", f"big-{name}"], env_big)
                ing = timed([*arch, "--key", f"big-{name}", "ingest", str(big)], env_big)
                ver = timed([*arch, "verify"], env_big)
                large[name] = {
                    "ingest_mb_per_s": round(args.large_mb / ing["seconds"], 1),
                    "ingest_peak_rss_mb": ing["peak_rss_mb"],
                    "verify_mb_per_s": round(args.large_mb / ver["seconds"], 1),
                    "verify_peak_rss_mb": ver["peak_rss_mb"],
                }
            r["large_file"] = {"mb": args.large_mb, **large}
        r["steps"] = steps
        n = args.docs
        r["docs_per_s"] = {
            "local ingest": round(n / steps["local: ingest"]["seconds"], 1),
            "s3 ingest": round(n / steps["s3: ingest"]["seconds"], 1),
            "s3 ingest, 2 processes": round(n / steps["s3: ingest, 2 processes at once"]["seconds"], 1),
            "local verify": round(n / steps["local: verify"]["seconds"], 1),
            "s3 verify": round(n / steps["s3: verify"]["seconds"], 1),
        }
        print(f"{n:,} documents, {r['content_bytes']:,} bytes of text, on {r['machine']}")
        print(f"servers started in {r['servers_start_seconds']} s")
        print(f"{'step':<36}{'seconds':>10}{'peak RSS MB':>14}")
        for name, v in steps.items():
            print(f"{name:<36}{v['seconds']:>10.2f}{v['peak_rss_mb']:>14.1f}")
        for name, v in r["docs_per_s"].items():  # type: ignore[attr-defined]
            print(f"{name + ' (docs/s)':<36}{v:>10.1f}")
        if "large_file" in r:
            print(f"large file: {json.dumps(r['large_file'])}")
        if args.json:
            args.json.write_text(json.dumps(r, indent=2, ensure_ascii=False) + "\n")
    finally:
        servers("clean")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Build the sealed reference archive at the repository root (run once, ever).

    python scripts/build_reference_archive.py            # into the repository root
    python scripts/build_reference_archive.py --into DIR # anywhere else (a rehearsal)

It archives the five texts of ../shared/corpus (metadata from corpus.json, as
sidecar files) using only the public command line, and plays out a custody
history an auditor can follow:

1. rima (archivist) ingests the folder: five documents, signed;
2. 001 is captured again, unchanged: a revisit, one more captured event;
3. 000 is edited to drop its blog boilerplate (comment widget, copyright line);
4. 003 is transferred from rima to omar (archivist), and omar accepts it;
5. the audit office (auditor) attests 003 after verifying it;
6. a private person's name (a friend of Caesar) is redacted from 002;
7. the audit office runs a scheduled audit; a checkpoint is printed and kept.

Every command signs a checkpoint of the log. The private keys live in a
temporary key directory that is overwritten and deleted at the end: only the
public keys remain, in the archive. Then ``manifests/archive.json`` is marked
``"sealed": true`` (every writing command refuses the archive), the derived
index is removed, and the archive is verified.

The result is committed once and never regenerated: tests/test_reference_archive.py
and .ci/run verify it with the expected counts, so that every later version of
archiver must still verify it (docs/format.md, "Status").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus"
BOILERPLATE = "\n0 التعليقات Blogger"
NAME = "سامي"  # "a friend of his called Sami", who helped hide the files: a private person
REDACTED = "[الاسم محجوب]"


def run(env: dict[str, str], root: Path, *args: str) -> str:
    res = subprocess.run(
        ["archiver", "--archive", str(root), *args], capture_output=True, text=True, env=env, check=False
    )
    if res.returncode != 0:
        sys.exit(f"archiver {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def metadata(entry: dict[str, object]) -> dict[str, object]:
    """corpus.json's descriptive fields, in our metadata schema."""
    md: dict[str, object] = {"language": entry["language"]}
    for ours, theirs in (
        ("title", "title"),
        ("publisher", "publisher"),
        ("published", "published"),
        ("url", "source_url"),
        ("published_note", "published_note"),
        ("notes", "notes"),
    ):
        if entry.get(theirs) is not None:
            md[ours] = entry[theirs]
    return md


def shred(folder: Path) -> None:
    """Overwrite, then delete, every file below ``folder`` (the private keys)."""
    for p in folder.rglob("*"):
        if p.is_file():
            size = p.stat().st_size
            with open(p, "r+b") as f:
                f.write(os.urandom(size))
                f.flush()
                os.fsync(f.fileno())
            p.unlink()
    shutil.rmtree(folder)


def build(root: Path) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="archiver-reference-"))
    keys = work / "keys"
    env = {**os.environ, "ARCHIVER_KEY_DIR": str(keys)}
    for var in ("ARCHIVER_ARCHIVE", "ARCHIVER_KEY", "ARCHIVER_PASSPHRASE", "ARCHIVER_TEST_NOW"):
        env.pop(var, None)
    try:
        texts = work / "caesar-corpus"
        texts.mkdir()
        listing = json.loads((CORPUS / "corpus.json").read_text("utf-8"))
        files = {}
        for entry in listing["documents"]:
            src = CORPUS / entry["file"]
            shutil.copyfile(src, texts / entry["file"])
            (texts / (entry["file"] + ".meta.json")).write_text(
                json.dumps(metadata(entry), ensure_ascii=False, indent=2), encoding="utf-8"
            )
            files[entry["file"][:3]] = entry["file"]
        subprocess.run(["archiver", "init", str(root)], check=True, env=env, capture_output=True)
        run(env, root, "keys", "generate", "rima", "--role", "archivist")
        run(env, root, "keys", "generate", "omar", "--role", "archivist")
        run(env, root, "keys", "generate", "audit-office", "--role", "auditor")
        key_ids = {k["name"]: k["key_id"] for k in json.loads(run(env, root, "keys", "list", "--json"))}

        # 1. the folder, with its sidecars
        docs = {}
        for item in json.loads(run(env, root, "--key", "rima", "ingest", str(texts), "--json")):
            docs[Path(item["source"]).name[:3]] = item["document"]
        # 2. 001 again, unchanged: a revisit
        run(env, root, "--key", "rima", "ingest", str(texts / files["001"]))
        # 3. 000 without its blog boilerplate
        text = (texts / files["000"]).read_text("utf-8")
        clean = work / "000-clean.txt"
        clean.write_text(text[: text.index(BOILERPLATE)] + "\n", encoding="utf-8")
        run(
            env,
            root,
            "--key",
            "rima",
            "edit",
            docs["000"],
            str(clean),
            "--reason",
            "remove the blog's comment widget and copyright line, which are not part of the article",
        )
        # 4. 003 handed over to omar, who accepts it
        run(
            env,
            root,
            "--key",
            "rima",
            "transfer",
            docs["003"],
            "--to",
            key_ids["omar"],
            "--reason",
            "omar takes over the encyclopedia sources",
        )
        run(env, root, "--key", "omar", "accept", docs["003"])
        # 5. the audit office attests it
        run(
            env,
            root,
            "--key",
            "audit-office",
            "attest",
            docs["003"],
            "--note",
            "verified after the hand-over to omar",
        )
        # 6. a private person's name redacted from 002
        text = (texts / files["002"]).read_text("utf-8")
        assert text.count(NAME) == 1, "the corpus changed: the name to redact is not there once"
        redacted = work / "002-redacted.txt"
        redacted.write_text(text.replace(NAME, REDACTED), encoding="utf-8")
        run(
            env,
            root,
            "--key",
            "rima",
            "redact",
            docs["002"],
            str(redacted),
            "--reason",
            "protect a private person who helped hide the files",
        )
        # 7. a scheduled audit, and a checkpoint kept
        run(env, root, "--key", "audit-office", "audit")
        checkpoint = run(env, root, "log", "checkpoint")
    finally:
        shred(keys) if keys.exists() else None
        shutil.rmtree(work, ignore_errors=True)

    # seal: writers refuse it; the derived index and the lock file are not part of it
    info_path = root / "manifests" / "archive.json"
    info = json.loads(info_path.read_text("utf-8"))
    info["sealed"] = True
    info_path.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for leftover in ("index.sqlite", ".writer.lock", "recovery.log"):
        (root / "store" / leftover).unlink(missing_ok=True)
    report = json.loads(
        subprocess.run(
            ["archiver", "--archive", str(root), "verify", "--json"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
    )
    if not report["ok"]:
        sys.exit(f"the reference archive does not verify: {report['problems']}")
    return {"documents": docs, "counts": report["counts"], "checkpoint": checkpoint}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--into", type=Path, help="build elsewhere (default: the repository root)")
    args = parser.parse_args()
    target = args.into or REPO
    if (target / "manifests" / "archive.json").exists():
        sys.exit(f"{target} already holds an archive: the reference archive is built once and never again")
    staging = Path(tempfile.mkdtemp(prefix="archiver-reference-root-")) / "archive"
    result = build(staging)
    for sub in ("manifests", "store"):
        dest = target / sub
        if dest.exists():
            if any(dest.iterdir()):
                sys.exit(f"{dest} is not empty")
            dest.rmdir()
        shutil.move(str(staging / sub), dest)
    shutil.rmtree(staging.parent, ignore_errors=True)
    print(json.dumps(result, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()

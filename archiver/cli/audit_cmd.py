"""``archiver audit``."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from ..archive import Archive
from ..audit import run_audit, run_worker_audit
from ..fsutil import atomic_write
from . import STARTED, cli
from .common import echo_json, json_option, open_archive, paint, progress, signing_key, wait_option


@cli.command("audit")
@click.option(
    "--max-seconds",
    type=click.FloatRange(min=0),
    help="Finish within about S seconds (new documents stop a tenth of S, at most 1 s, early).",
)
@click.option("--max-bytes", type=click.IntRange(min=0), help="Stop after reading B bytes of content.")
@click.option(
    "--max-age",
    "max_age",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Report documents not verified within DAYS as overdue.",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the JSON result to FILE.",
)
@click.option(
    "--on-failure",
    "on_failure",
    metavar="CMD",
    help="Run CMD (a shell command) when problems are found; $ARCHIVER_AUDIT_REPORT names the report.",
)
@click.option(
    "--worker",
    is_flag=True,
    help="S3 archives: take slices of documents from the catalog, so that audits running on "
    "several machines at once share the work without overlap.",
)
@json_option
@wait_option
@click.pass_context
def audit_cmd(
    ctx: click.Context,
    max_seconds: float | None,
    max_bytes: int | None,
    max_age: float | None,
    report_file: Path | None,
    on_failure: str | None,
    worker: bool,
    as_json: bool,
    wait_seconds: float,
) -> None:
    """Verify the least recently verified documents within a budget, and record it (auditor key).

    Exit 0 when the slice is clean, 1 when problems were found. Meant for cron
    or a systemd timer (docs/operations.md).

    \b
    Example:  archiver --key audrey audit --max-seconds 300 --max-age 30 --report /var/log/archiver.json
    """
    archive = open_archive(ctx)
    key = signing_key(ctx, archive, "auditor")
    from ..reading import count_documents

    with progress(lambda: count_documents(archive), "auditing", quiet=as_json) as tick:
        result = (run_worker_audit if worker else run_audit)(
            archive,
            key,
            max_seconds=max_seconds,
            max_bytes=max_bytes,
            max_age_days=max_age,
            wait_seconds=wait_seconds,
            progress=tick,
            since=STARTED,
        )
    out = result.to_json()
    if report_file is not None:
        atomic_write(
            report_file, (json.dumps(out, ensure_ascii=False, indent=2) + "\n").encode(), overwrite=True
        )
    if as_json:
        echo_json(out)
    else:
        rec = result.record
        click.echo(
            f"audit {rec['outcome']}: {len(rec['checked'])} document(s) verified, "
            f"{sum(c['bytes'] for c in rec['checked'])} bytes, {result.not_reached} not reached this run"
        )
        for p in result.problems:
            click.echo(f"{paint('PROBLEM', fg='red', bold=True)} {p}")
        if result.overdue:
            click.echo(f"{len(result.overdue)} document(s) overdue (not verified within {max_age:g} days)")
        click.echo(f"recorded in {result.path}")
    if not result.ok and on_failure:
        with _report_for_hook(archive, result.path, report_file, out) as hook_file:
            env = {**os.environ, "ARCHIVER_AUDIT_REPORT": str(hook_file)}
            done = subprocess.run(on_failure, shell=True, env=env, check=False)  # noqa: S602 - the operator's own hook
        if done.returncode != 0:
            # The finding (exit 1) matters more than the hook's own failure.
            click.echo(f"warning: the --on-failure command exited {done.returncode}", err=True)
    ctx.exit(0 if result.ok else 1)


@contextlib.contextmanager
def _report_for_hook(
    archive: Archive, record_key: str, report_file: Path | None, out: dict[str, Any]
) -> Iterator[Path]:
    """A file for ``$ARCHIVER_AUDIT_REPORT``: the --report file, else the audit record itself
    (a local archive's file), else (an S3 archive) a temporary copy of the report."""
    local = archive.local_path(record_key)
    given = report_file or local
    if given is not None:
        yield given
        return
    with tempfile.TemporaryDirectory(prefix="archiver-audit-") as tmp:
        path = Path(tmp) / "audit.json"
        path.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        yield path

"""``archiver verify``."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InvalidInput
from ..verify import verify
from . import cli, retire
from .common import echo_json, json_option, open_archive, paint, progress


@cli.command("verify")
@click.argument("documents", nargs=-1, metavar="[DOC...]")
@click.option(
    "--checkpoint",
    "checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A checkpoint you kept: prove the archive only grew since (else log-rollback).",
)
@click.option(
    "--tsa-cert",
    "tsa_certs",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="CERT.pem",
    help="Check time-stamp tokens against this TSA certificate (repeatable) instead of the archive's list.",
)
@json_option
@click.pass_context
def verify_cmd(
    ctx: click.Context,
    documents: tuple[str, ...],
    checkpoint: Path | None,
    tsa_certs: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Re-check everything (or the given documents): exit 0 clean, 1 problems.

    \b
    Example:  archiver verify --json > report.json
    """
    archive = open_archive(ctx)
    kept = None
    if checkpoint is not None:
        try:
            kept = checkpoint.read_bytes()[: 1 << 16]
        except OSError as e:
            raise InvalidInput(f"--checkpoint {checkpoint}: {e.strerror}") from e
    from ..reading import count_documents

    total = len(documents) if documents else (lambda: count_documents(archive))
    held: list[object] = []
    with progress(total, "verifying", quiet=as_json) as tick:
        report = verify(
            archive, list(documents) or None, kept, list(tsa_certs) or None, progress=tick, retain=held
        )
    retire(held)  # dropped by the exit, not freed one object at a time
    if as_json:
        echo_json(report.to_json())
    else:
        c = report.counts
        click.echo(
            f"archive {report.archive_id}: checked {c.documents} documents, {c.events} "
            f"events, {c.keys} keys, {c.records} WARC records, {c.bytes} bytes"
        )
        if c.timestamps:
            click.echo(f"{c.timestamps} RFC 3161 time-stamp token(s) checked")
        if c.withheld:
            click.echo(
                f"an export: {c.withheld} record(s) withheld on purpose (sealed originals, seeds, "
                "other documents); see manifests/export.json"
            )
        for p in report.problems:
            click.echo(f"{paint('PROBLEM', fg='red', bold=True)} {p}")
        click.echo(
            paint("OK: no problems found", fg="green")
            if report.ok
            else paint(f"{len(report.problems)} problem(s) found", fg="red", bold=True)
        )
    ctx.exit(0 if report.ok else 1)

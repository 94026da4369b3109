"""``archiver verify``."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InvalidInput
from ..verify import verify
from . import cli
from .common import echo_json, json_option, open_archive


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
    report = verify(archive, list(documents) or None, kept, list(tsa_certs) or None)
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
            click.echo(f"PROBLEM {p}")
        click.echo("OK: no problems found" if report.ok else f"{len(report.problems)} problem(s) found")
    ctx.exit(0 if report.ok else 1)

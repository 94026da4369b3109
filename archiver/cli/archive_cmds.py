"""``archiver init`` and ``archiver reindex``."""

from __future__ import annotations

import click

from ..archive import DEFAULT_ROTATION, Archive
from ..reindex import reindex
from . import cli
from .common import open_archive, wait_option


@cli.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
@click.option(
    "--warc-size",
    type=click.IntRange(min=1024),
    default=DEFAULT_ROTATION,
    show_default=True,
    help="Start a new WARC file once the current one reaches this size.",
)
def init(path: str, warc_size: int) -> None:
    """Create a new archive at PATH (default: here).

    \b
    Example:  archiver init evidence
    """
    archive = Archive.init(path, rotation_bytes=warc_size)
    click.echo(f"created archive {archive.archive_id} at {archive.layout.root}")
    click.echo("next: archiver keys generate NAME", err=True)


@cli.command("reindex")
@wait_option
@click.pass_context
def reindex_cmd(ctx: click.Context, wait_seconds: float) -> None:
    """Rebuild the derived index (store/index.sqlite) from the manifests.

    \b
    Example:  archiver reindex
    """
    rows, skipped = reindex(open_archive(ctx), wait_seconds)
    click.echo(f"index rebuilt: {rows} events")
    if skipped:
        click.echo(
            f"warning: {skipped} manifest file(s) could not be indexed; run `archiver verify`", err=True
        )

"""``archiver export bagit|wacz``."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli
from .common import echo_json, open_archive


@cli.group("export")
def export_group() -> None:
    """Export the archive in other people's formats (BagIt, WACZ), sealed material withheld."""


@export_group.command("bagit")
@click.argument("dest", type=click.Path(path_type=Path), metavar="DEST")
@click.argument("documents", nargs=-1, metavar="[DOC...]")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
def bagit_cmd(ctx: click.Context, dest: Path, documents: tuple[str, ...], as_json: bool) -> None:
    """Write a BagIt 1.0 bag (RFC 8493) of the archive, or of some documents, at DEST (a new folder).

    The bag's data/archive verifies as is (`archiver --archive DEST verify`);
    sealed originals and redaction seeds are replaced by same-length placeholders.

    \b
    Example:  archiver export bagit /media/usb/evidence-2026-11
    """
    from ..bagexport import export_bagit
    from ..verify import resolve_by_files

    archive = open_archive(ctx)
    docs = sorted({resolve_by_files(archive.layout, d) for d in documents}) if documents else None
    result = export_bagit(archive, dest, docs)
    if as_json:
        echo_json(
            {
                "bag": str(result.path),
                "documents": result.documents,
                "files": result.files,
                "bytes": result.bytes,
                "withheld": result.withheld,
            }
        )
    else:
        click.echo(
            f"{result.path}: BagIt bag of {result.documents} document(s), {result.files} files, "
            f"{result.bytes} bytes; {result.withheld} record(s) withheld"
        )

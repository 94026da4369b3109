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
    docs = sorted({resolve_by_files(archive.store, d) for d in documents}) if documents else None
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


@export_group.command("wacz")
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path), metavar="DEST.wacz")
@click.argument("documents", nargs=-1, metavar="[DOC...]")
@click.option("--tsa", "tsa_url", metavar="URL", help="Add an RFC 3161 token over the package signature.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
def wacz_cmd(
    ctx: click.Context, dest: Path, documents: tuple[str, ...], tsa_url: str | None, as_json: bool
) -> None:
    """Write a signed WACZ 1.1.1 package (web archive, CDXJ index, pages, manifests) at DEST.wacz.

    The package's datapackage digest is signed with your key (Ed25519; docs/verifying.md).

    \b
    Example:  archiver export wacz evidence.wacz
    """
    from ..verify import resolve_by_files
    from ..waczexport import export_wacz
    from .common import signing_key

    archive = open_archive(ctx)
    docs = sorted({resolve_by_files(archive.store, d) for d in documents}) if documents else None
    key = signing_key(ctx, archive, role="archivist")
    result = export_wacz(archive, dest, key, docs, tsa_url)
    summary = {
        "wacz": str(result.path),
        "documents": result.documents,
        "pages": result.pages,
        "records": result.records,
        "withheld": result.withheld,
    }
    if as_json:
        echo_json(summary)
    else:
        click.echo(
            f"{result.path}: WACZ of {result.documents} document(s), {result.pages} page(s), "
            f"{result.records} indexed record(s); {result.withheld} record(s) withheld"
        )

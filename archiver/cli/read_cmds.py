"""``archiver list``, ``show`` and ``cat``."""

from __future__ import annotations

import sys

import click

from ..reading import cat, check_version_arg, list_documents, show
from . import cli
from .common import echo_json, json_option, open_archive

version_option = click.option(
    "--version", "version", type=int, metavar="N", help="Event number N instead of the latest."
)


@cli.command("list")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List documents with their current version.

    \b
    Example:  archiver list --json
    """
    rows = list_documents(open_archive(ctx))
    if as_json:
        echo_json(
            [
                {
                    "document": r.document_id,
                    "version": r.sequence,
                    "time": r.time,
                    "action": r.action,
                    "size": r.size,
                    "sha256": r.sha256,
                    "media_type": r.media_type,
                    "title": r.title,
                    "filename": r.filename,
                    "url": r.url,
                }
                for r in rows
            ]
        )
        return
    for r in rows:
        label = r.title or r.filename or r.url or ""
        click.echo(f"{r.document_id}  v{r.sequence:<3} {r.time}  {r.size:>10}  {r.media_type:<24} {label}")


@cli.command("show")
@click.argument("document", metavar="DOC")
@version_option
@json_option
@click.pass_context
def show_cmd(ctx: click.Context, document: str, version: int | None, as_json: bool) -> None:
    """Show a document's signed manifest (latest event, or --version N).

    \b
    Example:  archiver show 3fa2 --version 0
    """
    check_version_arg(version)
    m = show(open_archive(ctx), document, version)
    if as_json:
        echo_json(m)
        return
    c, md = m["content"], (m.get("source") or {}).get("metadata") or {}
    lines = [
        ("document", m["document_id"]),
        ("event", f"{m['sequence']} ({m['action']})"),
        ("time", m["time"]),
        ("actor", f"{m['actor']['name']} ({m['actor']['key_id'][:16]})"),
        ("title", md.get("title")),
        ("publisher", md.get("publisher")),
        ("published", md.get("published")),
        ("url", md.get("url")),
        ("file", (m.get("source") or {}).get("filename")),
        ("language", c["language"]),
        ("media type", c["media_type"] + (f"; charset={c['charset']}" if c["charset"] else "")),
        ("size", str(c["size"])),
        ("sha256", c["sha256"]),
        ("sha512", c["sha512"]),
        ("text sha256", c["text_sha256"]),
        ("previous", m["previous"]),
        (
            "stored",
            f"{m['storage']['warc_file']}@{m['storage']['offset']} "
            f"({m['storage']['record_type']} {m['storage']['record_id']})",
        ),
        ("reason", m["reason"]),
    ]
    for label, value in lines:
        if value is not None:
            click.echo(f"{label + ':':<13}{value}")


@cli.command("cat")
@click.argument("document", metavar="DOC")
@version_option
@click.option("--sealed", is_flag=True, help="Allow reading a version that a redaction sealed.")
@click.pass_context
def cat_cmd(ctx: click.Context, document: str, version: int | None, sealed: bool) -> None:
    """Write the exact stored bytes of a document to standard output.

    The bytes are checked against the manifest's SHA-256 as they are written;
    on a mismatch the command fails with exit 2.

    \b
    Example:  archiver cat 3fa2 > article.txt
    """
    check_version_arg(version)
    out = sys.stdout.buffer
    cat(open_archive(ctx), document, out, version, sealed)
    out.flush()

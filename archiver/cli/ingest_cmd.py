"""``archiver ingest``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..archive import Archive
from ..metadata import parse_meta_pairs
from . import cli
from .common import echo_json, json_option, open_archive, progress, signing_key, wait_option


@cli.command("ingest")
@click.argument("inputs", nargs=-1, metavar="FILE|DIR|-...")
@click.option(
    "--warc",
    "warc_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Import the response and resource records of a WARC file made by another tool.",
)
@click.option(
    "--skip-bad-records",
    is_flag=True,
    help="With --warc: import the sound records and report those whose own digest is wrong.",
)
@click.option("--url", help="Where the document was found.")
@click.option("--title")
@click.option("--publisher")
@click.option("--published", metavar="DATE", help="YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 time.")
@click.option("--language", metavar="TAG", help="BCP 47 language tag, e.g. ar.")
@click.option("--media-type", help="Override the detected media type.")
@click.option("--charset", help="Declare the text encoding (default: UTF-8 if it decodes).")
@click.option("--meta", "meta_pairs", multiple=True, metavar="KEY=VALUE", help="Free metadata; repeatable.")
@click.option(
    "--metadata",
    "metadata_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON metadata applying to every input (schemas/metadata.schema.json).",
)
@click.option(
    "--tsa", "tsa_url", metavar="URL", help="RFC 3161 time-stamp authority: a token over each manifest."
)
@click.option("--include-hidden", is_flag=True, help="Also ingest hidden files in folders.")
@click.option("--follow-symlinks", is_flag=True, help="Follow symbolic links in folders.")
@wait_option
@json_option
@click.pass_context
def ingest_cmd(
    ctx: click.Context,
    inputs: tuple[str, ...],
    warc_file: Path | None,
    skip_bad_records: bool,
    url: str | None,
    title: str | None,
    publisher: str | None,
    published: str | None,
    language: str | None,
    media_type: str | None,
    charset: str | None,
    meta_pairs: tuple[str, ...],
    metadata_file: Path | None,
    tsa_url: str | None,
    include_hidden: bool,
    follow_symlinks: bool,
    wait_seconds: float,
    as_json: bool,
) -> None:
    """Capture files, folders (walked in sorted order) or standard input (-).

    A sidecar NAME.meta.json beside a file adds metadata for it. Prints each
    document id, one per line.

    With --warc FILE, the records of a WARC file made by another tool
    (wget --warc-file, Browsertrix, warcio) become documents instead.

    \b
    Example:  archiver ingest articles/ --language ar --publisher "AFP"
    """
    if (warc_file is None) == (not inputs):
        raise click.UsageError("give FILE|DIR|- arguments, or --warc FILE (not both)")
    options = _options(
        meta_pairs,
        url=url,
        title=title,
        publisher=publisher,
        published=published,
        language=language,
        media_type=media_type,
        charset=charset,
    )
    from ..ingest import collect, ingest, remove_spool

    archive = open_archive(ctx)
    if warc_file is not None:
        _import_warc(ctx, archive, warc_file, options, skip_bad_records, wait_seconds, as_json, tsa_url)
        return
    spool: list[Path] = []
    try:
        sources = collect(
            list(inputs),
            options,
            metadata_file=metadata_file,
            include_hidden=include_hidden,
            follow_symlinks=follow_symlinks,
            spool=spool,
        )
        key = signing_key(ctx, archive, role="archivist")
        with progress(len(sources), "ingesting", quiet=as_json) as tick:
            done = ingest(archive, sources, key, wait_seconds=wait_seconds, tsa=tsa_url, progress=tick)
    finally:
        remove_spool(spool)
    if as_json:
        echo_json([d.to_json() for d in done])
        return
    for d in done:
        click.echo(d.document_id)


@cli.command("capture")
@click.argument("urls", nargs=-1, required=True, metavar="URL...")
@click.option("--title")
@click.option("--publisher")
@click.option("--published", metavar="DATE", help="YYYY, YYYY-MM, YYYY-MM-DD or an RFC 3339 time.")
@click.option("--language", metavar="TAG", help="BCP 47 language tag, e.g. ar.")
@click.option("--meta", "meta_pairs", multiple=True, metavar="KEY=VALUE", help="Free metadata; repeatable.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=60.0,
    show_default=True,
    help="Seconds the whole fetch of one URL (all redirects) may take.",
)
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=512 * 1024 * 1024,
    show_default=True,
    help="Largest response body accepted.",
)
@click.option("--max-redirects", type=click.IntRange(min=0, max=100), default=10, show_default=True)
@click.option(
    "--tsa", "tsa_url", metavar="URL", help="RFC 3161 time-stamp authority: a token over each manifest."
)
@click.option("--accept-any-status", is_flag=True, help="Keep 4xx/5xx answers too (e.g. a page taken down).")
@wait_option
@json_option
@click.pass_context
def capture_cmd(
    ctx: click.Context,
    urls: tuple[str, ...],
    title: str | None,
    publisher: str | None,
    published: str | None,
    language: str | None,
    meta_pairs: tuple[str, ...],
    timeout: float,
    max_bytes: int,
    max_redirects: int,
    tsa_url: str | None,
    accept_any_status: bool,
    wait_seconds: float,
    as_json: bool,
) -> None:
    """Fetch web pages over HTTP(S) and archive each exchange as WARC request/response records.

    Redirects are followed and recorded; all URLs are fetched before anything
    is written, and one failure captures nothing. Prints each document id.

    \b
    Example:  archiver capture https://example.org/article --language ar
    """
    from ..capture import capture

    options = _options(meta_pairs, title=title, publisher=publisher, published=published, language=language)
    archive = open_archive(ctx)
    key = signing_key(ctx, archive, role="archivist")
    done = capture(
        archive,
        list(urls),
        key,
        metadata=options,
        timeout=timeout,
        max_bytes=max_bytes,
        max_redirects=max_redirects,
        accept_any_status=accept_any_status,
        wait_seconds=wait_seconds,
        tsa=tsa_url,
    )
    if as_json:
        echo_json([d.to_json() for d in done])
        return
    for d in done:
        click.echo(d.document_id)


def _import_warc(
    ctx: click.Context,
    archive: Archive,
    warc_file: Path,
    options: dict[str, Any],
    skip_bad: bool,
    wait_seconds: float,
    as_json: bool,
    tsa_url: str | None,
) -> None:
    from ..warcimport import import_warc

    key = signing_key(ctx, archive, role="archivist")
    report = import_warc(
        archive, warc_file, key, metadata=options, skip_bad=skip_bad, wait_seconds=wait_seconds
    )
    for line in report.bad:
        click.echo(f"archiver: warning: not imported: {line}", err=True)
    if as_json:
        echo_json(
            {
                "imported": [d.to_json() for d in report.imported],
                "bad": report.bad,
                "skipped": report.skipped,
            }
        )
        return
    for d in report.imported:
        click.echo(d.document_id)


def _options(meta_pairs: tuple[str, ...], **fields: str | None) -> dict[str, Any]:
    """Metadata given on the command line: the fields set, and --meta KEY=VALUE pairs."""
    options: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    if meta_pairs:
        options["meta"] = parse_meta_pairs(meta_pairs)
    return options

"""``archiver init`` and ``archiver reindex``."""

from __future__ import annotations

import click

from ..archive import DEFAULT_ROTATION, Archive
from ..errors import InvalidInput
from ..s3store import DEFAULT_RETENTION_DAYS, S3Location
from . import cli
from .common import echo_json, json_option, open_archive, progress, wait_option

# what making an S3 archive needs, for init --store and migrate --to
endpoint_option = click.option(
    "--endpoint", metavar="URL", help="S3 endpoint (default: the global --endpoint)."
)
catalog_option = click.option(
    "--catalog", "catalog_url", metavar="URL", help="postgresql:// catalog (an empty database)."
)
retention_option = click.option(
    "--retention-days",
    type=click.IntRange(1, 36500),
    default=DEFAULT_RETENTION_DAYS,
    show_default=True,
    help="COMPLIANCE retention of every object of an S3 archive.",
)


def s3_target(
    ctx: click.Context, url: str, endpoint: str | None, catalog: str | None
) -> tuple[S3Location, str]:
    """Where an S3 archive is to be made, and its catalog (the options, else the global ones).

    Raises:
        InvalidInput: a bad URL, or no catalog.
    """
    from ..s3store import parse_s3_url

    catalog = catalog or ctx.obj.get("catalog")
    if not catalog:
        raise InvalidInput("an S3 archive needs a catalog: --catalog postgresql://USER@HOST/DATABASE")
    return parse_s3_url(url, endpoint or ctx.obj.get("endpoint")), catalog


@cli.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option(
    "--warc-size",
    type=click.IntRange(min=1024),
    default=DEFAULT_ROTATION,
    show_default=True,
    help="Start a new WARC file once the current one reaches this size.",
)
@click.option(
    "--store",
    "store_url",
    metavar="s3://BUCKET/PREFIX",
    help="Make an S3 archive there instead (the bucket is created with Object Lock if missing).",
)
@endpoint_option
@catalog_option
@retention_option
@click.pass_context
def init(
    ctx: click.Context,
    path: str | None,
    warc_size: int,
    store_url: str | None,
    endpoint: str | None,
    catalog_url: str | None,
    retention_days: int,
) -> None:
    """Create a new archive at PATH (default: here), or with --store in S3.

    \b
    Example:  archiver init evidence
    """
    if store_url is None:
        if catalog_url or endpoint:
            raise InvalidInput(
                "--catalog and --endpoint are for S3 archives (init --store s3://BUCKET/PREFIX)"
            )
        archive = Archive.init(path or ".", rotation_bytes=warc_size)
        click.echo(f"created archive {archive.archive_id} at {archive.layout.root}")
        click.echo("next: archiver keys generate NAME", err=True)
        return
    if path is not None:
        raise InvalidInput("give either PATH or --store, not both")
    where, catalog = s3_target(ctx, store_url, endpoint, catalog_url)
    from ..s3archive import S3Archive

    s3 = S3Archive.init_s3(where, catalog, retention_days=retention_days, rotation_bytes=warc_size)
    click.echo(f"created archive {s3.archive_id} at {where.url}")
    click.echo(f"next: archiver --archive {where.url} keys generate NAME", err=True)


@cli.command("migrate")
@click.option("--to", "to_url", required=True, metavar="s3://BUCKET/PREFIX", help="Where the copy goes.")
@endpoint_option
@catalog_option
@retention_option
@wait_option
@json_option
@click.pass_context
def migrate_cmd(
    ctx: click.Context,
    to_url: str,
    endpoint: str | None,
    catalog_url: str | None,
    retention_days: int,
    wait_seconds: float,
    as_json: bool,
) -> None:
    """Copy this (local) archive into S3 and prove the copy: every object read back and
    its SHA-256 checked, the same log root and checkpoints, and the copy verifies clean.

    \b
    Example:  archiver migrate --to s3://evidence/caesar --catalog postgresql://archiver@db/caesar
    """
    from ..migrate import migrate
    from ..s3archive import S3Archive
    from ..snapshot import warc_sizes

    source = open_archive(ctx)
    if isinstance(source, S3Archive):
        raise InvalidInput("migrate copies a local archive into S3; this one is in S3 already")
    where, catalog = s3_target(ctx, to_url, endpoint, catalog_url)
    from ..logcheck import record_keys

    def count() -> int:
        return len(warc_sizes(source.store)) + len(record_keys(source.store))

    with progress(count, "migrating", quiet=as_json) as tick:
        done = migrate(
            source, where, catalog, retention_days=retention_days, wait_seconds=wait_seconds, progress=tick
        )
    if as_json:
        echo_json(done.to_json())
        return
    click.echo(
        f"migrated {done.objects} objects ({done.bytes} bytes) to {done.location}"
        + (f", {done.skipped} of them there already from an earlier run" if done.skipped else "")
    )
    click.echo("every object read back and its SHA-256 checked against the source")
    click.echo(
        f"same log: {done.log_size} records, root {done.root}, {done.checkpoints} checkpoints byte-identical"
    )
    click.echo("the copy verifies clean; its catalog is built")


@cli.command("reindex")
@wait_option
@click.pass_context
def reindex_cmd(ctx: click.Context, wait_seconds: float) -> None:
    """Rebuild the derived index (store/index.sqlite) from the manifests.

    \b
    Example:  archiver reindex
    """
    from ..reindex import reindex

    rows, skipped = reindex(open_archive(ctx), wait_seconds)
    click.echo(f"index rebuilt: {rows} events")
    if skipped:
        click.echo(
            f"warning: {skipped} manifest file(s) could not be indexed; run `archiver verify`", err=True
        )

"""``archiver tsa trust|list``: the time-stamp authorities whose tokens this archive accepts."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli
from .common import echo_json, open_archive, signing_key


@cli.group("tsa")
def tsa_group() -> None:
    """RFC 3161 time-stamp authorities (TSA) this archive trusts.

    \b
    Example:  archiver tsa trust tsa-root.pem
    """


@tsa_group.command("trust")
@click.argument("cert", type=click.Path(dir_okay=False, path_type=Path), metavar="CERT.pem")
@click.pass_context
def trust_cmd(ctx: click.Context, cert: Path) -> None:
    """Trust the TSA certificate or root CA in CERT.pem (kept in manifests/tsa/, logged).

    \b
    Example:  archiver tsa trust freetsa-cacert.pem
    """
    from ..timestamps import trust_tsa

    archive = open_archive(ctx)
    written = trust_tsa(archive, cert, signing_key(ctx, archive, role="archivist"))
    for key in written:
        click.echo(key)
    if not written:
        click.echo("already trusted")


@tsa_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """List the trusted TSA certificates.

    \b
    Example:  archiver tsa list
    """
    from ..timestamps import certificate_key, trusted_certificates

    archive = open_archive(ctx)
    rows = [
        {
            "subject": c.subject.rfc4514_string(),
            "not_after": c.not_valid_after_utc.isoformat(),
            "file": certificate_key(c),
        }
        for c in trusted_certificates(archive.store)
    ]
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        click.echo(f"{r['file']}  {r['subject']}  (valid until {r['not_after']})")

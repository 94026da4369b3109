"""``archiver keys generate | list | revoke``."""

from __future__ import annotations

import contextlib
import os
import sys

import click

from ..errors import ArchiverError, InvalidInput
from ..keystore import KeyStore
from ..timeutil import format_time, parse_time
from . import cli
from .common import echo_json, json_option, open_archive, signing_key


@cli.group()
def keys() -> None:
    """Manage signing keys (private keys stay in your config directory).

    \b
    Example:  archiver keys generate alice --role archivist
    """


def _new_passphrase() -> bytes:
    env = os.environ.get("ARCHIVER_PASSPHRASE")
    if env:
        return env.encode("utf-8")
    if not sys.stdin.isatty():
        raise InvalidInput("--passphrase needs a terminal to ask, or ARCHIVER_PASSPHRASE set")
    value: str = click.prompt("New passphrase", hide_input=True, confirmation_prompt=True, err=True)
    if not value:
        raise InvalidInput("an empty passphrase protects nothing; omit --passphrase instead")
    return value.encode("utf-8")


@keys.command()
@click.argument("name")
@click.option("--role", type=click.Choice(["archivist", "auditor"]), default="archivist", show_default=True)
@click.option(
    "--passphrase", is_flag=True, help="Encrypt the private key (asks, or reads ARCHIVER_PASSPHRASE)."
)
@click.pass_context
def generate(ctx: click.Context, name: str, role: str, passphrase: bool) -> None:
    """Make an Ed25519 key NAME and add its public key to the archive's trusted keys.

    \b
    Example:  archiver keys generate alice --role archivist --passphrase
    """
    archive = open_archive(ctx)
    secret = _new_passphrase() if passphrase else None
    store = KeyStore()
    key_id = archive.generate_key(name, role, passphrase=secret, keystore=store)
    click.echo(key_id)
    click.echo(f"private key: {store.directory / (name + '.key')}", err=True)


@keys.command("list")
@json_option
@click.pass_context
def list_keys(ctx: click.Context, as_json: bool) -> None:
    """List the archive's trusted keys.

    \b
    Example:  archiver keys list --json
    """
    archive = open_archive(ctx)
    trust = archive.trust()
    store = KeyStore()
    local = set()
    for n in store.names():
        # A damaged local key file must not hide the archive's keys.
        with contextlib.suppress(ArchiverError):
            local.add(store.public_info(n).key_id)
    rows = []
    for k in sorted(trust.keys.values(), key=lambda k: k.created_at):
        rev = trust.revocations.get(k.key_id)
        rows.append(
            {
                "key_id": k.key_id,
                "name": k.name,
                "role": k.role,
                "created_at": format_time(k.created_at),
                "revoked_at": format_time(rev.revoked_at) if rev else None,
                "revocation_reason": rev.reason if rev else None,
                "private_key_here": k.key_id in local,
            }
        )
    if as_json:
        echo_json(rows)
        return
    for r in rows:
        status = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        mine = " (private key here)" if r["private_key_here"] else ""
        click.echo(f"{r['key_id']}  {r['name']:<16} {r['role']:<9} {status}{mine}")
    for p in trust.problems:
        click.echo(f"warning: {p}", err=True)


@keys.command()
@click.argument("key_id")
@click.option("--reason", required=True, help="Why the key is revoked (recorded, signed).")
@click.option(
    "--effective",
    metavar="TIME",
    help="Revoke from this RFC 3339 time on (e.g. when it was compromised); default now.",
)
@click.pass_context
def revoke(ctx: click.Context, key_id: str, reason: str, effective: str | None) -> None:
    """Revoke KEY_ID (or a unique prefix): its signatures from then on fail verification.

    \b
    Example:  archiver keys revoke 3fa2c1 --reason "laptop stolen"
    """
    archive = open_archive(ctx)
    when = None
    if effective:
        try:
            when = parse_time(effective)
        except ValueError as e:
            raise InvalidInput(f"--effective: {e}") from e
    signer = signing_key(ctx, archive, role="archivist")
    revoked = archive.revoke_key(key_id, reason, signer, when)
    click.echo(f"revoked {revoked}")

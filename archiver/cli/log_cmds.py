"""``archiver log checkpoint | prove | consistency``."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InvalidInput
from ..logproofs import latest_checkpoint, prove_consistency, prove_inclusion
from . import cli
from .common import echo_json, open_archive


@cli.group("log")
def log_group() -> None:
    """The tamper-evident log: checkpoints and proofs.

    \b
    Example:  archiver log checkpoint > checkpoint-$(date +%F).txt
    """


@log_group.command("checkpoint")
@click.option(
    "--tsa",
    "tsa_url",
    metavar="URL",
    help="First obtain an RFC 3161 time-stamp token over the latest checkpoint (kept and logged).",
)
@click.pass_context
def checkpoint_cmd(ctx: click.Context, tsa_url: str | None) -> None:
    """Print the latest signed checkpoint (keep a copy: it is what `verify --checkpoint` checks).

    With --tsa, the checkpoint is time-stamped first; the token is logged, so the
    checkpoint printed is the one after it.

    \b
    Example:  archiver log checkpoint > kept-checkpoint.txt
    """
    archive = open_archive(ctx)
    if tsa_url is not None:
        from ..timestamps import stamp_checkpoint
        from .common import signing_key

        key = stamp_checkpoint(archive, tsa_url, signing_key(ctx, archive, role="archivist"))
        click.echo(f"time-stamp token: {key}", err=True)
    click.echo(latest_checkpoint(archive), nl=False)


@log_group.command("prove")
@click.argument("document", metavar="DOC")
@click.option(
    "--version", "version", type=click.IntRange(min=0), metavar="N", help="Event N (default: latest)."
)
@click.pass_context
def prove_cmd(ctx: click.Context, document: str, version: int | None) -> None:
    """Print an inclusion proof (JSON) of a document event against the latest checkpoint.

    \b
    Example:  archiver log prove 3fa2 --version 0
    """
    echo_json(prove_inclusion(open_archive(ctx), document, version))


@log_group.command("consistency")
@click.argument("old_checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_context
def consistency_cmd(ctx: click.Context, old_checkpoint: Path) -> None:
    """Print a consistency proof (JSON) from OLD_CHECKPOINT to the latest checkpoint.

    \b
    Example:  archiver log consistency kept-checkpoint.txt
    """
    try:
        raw = old_checkpoint.read_bytes()[: 1 << 16]
    except OSError as e:
        raise InvalidInput(f"{old_checkpoint}: {e.strerror}") from e
    echo_json(prove_consistency(open_archive(ctx), raw))

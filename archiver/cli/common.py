"""Helpers shared by the commands: opening the archive, passphrases, JSON output."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any

import click

from ..archive import Archive, locate
from ..keystore import SigningKey


def open_archive(ctx: click.Context) -> Archive:
    """The archive selected by --archive, $ARCHIVER_ARCHIVE or the upward search; an
    s3://BUCKET/PREFIX one with --endpoint and --catalog."""
    given = ctx.obj["archive"] or os.environ.get("ARCHIVER_ARCHIVE")
    if given and given.startswith("s3://"):
        from ..s3archive import S3Archive
        from ..s3store import parse_s3_url

        return S3Archive.open_s3(parse_s3_url(given, ctx.obj.get("endpoint")), ctx.obj.get("catalog"))
    return Archive.open(locate(ctx.obj["archive"]))


def passphrase_source(name: str) -> bytes | None:
    """$ARCHIVER_PASSPHRASE, else a hidden prompt on a terminal, else None."""
    env = os.environ.get("ARCHIVER_PASSPHRASE")
    if env:
        return env.encode("utf-8")
    if sys.stdin.isatty():
        value: str = click.prompt(f"Passphrase for key {name}", hide_input=True, err=True)
        return value.encode("utf-8")
    return None


def signing_key(ctx: click.Context, archive: Archive, role: str) -> SigningKey:
    """Load the key this command signs with."""
    return archive.signing_key(ctx.obj["key"], passphrase_source, role=role)


def echo_json(value: Any) -> None:
    """JSON on stdout, UTF-8, readable."""
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
wait_option = click.option(
    "--wait",
    "wait_seconds",
    type=click.FloatRange(min=0),
    default=0.0,
    metavar="SECONDS",
    help="Wait up to SECONDS for another writer to finish.",
)


def use_color(stream: IO[str]) -> bool:
    """Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return not os.environ.get("NO_COLOR") and bool(getattr(stream, "isatty", lambda: False)())


def paint(text: str, *, err: bool = False, **style: Any) -> str:
    """``text`` styled for the terminal it goes to, or plain."""
    return click.style(text, **style) if use_color(sys.stderr if err else sys.stdout) else text


@contextlib.contextmanager
def progress(
    total: int | Callable[[], int], label: str, *, quiet: bool = False
) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on stderr for a long run, when stderr is a terminal (never with
    ``quiet``, i.e. --json); yields the callback to advance it, or None. ``total`` may
    be a function, called only when a bar is shown."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    n = total() if callable(total) else total
    if n < 2:
        yield None
        return
    with click.progressbar(length=n, label=label, file=sys.stderr, show_pos=True) as bar:
        yield bar.update

"""``archiver edit | redact | transfer | accept | attest | history | import``."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli
from .common import echo_json, json_option, open_archive, signing_key, wait_option

file_arg = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
reason_opt = click.option("--reason", required=True, help="Why (recorded and signed).")


def _done(event_path: str, what: str) -> None:
    click.echo(event_path)
    click.echo(f"{what}; the signed event is {event_path}", err=True)


@cli.command("edit")
@click.argument("document", metavar="DOC")
@file_arg
@reason_opt
@wait_option
@click.pass_context
def edit_cmd(ctx: click.Context, document: str, file: Path, reason: str, wait_seconds: float) -> None:
    """Record FILE as the new version of DOC (custodian only); the diff is kept.

    \b
    Example:  archiver edit 3fa2 cleaned.txt --reason "drop the blog's comment widget"
    """
    from ..events import edit

    archive = open_archive(ctx)
    e = edit(archive, document, file, reason, signing_key(ctx, archive, "archivist"), wait_seconds)
    _done(e.path, f"version {e.sequence} recorded")


@cli.command("redact")
@click.argument("document", metavar="DOC")
@file_arg
@reason_opt
@wait_option
@click.pass_context
def redact_cmd(ctx: click.Context, document: str, file: Path, reason: str, wait_seconds: float) -> None:
    """Publish FILE as a redacted version of DOC; the original stays sealed in the store.

    FILE is the current text with the parts to hide replaced (e.g. a name by
    "[REDACTED]"). A proof lets anyone check, without the original, that every
    other character is what was captured.

    \b
    Example:  archiver redact 3fa2 redacted.txt --reason "protect a witness's name"
    """
    from ..events import redact

    archive = open_archive(ctx)
    e = redact(archive, document, file, reason, signing_key(ctx, archive, "archivist"), wait_seconds)
    _done(e.path, f"redacted version {e.sequence} recorded; earlier versions are sealed")


@cli.command("transfer")
@click.argument("document", metavar="DOC")
@click.option(
    "--to", "to", required=True, metavar="KEY_ID", help="The receiving archivist key (id or prefix)."
)
@reason_opt
@wait_option
@click.pass_context
def transfer_cmd(ctx: click.Context, document: str, to: str, reason: str, wait_seconds: float) -> None:
    """Start handing DOC over to another archivist; they complete it with `archiver accept`.

    \b
    Example:  archiver transfer 3fa2 --to 9c41e0 --reason "handover to the legal team"
    """
    from ..events import transfer

    archive = open_archive(ctx)
    e = transfer(archive, document, to, reason, signing_key(ctx, archive, "archivist"), wait_seconds)
    _done(
        e.path,
        "transfer started; the receiver runs `archiver accept DOC` (then `archiver import` "
        "brings an accept made on another copy back here)",
    )


@cli.command("accept")
@click.argument("document", metavar="DOC")
@click.option("--reason", default=None, help="Optional note, signed.")
@wait_option
@click.pass_context
def accept_cmd(ctx: click.Context, document: str, reason: str | None, wait_seconds: float) -> None:
    """Accept custody of DOC after a transfer to your key.

    \b
    Example:  archiver --key bob accept 3fa2
    """
    from ..events import accept

    archive = open_archive(ctx)
    e = accept(archive, document, signing_key(ctx, archive, "archivist"), reason, wait_seconds)
    _done(e.path, "custody accepted")


@cli.command("attest")
@click.argument("document", metavar="DOC")
@click.option("--note", default=None, help="What you checked, signed with the attestation.")
@wait_option
@click.pass_context
def attest_cmd(ctx: click.Context, document: str, note: str | None, wait_seconds: float) -> None:
    """As an auditor, verify DOC and countersign its current state.

    \b
    Example:  archiver --key audrey attest 3fa2 --note "checked against the court copy"
    """
    from ..events import attest

    archive = open_archive(ctx)
    e = attest(archive, document, signing_key(ctx, archive, "auditor"), note, wait_seconds)
    _done(e.path, "attestation recorded")


@cli.command("history")
@click.argument("document", metavar="DOC")
@click.option("--diff", "with_diff", is_flag=True, help="Show the stored diff of each edit.")
@json_option
@click.pass_context
def history_cmd(ctx: click.Context, document: str, with_diff: bool, as_json: bool) -> None:
    """The whole chain of custody of DOC as a timeline.

    \b
    Example:  archiver history 3fa2 --diff
    """
    from ..reading import history, stored_diff

    archive = open_archive(ctx)
    entries = history(archive, document)
    if as_json:
        if with_diff:
            for entry in entries:
                entry["diff_text"] = stored_diff(archive, entry)
        echo_json(entries)
        return
    for entry in entries:
        actor = f"{entry['actor']['name']} ({entry['actor']['key_id'][:12]})"
        line = (
            f"{entry['sequence']:>3}  {entry['time']}  {entry['action']:<11} {actor:<28} "
            f"sha256:{entry['content_sha256'][:12]}"
        )
        details = []
        if "transfer" in entry:
            details.append(f"to {entry['transfer']['to']['name']}")
        if entry.get("attestation") and entry["attestation"]["note"]:
            details.append(f"note: {entry['attestation']['note']}")
        if entry.get("diff"):
            d = entry["diff"]
            details.append(f"+{d['lines_added']}/-{d['lines_removed']} lines")
        if entry.get("redaction"):
            r = entry["redaction"]
            details.append(f"{r['tokens_redacted']} words redacted in {r['replacements']} places")
        if entry["reason"]:
            details.append(f"reason: {entry['reason']}")
        holder = entry["custodian"]["name"] or (entry["custodian"]["key_id"] or "")[:12]
        pending = " (transfer pending)" if entry["pending_transfer_to"] else ""
        click.echo(f"{line}  custodian {holder}{pending}" + (f"  [{'; '.join(details)}]" if details else ""))
        for p in entry["problems"]:
            click.echo(f"       PROBLEM {p}")
        if with_diff:
            text = stored_diff(archive, entry)
            if text:
                click.echo(text.rstrip("\n"))


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@wait_option
@click.pass_context
def import_cmd(ctx: click.Context, files: tuple[Path, ...], wait_seconds: float) -> None:
    """Import signed records made on another copy of this archive: keys, revocations,
    transfers, accepts, attestations. Each is verified before it is stored.

    \b
    Example:  archiver import ../laptop-copy/manifests/events/3f/3fa2...-000004.json
    """
    from ..events import import_records

    archive = open_archive(ctx)
    key = signing_key(ctx, archive, "archivist")  # signs the checkpoint after the import
    for line in import_records(archive, list(files), key, wait_seconds):
        click.echo(line)

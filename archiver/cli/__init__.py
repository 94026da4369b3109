"""The command line: thin click commands over the public API.

Errors are mapped once, here: an ``ArchiverError`` becomes one line on stderr
and exit 2; a verification with problems exits 1; click's usage errors exit 2.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

import click

from ..__version__ import __version__
from ..errors import ArchiverError

STARTED = time.monotonic()  # when this command began (``audit --max-seconds`` counts from it)


class Fatal(click.ClickException):
    """One line on stderr, exit 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        from .common import paint

        click.echo(
            f"{paint('archiver: error:', err=True, fg='red', bold=True)} {self.format_message()}", err=True
        )


#: which module of this package defines each command: a command imports only its own
#: module (and what that needs), so start-up does not pay for all of them
COMMANDS = {
    "init": "archive_cmds",
    "migrate": "archive_cmds",
    "reindex": "archive_cmds",
    "audit": "audit_cmd",
    "edit": "custody_cmds",
    "redact": "custody_cmds",
    "transfer": "custody_cmds",
    "accept": "custody_cmds",
    "attest": "custody_cmds",
    "history": "custody_cmds",
    "import": "custody_cmds",
    "export": "export_cmds",
    "ingest": "ingest_cmd",
    "capture": "ingest_cmd",
    "keys": "key_cmds",
    "log": "log_cmds",
    "list": "read_cmds",
    "show": "read_cmds",
    "cat": "read_cmds",
    "report": "report_cmd",
    "tsa": "tsa_cmds",
    "verify": "verify_cmd",
}


class ArchiverGroup(click.Group):
    """Maps library errors to exit codes; no traceback unless --debug. Commands are
    loaded when named (``COMMANDS``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is not None and cmd_name not in self.commands:
            import importlib

            importlib.import_module(f"{__name__}.{module}")  # its decorators register it
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArchiverError as e:
            raise Fatal(str(e)) from e
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # `archiver cat DOC | head`: the reader went away; not our failure.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(1) from None
        except Exception as e:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            raise Fatal(f"internal error ({type(e).__name__}: {e}); re-run with --debug and report it") from e


@click.group(cls=ArchiverGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--archive",
    "archive_path",
    envvar="ARCHIVER_ARCHIVE",
    metavar="PATH",
    help="The archive (default: $ARCHIVER_ARCHIVE, else the nearest folder upward "
    "holding manifests/archive.json).",
)
@click.option(
    "--key",
    "key_name",
    envvar="ARCHIVER_KEY",
    metavar="NAME",
    help="Signing key name (default: $ARCHIVER_KEY, else the only suitable key).",
)
@click.option(
    "--endpoint",
    envvar="ARCHIVER_S3_ENDPOINT",
    metavar="URL",
    help="S3 endpoint of an s3:// archive (default: $ARCHIVER_S3_ENDPOINT, $AWS_ENDPOINT_URL, AWS).",
)
@click.option(
    "--catalog",
    envvar="ARCHIVER_CATALOG",
    metavar="URL",
    help="postgresql:// catalog of an s3:// archive (default: $ARCHIVER_CATALOG); needed to write.",
)
@click.option("--debug", is_flag=True, help="Show tracebacks of internal errors.")
@click.version_option(__version__, prog_name="archiver")
@click.pass_context
def cli(
    ctx: click.Context,
    archive_path: str | None,
    key_name: str | None,
    endpoint: str | None,
    catalog: str | None,
    debug: bool,
) -> None:
    """Provenance and integrity archiving: signed manifests, a WARC store, a verifier.

    \b
    Example:  archiver init evidence && cd evidence && archiver keys generate alice
    """
    ctx.obj = {
        "archive": archive_path,
        "key": key_name,
        "endpoint": endpoint,
        "catalog": catalog,
        "debug": debug,
    }
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("archiver: %(levelname)s: %(message)s"))
    logger = logging.getLogger("archiver")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.WARNING)


#: what a command hands over to be dropped by the process's exit, not freed object by
#: object (``main`` only: under CliRunner, as in the tests, nothing is kept)
RETIRED: list[object] | None = None


def main() -> None:
    """Console-script entry point.

    A full verify ends holding every manifest and record digest of the archive: freeing
    them one by one took two seconds at 55,000 documents, after the report was out. A
    command that hands its data to ``RETIRED`` gets its exit without that: output
    flushed, then ``os._exit``. Only on a clean exit, with nothing else left to do.
    """
    global RETIRED
    RETIRED = []
    try:
        cli(prog_name="archiver")
    except SystemExit as done:
        if RETIRED and isinstance(done.code, int | None):
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except OSError:
                raise done from None  # (a closed pipe: the usual exit reports it)
            os._exit(done.code or 0)
        raise


def retire(data: object) -> None:
    """Keep ``data`` until the process exits, to be dropped with it (``main``)."""
    if RETIRED is not None:
        RETIRED.append(data)

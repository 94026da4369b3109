"""``archiver report``."""

from __future__ import annotations

from pathlib import Path

import click

from ..fsutil import atomic_write
from . import cli
from .common import open_archive


@cli.command("report")
@click.option(
    "--html",
    "html_out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT.html",
    help="Write the auditor's report to this file.",
)
@click.pass_context
def report_cmd(ctx: click.Context, html_out: Path) -> None:
    """Write the auditor's report: one self-contained HTML file (verifies the archive first).

    \b
    Example:  archiver report --html report.html
    """
    from ..htmlreport import render_report

    text = render_report(open_archive(ctx))
    atomic_write(html_out, text.encode("utf-8"), overwrite=True)
    click.echo(str(html_out))

"""The auditor's report: one self-contained HTML file (inline CSS and SVG, no script, no network).

Sections: the verification summary with every open problem highlighted, the
latest checkpoint, the trusted keys, audit coverage over time (an SVG chart),
and each document's custody timeline (an SVG picture plus the events as text).
Every text that comes from the archive is escaped, and titles carry
``dir="auto"`` so Arabic (right-to-left) titles render in their own direction.
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

from .__version__ import __version__
from .archive import Archive
from .audit import audit_keys, documents
from .canonical import load_strict
from .errors import ArchiverError
from .logproofs import latest_checkpoint
from .problems import Report
from .reading import history
from .timeutil import format_time, parse_time
from .verify import verify

MAX_TIMELINES = 500
COLOURS = {
    "captured": "#2b6cb0",
    "edited": "#b7791f",
    "redacted": "#9b2c2c",
    "transferred": "#6b46c1",
    "accepted": "#2f855a",
    "attested": "#2c7a7b",
}

CSS = """
body{font-family:system-ui,'Noto Sans','Noto Naskh Arabic',sans-serif;margin:2rem;color:#1a202c;
max-width:70rem}
h1{font-size:1.6rem} h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #cbd5e0}
.ok{color:#22543d;background:#f0fff4;padding:.5rem 1rem;border-left:4px solid #38a169}
.bad{color:#742a2a;background:#fff5f5;padding:.5rem 1rem;border-left:4px solid #e53e3e}
table{border-collapse:collapse;width:100%}
td,th{border:1px solid #e2e8f0;padding:.25rem .5rem;text-align:start;overflow-wrap:anywhere}
tr.problem td{background:#fed7d7} pre{background:#f7fafc;padding:.75rem;overflow-x:auto}
.doc{border:1px solid #e2e8f0;border-radius:6px;padding:.5rem 1rem;margin:1rem 0}
.doc.has-problem{border:2px solid #e53e3e} .docid{font-family:monospace;color:#4a5568}
.title{font-size:1.1rem;font-weight:600} ol.events{font-size:.9rem}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def render_report(archive: Archive) -> str:
    """The whole report as HTML text (runs a full verification first)."""
    report = verify(archive)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>archiver report {_e(archive.archive_id)}</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>Auditor's report</h1>",
        f"<p>Archive <code>{_e(archive.archive_id)}</code>, generated {_e(report.time)} "
        f"by archiver {_e(__version__)}.</p>",
        _summary(report),
        _checkpoint(archive),
        _keys(archive),
        _coverage(archive),
        _documents(archive, report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _summary(report: Report) -> str:
    c = report.counts
    counts = (
        f"{c.documents} documents, {c.events} events, {c.keys} keys, {c.records} WARC records, "
        f"{c.bytes} bytes checked"
    )
    if report.ok:
        head = f'<p class="ok" id="status">Verified: no problems. {counts}.</p>'
        return f'<section id="summary"><h2>Verification</h2>{head}</section>'
    rows = "".join(
        f'<tr class="problem"><td>{_e(p.code.value)}</td><td>{_e(p.message)}</td>'
        f'<td class="docid">{_e(p.document)}</td><td>{_e(p.event)}</td><td>{_e(p.file)}</td></tr>'
        for p in report.problems
    )
    return (
        '<section id="summary"><h2>Verification</h2>'
        f'<p class="bad" id="status">{len(report.problems)} open problem(s). {counts}.</p>'
        '<table id="problems"><tr><th>code</th><th>problem</th><th>document</th><th>event</th>'
        f"<th>where</th></tr>{rows}</table></section>"
    )


def _checkpoint(archive: Archive) -> str:
    try:
        text = latest_checkpoint(archive)
    except ArchiverError as e:
        text = str(e)
    return f'<section><h2>Latest checkpoint</h2><pre id="checkpoint">{_e(text)}</pre></section>'


def _keys(archive: Archive) -> str:
    trust = archive.trust()
    rows = []
    for k in sorted(trust.keys.values(), key=lambda k: k.created_at):
        rev = trust.revocations.get(k.key_id)
        status = f"revoked {format_time(rev.revoked_at)}: {rev.reason}" if rev else "active"
        rows.append(
            f'<tr><td dir="auto">{_e(k.name)}</td><td>{_e(k.role)}</td>'
            f'<td class="docid">{_e(k.key_id[:16])}</td><td>{_e(status)}</td></tr>'
        )
    return (
        '<section><h2>Trusted keys</h2><table id="keys"><tr><th>name</th><th>role</th><th>key id</th>'
        f"<th>status</th></tr>{''.join(rows)}</table></section>"
    )


def _coverage(archive: Archive) -> str:
    """Share of documents proven intact by audits so far, after each audit run."""
    total = len(documents(archive.store)) or 1
    points: list[tuple[datetime, float, int]] = []
    covered: set[str] = set()
    for key in audit_keys(archive.store):
        try:
            rec = load_strict(archive.store.read(key))
            when = parse_time(rec["time"])
            ok = [c["document"] for c in rec["checked"] if c["outcome"] == "pass"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        covered.update(ok)
        points.append((when, len(covered) / total, len(rec["checked"])))
    if not points:
        body = '<p id="coverage-none">No audit has run yet (<code>archiver audit</code>).</p>'
        return f'<section id="coverage"><h2>Audit coverage</h2>{body}</section>'
    w, h, pad = 640, 200, 30
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    span = (t1 - t0) or 1.0

    def x(t: datetime) -> float:
        return pad + (w - 2 * pad) * ((t.timestamp() - t0) / span if len(points) > 1 else 0.5)

    def y(frac: float) -> float:
        return h - pad - (h - 2 * pad) * frac

    line = " ".join(f"{x(t):.1f},{y(f):.1f}" for t, f, _ in points)
    dots = "".join(
        f'<circle cx="{x(t):.1f}" cy="{y(f):.1f}" r="4" fill="#2b6cb0"><title>{_e(format_time(t))}: '
        f"{f:.0%} covered, {n} checked</title></circle>"
        for t, f, n in points
    )
    svg = (
        f'<svg id="coverage-chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="audit coverage over time">'
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#a0aec0"/>'
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{h - pad}" stroke="#a0aec0"/>'
        f'<text x="{pad}" y="{pad - 8}" font-size="11">100%</text>'
        f'<polyline points="{line}" fill="none" stroke="#2b6cb0" stroke-width="2"/>{dots}'
        f'<text x="{pad}" y="{h - 8}" font-size="11">{_e(format_time(points[0][0])[:10])}</text>'
        f'<text x="{w - pad}" y="{h - 8}" font-size="11" text-anchor="end">'
        f"{_e(format_time(points[-1][0])[:10])}</text></svg>"
    )
    summary = (
        f"<p>{len(points)} audit run(s); {points[-1][1]:.0%} of documents proven intact at least once.</p>"
    )
    return f'<section id="coverage"><h2>Audit coverage</h2>{summary}{svg}</section>'


def _timeline_svg(entries: list[dict[str, Any]]) -> str:
    step, h = 90, 56
    w = max(step * len(entries) + 20, 120)
    items = [f'<line x1="20" y1="20" x2="{w - 20}" y2="20" stroke="#a0aec0" stroke-width="2"/>']
    for i, e in enumerate(entries):
        cx = 20 + i * step + 10
        colour = COLOURS.get(e["action"], "#4a5568")
        problem = ' stroke="#e53e3e" stroke-width="3"' if e["problems"] else ""
        items.append(
            f'<circle cx="{cx}" cy="20" r="8" fill="{colour}"{problem}><title>{_e(e["sequence"])} '
            f"{_e(e['action'])} by {_e(e['actor']['name'])} at {_e(e['time'])}</title></circle>"
            f'<text x="{cx}" y="44" font-size="11" text-anchor="middle">{_e(e["action"])}</text>'
        )
    return (
        f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="custody timeline">{"".join(items)}</svg>'
    )


def _documents(archive: Archive, report: Report) -> str:
    troubled = {p.document for p in report.problems if p.document}
    docs = documents(archive.store)
    out = [f'<section id="documents"><h2>Documents ({len(docs)})</h2>']
    if len(docs) > MAX_TIMELINES:
        out.append(
            f"<p>Timelines of the first {MAX_TIMELINES} documents, and of every document with a problem.</p>"
        )
    shown = [d for d in docs if d in troubled] + [d for d in docs if d not in troubled]
    for doc in shown[: max(MAX_TIMELINES, len(troubled))]:
        try:
            entries = history(archive, doc)
        except ArchiverError as e:
            out.append(
                f'<div class="doc has-problem" id="doc-{_e(doc)}"><span class="docid">{_e(doc)}</span>'
                f"<p>cannot read its chain: {_e(e)}</p></div>"
            )
            continue
        first = archive_title(archive, entries)
        cls = "doc has-problem" if doc in troubled else "doc"
        events = "".join(
            f"<li><time>{_e(e['time'])}</time> <b>{_e(e['action'])}</b> by "
            f'<span dir="auto">{_e(e["actor"]["name"])}</span>'
            + (f' — <span dir="auto">{_e(e["reason"])}</span>' if e["reason"] else "")
            + f' (custodian <span dir="auto">{_e(e["custodian"]["name"])}</span>)</li>'
            for e in entries
        )
        out.append(
            f'<div class="{cls}" id="doc-{_e(doc)}"><div class="title" dir="auto">{_e(first)}</div>'
            f'<div class="docid">{_e(doc)}</div>{_timeline_svg(entries)}'
            f'<ol class="events">{events}</ol></div>'
        )
    out.append("</section>")
    return "".join(out)


def archive_title(archive: Archive, entries: list[dict[str, Any]]) -> str:
    """A document's title for people: its capture metadata's title, else its file name."""
    try:
        manifest = load_strict(archive.store.read(entries[0]["manifest"]))
        source = manifest.get("source") or {}
        md = source.get("metadata") or {}
        return str(md.get("title") or source.get("filename") or md.get("url") or "(untitled)")
    except (OSError, ValueError, IndexError):
        return "(unreadable)"

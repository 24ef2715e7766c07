"""The HTML page: charts beside each run's summary, checks and config; one file, no requests.

Everything is inline: the style sheet (allowed by its hash in the Content-Security-Policy,
which forbids every other source: no script, image, font or connection), and the charts
as SVG. Every string from a result (file names, config values, checks) goes through
``esc``: a hostile result cannot add markup, and the policy would stop a script anyway.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from qmqpsource.report.charts import Chart, charts
from qmqpsource.report.search import HEAD, answer, search_chart, step_rows
from qmqpsource.report.style import STYLE
from qmqpsource.report.svg import DASHES, esc, marker
from qmqpsource.report.view import LATENCY_KINDS, OUTCOMES, RunView
from qmqpsource.values import MAX_COUNT

__all__ = ["render", "verdict"]

_LATENCY_COLUMNS = (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9"),
                    ("max", "max"))


def _policy() -> str:
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    return (f"default-src 'none'; style-src 'sha256-{digest}'; base-uri 'none'; "
            "form-action 'none'")


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], css: str = "",
           mark_differing: bool = False) -> str:
    """A table of escaped text; the first column is a row heading. ``mark_differing``:
    rows whose values are not all the same get class "differs" (before/after at a glance)."""
    out = [f'<table class="{css}"><thead><tr>'
           + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for row in rows:
        differs = mark_differing and len(set(row[1:])) > 1
        out.append(("<tr class=\"differs\">" if differs else "<tr>") + "<th>" + esc(row[0])
                   + "</th>" + "".join(f"<td>{esc(cell)}</td>" for cell in row[1:]) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _get(document: Mapping[str, Any], *keys: str) -> Any:
    value: Any = document
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    return value


def _fixed(value: Any, digits: int = 1, scale: float = 1.0) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value * scale:.{digits}f}"
    return "-"


def _time(value: Any) -> str:
    """An ISO 8601 time to the second, with its offset: 2026-12-01 23:16:22 +0000."""
    try:
        return f"{datetime.fromisoformat(value):%Y-%m-%d %H:%M:%S %z}".rstrip()
    except (TypeError, ValueError):
        return str(value)


def _count(outcome: str, document: Mapping[str, Any]) -> str:
    return str(_get(document, "counts", outcome))


def _summary(runs: Sequence[RunView]) -> str:
    """Counts and throughput, a column per run; then each latency's percentiles, a row each."""
    measures: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("status", lambda d: str(d.get("status", "-"))),
        ("started at", lambda d: _time(d.get("started_at"))),
        ("elapsed (s)", lambda d: _fixed(d.get("elapsed_s"), 3)),
        ("interval (s)", lambda d: _fixed(d.get("interval_s"), 3)),
        ("messages", lambda d: str(_get(d, "counts", "attempted"))),
        *((o, partial(_count, o)) for o in OUTCOMES),
        ("msg/s accepted", lambda d: _fixed(_get(d, "throughput", "accepted_per_s"))),
        ("msg/s attempted", lambda d: _fixed(_get(d, "throughput", "messages_per_s"))),
        ("MB/s", lambda d: _fixed(_get(d, "throughput", "bytes_per_s"), 2, 1e-6)),
    ]
    rows = [[name, *(cell(run.document) for run in runs)] for name, cell in measures]
    latency = [[f"{run.label}: {kind}", *(_fixed(_get(run.document, "latency_ms", kind, key), 3)
                                          for key, _ in _LATENCY_COLUMNS)]
               for run in runs for kind in LATENCY_KINDS
               if isinstance(_get(run.document, "latency_ms", kind), Mapping)]
    return ("<h2>Summary</h2>" + _table(["", *(run.label for run in runs)], rows, "numbers")
            + _table(["latency (ms)", *(h for _, h in _LATENCY_COLUMNS)], latency, "numbers"))


def _checks(runs: Sequence[RunView]) -> str:
    rows = [[run.label, check, f"{value:g}", "held" if ok else "FAILED"]
            for run in runs for check, value, ok in run.checks]
    if not rows:
        return "<h2>Checks</h2><p>No --check in these runs.</p>"
    return "<h2>Checks</h2>" + _table(["run", "check", "value", "verdict"], rows, "checks")


def _text(value: Any) -> str:
    if value == MAX_COUNT and not isinstance(value, bool):
        return "no limit"  # -m of a --duration run: MAX_COUNT stands for none
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _config(runs: Sequence[RunView]) -> str:
    keys: list[str] = []
    for run in runs:
        keys += [str(k) for k in run.config if str(k) not in keys]
    rows = [[key, *(_text(run.config.get(key)) for run in runs)] for key in keys]
    return "<h2>Config</h2>" + _table(["option", *(run.label for run in runs)], rows, "config",
                                      mark_differing=len(runs) > 1)


def _legend(chart: Chart) -> str:
    items = []
    for line in chart.lines:
        sample = (f'<svg width="34" height="10" aria-hidden="true"><line class="line '
                  f's-{esc(line.series)} r-{line.run % DASHES}" x1="1" x2="33" y1="5" y2="5"/>'
                  "</svg>")
        items.append(f"<li>{sample}{esc(line.label)}</li>")
    for shape, meaning in chart.keys:  # markers: what their shape means
        sample = (f'<svg width="34" height="10" aria-hidden="true">'
                  f'{marker(shape, "key", 17, 5)}</svg>')
        items.append(f"<li>{sample}{esc(meaning)}</li>")
    return f'<ul class="legend">{"".join(items)}</ul>'


def _figure(chart: Chart) -> str:
    parts = [f'<figure id="{esc(chart.name)}"><figcaption>{esc(chart.title)}</figcaption>']
    if chart.svg is not None:
        parts += [chart.svg, _legend(chart)]
    if chart.note:
        parts.append(f'<p class="note">{esc(chart.note)}</p>')
    parts.append("</figure>")
    return "\n".join(parts)


def _search(runs: Sequence[RunView]) -> list[str]:
    """The --find-rate runs' searches: their chart, then each one's steps and answer."""
    chart = search_chart(runs)
    if chart is None:
        return []
    out = ["<h2>Rate search</h2>", _figure(chart)]
    for run in runs:
        if run.search is not None:
            out += [f'<h3>{esc(run.label)}</h3><p class="answer">{esc(answer(run.search))}</p>',
                    _table(HEAD, step_rows(run.search), "numbers steps")]
    return out


def verdict(run: RunView) -> tuple[bool, str]:
    """Whether ``run`` passed, and its line in the banner: a --find-rate result's answer
    first, then its status and its checks. It passed when it completed, every check held
    and no message failed that no check judged (a search: when a rate held), as its
    command's exit status has it."""
    status = str(run.document.get("status", "-"))
    missed = [check for check, _, ok in run.checks if not ok]
    words = [answer(run.search)] if run.search is not None else []
    words.append(status)
    if missed:
        words.append(f"{len(missed)} of {len(run.checks)} checks failed: {', '.join(missed)}")
    elif run.checks:
        words.append(f"{'the check' if len(run.checks) == 1 else 'every check'} held "
                     f"({', '.join(check for check, _, _ in run.checks)})")
    else:
        words.append("no check")
    if run.unjudged:
        words.append(f"{run.unjudged} failed messages that no check judged")
    passed = status == "completed" and not missed and not run.unjudged
    if run.search is not None:
        passed = passed and run.search.rate is not None
    return passed, "; ".join(words)


def _banner(runs: Sequence[RunView]) -> str:
    """Every run's verdict, at the top of the page: held, or failed and why."""
    lines = []
    for run in runs:
        passed, words = verdict(run)
        word = "passed" if passed else "FAILED"
        lines.append(f'<p class="verdict {"held" if passed else "failed"}">'
                     f"<strong>{esc(run.label)}</strong>: {word}: {esc(words)}</p>")
    return f'<section class="verdicts">{"".join(lines)}</section>'


def render(runs: Sequence[RunView], *, generator: str) -> str:
    """The whole page for ``runs`` (one or more), as text; ``generator``: "qmqp-report 0.1"."""
    names = ", ".join(run.label for run in runs)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Ours alone (no input in it), and free of '"' and '<': written as it is.
        f'<meta http-equiv="Content-Security-Policy" content="{_policy()}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        f"<title>{esc('qmqp-report: ' + names)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<header><h1>qmqp-report: {esc(names)}</h1>{_banner(runs)}"
        f'<p class="note">Written by {esc(generator)}. Hover a chart for exact values.</p>'
        "</header>",
        '<main><section class="charts">',
        *(_figure(chart) for chart in charts(runs)),
        *_search(runs),
        '</section><aside class="runs">',
        _summary(runs), _checks(runs), _config(runs),
        "</aside></main></body></html>",
        "",
    ])

"""The compact human summary of a result, as qmqp-source and qmqp-report print it.

    3.214 s, 20000 messages: 20000 accepted, 0 tempfail, 0 permfail, 0 error
    6223.1 msg/s accepted (6223.1 attempted), 6223.1 rcpt/s, 7.06 MB/s
    latency ms      p50      p90      p99    p99.9      max
      connect     0.051    0.080    0.210    1.200    3.400
      total       0.480    0.700    1.100    2.500    9.000

MB is 10**6 bytes; recipients and bytes are those sent. Errors by cause get a line of
their own when there are any.
"""

from __future__ import annotations

from qmqpsource.results.checks import Verdict, unit_of
from qmqpsource.results.histogram import Histogram
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.result import Result
from qmqpsource.wording import counted

__all__ = ["SUMMARY_LATENCIES", "SUMMARY_PERCENTILES", "format_summary"]

SUMMARY_LATENCIES = ("connect", "total")
# Percentile -> column heading; max is its own column.
SUMMARY_PERCENTILES = {50.0: "p50", 90.0: "p90", 99.0: "p99", 99.9: "p99.9"}
_WIDTH = 9


def _latency_cells(histogram: Histogram) -> list[str]:
    if not histogram.count:
        return ["-"] * (len(SUMMARY_PERCENTILES) + 1)
    values = [*histogram.percentiles(list(SUMMARY_PERCENTILES)), histogram.max]
    return [f"{v / 1000:.3f}" for v in values]


def format_summary(result: Result) -> str:
    """The summary as lines of text, each ending in a newline."""
    o = result.outcomes
    accepted, tempfail, permfail = (o[Outcome.ACCEPTED], o[Outcome.TEMPFAIL], o[Outcome.PERMFAIL])
    runs = f" ({result.runs} runs)" if result.runs > 1 else ""
    status = "" if result.status == "completed" else f" ({result.status})"
    lines = [
        f"{result.elapsed_s:.3f} s{runs}{status}, {counted(result.attempted, 'message')}: "
        f"{accepted} accepted, {tempfail} tempfail, {permfail} permfail, {result.error} error"
    ]
    errors = [f"{cause} {n}" for cause, n in result.errors.items() if n]
    if errors:
        lines.append("errors: " + ", ".join(errors))
    if result.cut_off:
        lines.append(
            f"{counted(result.cut_off, 'message')} "
            f"{'was' if result.cut_off == 1 else 'were'} in flight when the run was stopped"
            " (cut off, no outcome)"
        )
    if result.behind_schedule:
        lines.append(
            f"{counted(result.behind_schedule, 'message')} started behind schedule"
            " (every session busy);"
            " their latency counts from the schedule"
        )
    # Accepted first: a server that fails every message fast has a high attempted rate.
    lines.append(
        f"{result.rate(accepted):.1f} msg/s accepted ({result.rate(result.attempted):.1f} "
        f"attempted), {result.rate(result.recipients):.1f} rcpt/s, "
        f"{result.rate(result.bytes_sent) / 1e6:.2f} MB/s"
    )
    rows = {name: _latency_cells(result.latency[name])
            for name in SUMMARY_LATENCIES if name in result.latency}
    # 10 s and more is 9 characters and up: the columns widen to keep a space between.
    width = max([_WIDTH, *(len(cell) + 1 for cells in rows.values() for cell in cells)])
    heads = [*SUMMARY_PERCENTILES.values(), "max"]
    lines.append("latency ms " + "".join(h.rjust(width) for h in heads))
    lines.extend(f"  {name:<9}" + "".join(c.rjust(width) for c in cells)
                 for name, cells in rows.items())
    lines.extend(_check_line(verdict) for verdict in result.checks)
    return "".join(line + "\n" for line in lines)


def _check_line(verdict: Verdict) -> str:
    """``check p99<250ms: 212.4 ms, held`` (latencies in ms, shares in %, rates in msg/s)."""
    unit = unit_of(verdict.check)
    value = f"{verdict.value:g}{'' if unit in ('', '%') else ' '}{unit}"
    return f"check {verdict.check}: {value}, {'held' if verdict.ok else 'FAILED'}"

"""Thresholds a run must meet (--check EXPR): pass or fail for a project's CI.

    [connect.|reply.|total.]METRIC OP DURATION   latency: METRIC p50 p90 p99 p999 max mean,
                                                 OP < or <=, DURATION 500us, 250ms, 1.5s
    failed|tempfail|permfail|error OP LIMIT      outcomes: OP == < <=, LIMIT a count (3)
                                                 or a share of the messages (0.1%)
    rate OP MSGS                                 throughput over the run: OP >= or >

A latency without a prefix is the total one. Values are judged as the summary shows
them: latencies from the histograms (microsecond precision, 3 significant figures),
in milliseconds; shares in percent of the messages that ended.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from qmqpsource.errors import CheckError
from qmqpsource.results.histogram import Histogram
from qmqpsource.results.outcome import Outcome
from qmqpsource.results.stats import LATENCIES

__all__ = [
    "Check", "CheckError", "Measured", "Verdict", "judge", "judges_failures", "parse_check",
    "unit_of",
]

_LATENCY_METRICS = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9, "max": None, "mean": None}
_OUTCOMES = ("failed", "tempfail", "permfail", "error")
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}  # to milliseconds
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, "==": operator.eq, ">=": operator.ge, ">": operator.gt,
}
# What each kind of check may compare with.
_ALLOWED = {"latency": ("<", "<="), "outcome": ("==", "<", "<="), "rate": (">=", ">")}
_SHAPE = re.compile(r"\s*([a-z0-9.]+)\s*(<=|>=|==|<|>)\s*([0-9.]+)\s*([a-z%]*)\s*")


@dataclass(frozen=True, slots=True)
class Check:
    """One parsed threshold. ``limit`` is in the unit of ``measure``'s values."""

    text: str
    kind: str  # "latency", "outcome" or "rate"
    name: str  # e.g. "total.p99", "failed", "rate"
    op: str
    limit: float
    share: bool = False  # an outcome check given in percent

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.limit)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A check judged against a run: the value measured and whether the check held."""

    check: str
    value: float
    ok: bool

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, "value": self.value, "ok": self.ok}


def parse_check(text: str) -> Check:
    """Parse one --check expression; CheckError says what is wrong with it."""
    match = _SHAPE.fullmatch(text)
    if match is None:
        raise CheckError(f"--check {text!r}: expected NAME OP VALUE, like 'p99<250ms', "
                         "'failed==0' or 'rate>=500'")
    name, op, number, unit = match.groups()
    try:
        value = float(number)
    except ValueError:
        raise CheckError(f"--check {text!r}: {number!r} is not a number") from None
    kind = _kind(name, text)
    if op not in _ALLOWED[kind]:
        allowed = " or ".join(_ALLOWED[kind])
        raise CheckError(f"--check {text!r}: {name} takes {allowed}, not {op}")
    if kind == "latency":
        if unit not in _UNITS:
            raise CheckError(f"--check {text!r}: a duration needs a unit: us, ms or s")
        return Check(text, kind, _latency_name(name), op, value * _UNITS[unit])
    if kind == "outcome":
        if unit not in ("", "%"):
            raise CheckError(f"--check {text!r}: a count, or a share in %, not {unit!r}")
        if unit == "" and not value.is_integer():
            raise CheckError(f"--check {text!r}: a count is a whole number")
        return Check(text, kind, name, op, value, share=unit == "%")
    if unit not in ("", "/s"):
        raise CheckError(f"--check {text!r}: rate is in messages a second, not {unit!r}")
    return Check(text, kind, name, op, value)


def _kind(name: str, text: str) -> str:
    if name in _OUTCOMES:
        return "outcome"
    if name == "rate":
        return "rate"
    metric = name.rpartition(".")[2]
    prefix = name.rpartition(".")[0]
    if metric in _LATENCY_METRICS and prefix in ("", *LATENCIES):
        return "latency"
    raise CheckError(
        f"--check {text!r}: unknown {name!r}: a latency ([connect.|reply.|total.]p50 p90 "
        "p99 p999 max mean), failed, tempfail, permfail, error, or rate"
    )


def _latency_name(name: str) -> str:
    return name if "." in name else f"total.{name}"


class Measured(Protocol):
    """What the checks measure of a run: a Result (one run's, or a merge's). A protocol,
    so that result.py, which holds the verdicts, may import this module, not the reverse."""

    @property
    def latency(self) -> Mapping[str, Histogram]: ...
    @property
    def outcomes(self) -> Mapping[Outcome, int]: ...
    @property
    def attempted(self) -> int: ...
    def rate(self, amount: int) -> float: ...


def judge(checks: Sequence[Check], result: Measured) -> list[Verdict]:
    """Each check against ``result`` (one run, or several merged)."""
    verdicts = []
    for check in checks:
        value = measure(check, result)
        verdicts.append(Verdict(check.text, _round(value), check.holds(value)))
    return verdicts


def measure(check: Check, result: Measured) -> float:
    """What ``check`` is about, in its unit: ms, a count, percent, or messages a second."""
    if check.kind == "latency":
        latency, _, metric = check.name.partition(".")
        histogram = result.latency[latency]
        if metric == "max":
            return float(histogram.max) / 1000
        if metric == "mean":
            return float(histogram.mean) / 1000
        percentile = _LATENCY_METRICS[metric]
        assert percentile is not None
        return histogram.percentile(percentile) / 1000
    if check.kind == "outcome":
        count = _outcome_count(check.name, result.outcomes)
        if not check.share:
            return float(count)
        return 100.0 * count / result.attempted if result.attempted else 0.0
    return float(result.rate(result.attempted))


def _outcome_count(name: str, outcomes: Mapping[Outcome, int]) -> int:
    if name == "failed":
        return sum(n for o, n in outcomes.items() if o is not Outcome.ACCEPTED)
    if name == "error":
        return sum(n for o, n in outcomes.items() if o.is_error)
    return outcomes.get(Outcome(name), 0)


def unit_of(text: str) -> str:
    """The unit of the value a check measures ("ms", "%", "msg/s", "" for counts); "" for a
    check this version cannot parse (a result written by another)."""
    try:
        check = parse_check(text)
    except CheckError:
        return ""
    if check.kind == "latency":
        return "ms"
    if check.kind == "rate":
        return "msg/s"
    return "%" if check.share else ""


def judges_failures(checks: Sequence[Check]) -> bool:
    """Whether a check is about failed messages: then it, not their mere number, decides."""
    return any(check.kind == "outcome" for check in checks)


def _round(value: float) -> float:
    """As the summary would print it: three decimals are microseconds for latencies."""
    return round(value, 3) if math.isfinite(value) else value

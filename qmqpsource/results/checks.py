"""Thresholds a run must meet (--check EXPR): pass or fail for a project's CI.

    [connect.|reply.|total.]FIGURE OP DURATION   latency: FIGURE a percentile (p50 p90
                                                 p95 p99 p999 p99.9 p99.99, any from p0
                                                 to p100), max or mean; OP < or <=;
                                                 DURATION 500us, 250ms, 1.5s
    failed|tempfail|permfail|error OP LIMIT      outcomes: OP == < <=, LIMIT a count (3)
                                                 or a share of the messages (0.1%)
    rate OP MSGS                                 accepted messages a second over the
                                                 run: OP >= or >, MSGS 500, 500/s or 500msg/s

A latency without a prefix is the total one. A percentile's digits without a point
read as its name says: p50 is 50, p999 99.9, p9999 99.99. Values are judged as the
summary shows them: latencies from the histograms (microsecond precision, 3
significant figures), in milliseconds; shares in percent of the messages that ended.
A rate counts only accepted messages: a server that fails every message fast must not
pass ``rate>=N`` (the JSON's messages_per_s, which counts them all, would).

A Check is refused when it is made (CheckError, naming the part at fault) unless
judge() can judge it, so that a bad one stops a run before it starts, never after.
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
    "Check", "CheckError", "Measured", "Verdict", "judge", "parse_check", "percentile_of",
    "unit_of", "unjudged_failures",
]

_OUTCOMES = ("failed", "tempfail", "permfail", "error")
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}  # to milliseconds
_RATE_UNITS = ("", "/s", "msg/s")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt, "<=": operator.le, "==": operator.eq, ">=": operator.ge, ">": operator.gt,
}
# What each kind of check may compare with.
_ALLOWED = {"latency": ("<", "<="), "outcome": ("==", "<", "<="), "rate": (">=", ">")}
_NAMES = {"outcome": _OUTCOMES, "rate": ("rate",)}  # a latency's: connect.p99...
# Spaces only, never a newline or a tab: the check is quoted whole in the summary's lines.
_SHAPE = re.compile(r" *([a-z0-9.]+) *(<=|>=|==|<|>) *([0-9.]+) *([a-z%/]*) *")
_NEGATIVE = re.compile(r"(<=|>=|==|<|>)\s*-")
_PERCENTILE = re.compile(r"p(\d+(?:\.\d+)?)")
_KNOWN = ("a latency ([connect.|reply.|total.] then p50 p90 p99 p999, any pNN, max or mean), "
          "failed, tempfail, permfail, error, or rate")


def percentile_of(figure: str) -> float | None:
    """The percentile that a latency figure names (p99 -> 99.0, p999 -> 99.9, p99.9 ->
    99.9); None for one that names none (max, mean, a typo)."""
    match = _PERCENTILE.fullmatch(figure)
    if match is None:
        return None
    digits = match[1]
    if "." not in digits and len(digits) > 2 and digits.startswith("99"):
        return float(f"99.{digits[2:]}")  # p999, p9999: the nines after the point
    return float(digits)  # p950 is 950: no percentile (p95.0 is)


@dataclass(frozen=True, slots=True)
class Check:
    """One threshold, judged by judge(). ``limit`` is in the unit of measure()'s values:
    ms, a count, percent (``share``), or messages a second."""

    text: str  # as given: verdicts and messages quote it
    kind: str  # "latency", "outcome" or "rate"
    name: str  # "total.p99", "reply.p99.9", "failed", "rate"
    op: str
    limit: float
    share: bool = False  # an outcome check given in percent

    def __post_init__(self) -> None:
        _refuse_unjudgeable(self)

    @property
    def latency(self) -> str:
        """A latency check's histogram: connect, reply or total."""
        return self.name.partition(".")[0]

    @property
    def figure(self) -> str:
        """A latency check's figure: p99, p99.9, max, mean."""
        return self.name.partition(".")[2]

    def holds(self, value: float) -> bool:
        return _OPS[self.op](value, self.limit)


def _refuse_unjudgeable(check: Check) -> None:
    """CheckError unless judge() can judge ``check``: its kind, name, op and limit."""
    where = f"--check {check.text!r}"
    if check.kind not in _ALLOWED:
        raise CheckError(f"{where}: unknown kind {check.kind!r}", field="checks")
    if check.kind == "latency":
        if check.latency not in LATENCIES:
            raise CheckError(f"{where}: unknown latency {check.latency!r}: connect, reply "
                             "or total", field="checks")
        _refuse_unknown_figure(check.figure, where)
    elif check.name not in _NAMES[check.kind]:
        raise CheckError(f"{where}: unknown {check.name!r}: {_KNOWN}", field="checks")
    if check.op not in _ALLOWED[check.kind]:
        allowed = " or ".join(_ALLOWED[check.kind])
        what = check.figure if check.kind == "latency" else check.name
        raise CheckError(f"{where}: {what} takes {allowed}, not {check.op}", field="checks")
    if not math.isfinite(check.limit) or check.limit < 0:
        raise CheckError(f"{where}: the limit is not a finite number", field="checks")
    if check.kind == "outcome" and not check.share and not float(check.limit).is_integer():
        raise CheckError(f"{where}: a count is a whole number", field="checks")


def _refuse_unknown_figure(figure: str, where: str) -> None:
    if figure in ("max", "mean"):
        return
    percentile = percentile_of(figure)
    if percentile is None:
        raise CheckError(f"{where}: unknown latency figure {figure!r}: p50, p90, p99, p999, "
                         "any pNN from p0 to p100 (p95, p99.9), max or mean", field="checks")
    if not 0 <= percentile <= 100:
        raise CheckError(f"{where}: {figure}: a percentile is from p0 to p100",
                         field="checks")


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
        if _NEGATIVE.search(text):
            raise CheckError(f"--check {text!r}: a limit is a number of 0 or more",
                             field="checks")
        raise CheckError(f"--check {text!r}: expected NAME OP VALUE, like 'p99<250ms', "
                         "'failed==0' or 'rate>=500' (digits and a point: no exponent)",
                         field="checks")
    name, op, number, unit = match.groups()
    try:
        value = float(number)
    except ValueError:
        raise CheckError(f"--check {text!r}: {number!r} is not a number",
                         field="checks") from None
    kind, name = _kind_and_name(name, text)
    if kind == "latency":
        if unit not in _UNITS:
            raise CheckError(f"--check {text!r}: a duration needs a unit: us, ms or s",
                             field="checks")
        return Check(text, kind, name, op, value * _UNITS[unit])
    if kind == "outcome":
        if unit not in ("", "%"):
            raise CheckError(f"--check {text!r}: a count, or a share in %, not {unit!r}",
                             field="checks")
        if unit == "%" and value > 100:
            raise CheckError(f"--check {text!r}: a share is from 0% to 100%", field="checks")
        return Check(text, kind, name, op, value, share=unit == "%")
    if unit not in _RATE_UNITS:
        raise CheckError(f"--check {text!r}: rate is in messages a second (500, 500/s or "
                         f"500msg/s), not {unit!r}", field="checks")
    return Check(text, kind, name, op, value)


def _kind_and_name(name: str, text: str) -> tuple[str, str]:
    """The kind of check ``name`` makes, and its name in full (p99 -> total.p99)."""
    if name in _OUTCOMES:
        return "outcome", name
    if name == "rate":
        return "rate", name
    if name in ("max", "mean") or _PERCENTILE.fullmatch(name):
        return "latency", f"total.{name}"  # p99.9: a figure, not latency 'p99'
    if "." in name:
        return "latency", name  # Check says what is wrong with either part
    raise CheckError(f"--check {text!r}: unknown {name!r}: {_KNOWN}", field="checks")


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
    """What ``check`` is about, in its unit: ms, a count, percent, or messages a second.
    A latency the result has none of (reply, in some of schema /1) is a CheckError."""
    if check.kind == "latency":
        histogram = result.latency.get(check.latency)
        if histogram is None:
            raise CheckError(f"--check {check.text!r}: the result has no {check.latency} "
                             "latency to judge", field="checks")
        if check.figure == "max":
            return float(histogram.max) / 1000
        if check.figure == "mean":
            return float(histogram.mean) / 1000
        percentile = percentile_of(check.figure)
        assert percentile is not None  # Check refuses any other figure
        return histogram.percentile(percentile) / 1000
    if check.kind == "outcome":
        count = _outcome_count(check.name, result.outcomes)
        if not check.share:
            return float(count)
        return 100.0 * count / result.attempted if result.attempted else 0.0
    return float(result.rate(result.outcomes.get(Outcome.ACCEPTED, 0)))


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


def unjudged_failures(
    checks: Sequence[Check | Verdict], outcomes: Mapping[Outcome, int]
) -> int:
    """How many failed messages no check judged: they fail the run as they would with
    no check at all. A check on an outcome judges its own failures (and allows as many
    as it holds for): ``failed`` every failure, ``error`` the errors by cause,
    ``tempfail`` and ``permfail`` theirs; a check on latency or rate judges none. A
    Verdict stands for the check it judged (read back from a file: its text is parsed
    again; one this version cannot parse judges nothing)."""
    judged = {check.name for check in map(_check_of, checks)
              if check is not None and check.kind == "outcome"}
    if "failed" in judged:
        return 0
    return sum(n for outcome, n in outcomes.items()
               if outcome.is_failure and outcome.value not in judged
               and not (outcome.is_error and "error" in judged))


def _check_of(item: Check | Verdict) -> Check | None:
    if isinstance(item, Check):
        return item
    try:
        return parse_check(item.check)
    except CheckError:
        return None


def _round(value: float) -> float:
    """As the summary would print it: three decimals are microseconds for latencies."""
    return round(value, 3) if math.isfinite(value) else value

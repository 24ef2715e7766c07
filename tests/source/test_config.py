"""SourceConfig checks every value itself, in the command line's words (config.OPTIONS)."""

from __future__ import annotations

from typing import Any

import pytest

from qmqpsource.source.config import OPTIONS, ConfigError, SourceConfig
from qmqpsource.values import MAX_COUNT, ValueProblem

TARGET = "127.0.0.1:628"
COUNTS = ["sessions", "messages", "length", "recipients", "connect_attempts", "connect_limit",
          "reply_limit"]


def refusal(**options: Any) -> str:
    with pytest.raises(ConfigError) as refused:
        SourceConfig(**{"target": TARGET, **options})
    return str(refused.value)


@pytest.mark.parametrize("name", COUNTS)
def test_counts_are_positive_and_within_the_cap(name: str) -> None:
    option = OPTIONS[name]
    assert refusal(**{name: 0}) == f"{option} must be a positive number, not 0"
    assert refusal(**{name: -1}) == f"{option} must be a positive number, not -1"
    assert refusal(**{name: MAX_COUNT + 1}) == (
        f"{option} must be at most {MAX_COUNT}, not {MAX_COUNT + 1}"
    )
    largest: dict[str, Any] = {name: MAX_COUNT}
    assert getattr(SourceConfig(TARGET, **largest), name) == MAX_COUNT


@pytest.mark.parametrize("name", ["timeout", "duration", "fixed_delay", "random_delay"])
@pytest.mark.parametrize(
    ("value", "words"),
    [(-1.0, "a positive number of seconds, not -1.0"),
     (float("nan"), "a positive number of seconds, not nan"),
     (float("inf"), "a positive number of seconds, not inf"),
     (1e30, "at most 31536000 seconds, not 1e+30")],
)
def test_seconds_are_positive_finite_and_within_the_cap(
    name: str, value: float, words: str
) -> None:
    assert refusal(**{name: value}) == f"{OPTIONS[name]} must be {words}"


def test_options_are_named_as_the_command_line_names_them() -> None:
    assert refusal(sessions=0) == "-s must be a positive number, not 0"
    assert refusal(timeout=0.0) == "--timeout must be a positive number of seconds, not 0.0"
    assert refusal(duration=0.0) == "--duration must be a positive number of seconds, not 0.0"


def test_a_wait_of_zero_is_no_wait() -> None:
    config = SourceConfig(TARGET)
    assert (config.fixed_delay, config.random_delay) == (0.0, 0.0)
    assert SourceConfig(TARGET, fixed_delay=0.5).fixed_delay == 0.5


def test_fixed_and_random_waits_exclude_each_other() -> None:
    assert refusal(fixed_delay=1.0, random_delay=2.0) == "-w and -R exclude each other"


@pytest.mark.parametrize("rate", [0.0, -4.0, float("nan"), float("inf")])
def test_rate_is_a_positive_number_of_messages_per_second(rate: float) -> None:
    assert refusal(rate=rate) == (
        f"--rate must be a positive number of messages per second, not {rate}"
    )


def test_target_and_shard() -> None:
    assert refusal(target="") == "missing target"
    assert refusal(shard_index=2, shard_count=2) == "shard index must be in 0..count-1"


def test_a_refusal_is_a_value_problem_and_a_value_error() -> None:
    # The command line maps ValueProblem to its usage failure; callers may catch ValueError.
    assert issubclass(ConfigError, ValueProblem) and issubclass(ConfigError, ValueError)


def test_as_dict_gives_enums_as_their_values() -> None:
    value = SourceConfig(TARGET, sessions=3).as_dict()
    assert (value["target"], value["sessions"], value["family"]) == (TARGET, 3, "any")

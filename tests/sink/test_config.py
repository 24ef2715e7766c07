"""SinkConfig and Faults: the one check of each value, in the words the command shows."""

from __future__ import annotations

from typing import Any

import pytest

from qmqpsource.cli.sink import main
from qmqpsource.sink import Faults, SinkConfig
from qmqpsource.values import MAX_COUNT, ValueProblem

CONFIG_PROBLEMS = [
    ({"backlog": 0}, "backlog must be a positive number, not 0"),
    ({"backlog": MAX_COUNT + 1}, f"backlog must be at most {MAX_COUNT}, not {MAX_COUNT + 1}"),
    ({"max_size": 0}, "--max-size must be a positive number of bytes, not 0"),
    ({"max_size": MAX_COUNT + 1}, f"--max-size must be at most {MAX_COUNT}, not {MAX_COUNT + 1}"),
    ({"max_connections": -1}, "--max-connections must be a positive number, not -1"),
    ({"timeout": 0.0}, "--timeout must be a positive number of seconds, not 0.0"),
    ({"timeout": float("nan")}, "--timeout must be a positive number of seconds, not nan"),
    ({"timeout": 1e300}, "--timeout must be at most 31536000 seconds, not 1e+300"),
]
FAULT_PROBLEMS = [
    ({"tempfail": 1.5}, "--tempfail must be a rate between 0 and 1, not 1.5"),
    ({"drop": -0.1}, "--drop must be a rate between 0 and 1, not -0.1"),
    ({"hang": float("nan")}, "--hang must be a rate between 0 and 1, not nan"),
    ({"tempfail": 0.6, "reject": 0.6},
     "--drop, --hang, --tempfail and --reject add up to more than 1"),
    ({"delay_min": 2, "delay_max": 1},
     "--delay wants SECONDS or MIN-MAX with 0 <= MIN <= MAX, not '2-1'"),
    ({"delay_max": float("inf")},
     "--delay wants SECONDS or MIN-MAX with 0 <= MIN <= MAX, not '0-inf'"),
    ({"delay_max": 1e300}, "--delay must be at most 31536000 seconds, not '0-1e+300'"),
]


@pytest.mark.parametrize(("options", "says"), CONFIG_PROBLEMS)
def test_config_values_are_checked(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueProblem) as info:
        SinkConfig(endpoint="127.0.0.1:0", **options)
    assert str(info.value) == says


@pytest.mark.parametrize(("options", "says"), FAULT_PROBLEMS)
def test_fault_values_are_checked(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueProblem) as info:
        Faults(**options)
    assert str(info.value) == says


def test_config_checks() -> None:
    with pytest.raises(ValueError):
        SinkConfig(endpoint="127.0.0.1:0", backlog=0)
    with pytest.raises(ValueError):
        SinkConfig(endpoint="127.0.0.1:0", timeout=0)


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--max-connections", "0"], "--max-connections must be a positive number, not 0"),
        (["--timeout", "1e300"], "--timeout must be at most 31536000 seconds, not 1e+300"),
        (["--hang", "nan"], "--hang must be a rate between 0 and 1, not nan"),
        (["--tempfail", "0.5", "--drop", "0.6"],
         "--drop, --hang, --tempfail and --reject add up to more than 1"),
    ],
)
def test_the_command_says_what_the_config_says(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "127.0.0.1:0", "5"])
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith(f"qmqp-sink: fatal: {says}; usage: ")

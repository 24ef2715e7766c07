"""SinkConfig and Faults: the one check of each value, type and bounds, naming the field;
the command says its option instead (sink.config.OPTIONS)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qmqpsource.addresses import Family
from qmqpsource.cli.common import option_words
from qmqpsource.cli.sink import main
from qmqpsource.errors import ConfigError
from qmqpsource.sink import Faults, SinkConfig
from qmqpsource.sink.config import OPTIONS
from qmqpsource.values import MAX_COUNT

CONFIG_PROBLEMS = [
    ({"backlog": 0}, "backlog must be at least 1, not 0"),
    ({"backlog": MAX_COUNT + 1}, f"backlog must be at most {MAX_COUNT}, not {MAX_COUNT + 1}"),
    ({"backlog": 5.0}, "backlog must be a whole number, not 5.0"),
    ({"max_size": 0}, "max_size must be at least 1, not 0"),
    ({"max_size": MAX_COUNT + 1}, f"max_size must be at most {MAX_COUNT}, not {MAX_COUNT + 1}"),
    ({"max_size": True}, "max_size must be a whole number, not True"),
    ({"max_connections": -1}, "max_connections must be at least 1, not -1"),
    ({"max_connections": "9"}, "max_connections must be a whole number, not '9'"),
    ({"timeout": 0.0}, "timeout must be a positive number of seconds, not 0.0"),
    ({"timeout": float("nan")}, "timeout must be a positive number of seconds, not nan"),
    ({"timeout": 1e300}, "timeout must be at most 31536000 seconds, not 1e+300"),
    ({"family": "ipv6"}, "family must be one of Family.ANY, Family.INET, Family.INET6, "
                         "not 'ipv6'"),
    ({"faults": {"drop": 0.5}}, "faults must be a Faults, not {'drop': 0.5}"),
    ({"maildir": ""}, "maildir must be a path, not ''"),
    ({"maildir": 7}, "maildir must be a path (str or os.PathLike), not 7"),
    ({"endpoint": ""}, "missing endpoint"),
    ({"endpoint": 628}, "endpoint must be a str, not 628"),
]
FAULT_PROBLEMS = [
    ({"tempfail": 1.5}, "tempfail must be a rate between 0 and 1, not 1.5"),
    ({"drop": -0.1}, "drop must be a rate between 0 and 1, not -0.1"),
    ({"hang": float("nan")}, "hang must be a rate between 0 and 1, not nan"),
    ({"reject": "0.5"}, "reject must be a rate between 0 and 1, not '0.5'"),
    ({"tempfail": 0.6, "reject": 0.6}, "drop, hang, tempfail and reject add up to more than 1"),
    ({"delay_min": 2, "delay_max": 1}, "delay_min must be at most delay_max, not 2 > 1"),
    ({"delay_min": -1}, "delay_min must be 0 or a positive number of seconds, not -1"),
    ({"delay_max": float("inf")}, "delay_max must be at most 31536000 seconds, not inf"),
    ({"delay_max": 1e300}, "delay_max must be at most 31536000 seconds, not 1e+300"),
    ({"seed": 1.5}, "seed must be a whole number, not 1.5"),
    ({"seed": False}, "seed must be a whole number, not False"),
]


@pytest.mark.parametrize(("options", "says"), CONFIG_PROBLEMS)
def test_config_values_are_checked(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as info:
        SinkConfig(**{"endpoint": "127.0.0.1:0", **options})
    assert str(info.value) == says
    name = next(iter(options))
    assert info.value.field == name


@pytest.mark.parametrize(("options", "says"), FAULT_PROBLEMS)
def test_fault_values_are_checked(options: dict[str, Any], says: str) -> None:
    with pytest.raises(ConfigError) as info:
        Faults(**options)
    assert str(info.value) == says
    # An error of one field names it; a rule of several (sum, order) names none.
    assert info.value.field == (next(iter(options)) if len(options) == 1 else None)


def test_config_checks() -> None:
    with pytest.raises(ValueError):
        SinkConfig(endpoint="127.0.0.1:0", backlog=0)
    with pytest.raises(ValueError):
        SinkConfig(endpoint="127.0.0.1:0", timeout=0)


def test_numbers_and_paths_are_kept_as_the_config_keeps_them(tmp_path: Path) -> None:
    config = SinkConfig(endpoint="127.0.0.1:0", timeout=5, maildir=tmp_path / "md",
                        faults=Faults(delay_min=1, delay_max=2), family=Family.INET)
    assert (config.timeout, type(config.timeout)) == (5.0, float)
    assert config.maildir == f"{tmp_path}/md"
    assert json.dumps(config.maildir)  # a str, as the --json summary shows it
    assert (config.faults.delay_min, type(config.faults.delay_max)) == (1.0, float)


@pytest.mark.parametrize(
    ("error", "says"),
    [(ConfigError("max_size must be at least 1, not 0", field="max_size"),
      "--max-size must be at least 1, not 0"),
     (ConfigError("drop, hang, tempfail and reject add up to more than 1"),
      "--drop, --hang, --tempfail and --reject add up to more than 1"),
     (ConfigError("--interval must be at least 0.001 seconds, not 0.0"),
      "--interval must be at least 0.001 seconds, not 0.0"),  # an option's already
     (ConfigError("seed must be a whole number, not 'seed'", field="seed"),
      "--seed must be a whole number, not 'seed'")],  # the value keeps its words
)
def test_the_command_names_each_field_by_its_option(error: ConfigError, says: str) -> None:
    assert option_words(error, OPTIONS) == says


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--max-connections", "0"], "--max-connections must be at least 1, not 0"),
        (["--timeout", "1e300"], "--timeout must be at most 31536000 seconds, not 1e+300"),
        (["--hang", "1.5"], "--hang must be a rate between 0 and 1, not 1.5"),
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

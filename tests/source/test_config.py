"""SourceConfig checks every value itself, type and bounds, naming the field; the command
line says its option instead (config.OPTIONS, cli/common.option_words)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qmqpsource.addresses import Family
from qmqpsource.cli.common import option_words
from qmqpsource.errors import ConfigError, QmqpsourceError
from qmqpsource.source import config as config_module
from qmqpsource.source.config import OPTIONS, SourceConfig
from qmqpsource.source.message import HostnameError
from qmqpsource.values import MAX_COUNT, ValueProblem

TARGET = "127.0.0.1:628"
COUNTS = ["sessions", "messages", "length", "recipients", "connect_attempts", "connect_limit",
          "reply_limit", "shard_count"]
SECONDS = ["timeout", "duration", "fixed_delay", "random_delay"]
FLAGS = ["keep_going", "number_recipients", "unique_message_id"]
TEXTS = ["sender", "recipient", "subject", "myhostname"]


def refused(**options: Any) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        SourceConfig(**{"target": TARGET, **options})
    return info.value


def refusal(**options: Any) -> str:
    return str(refused(**options))


@pytest.mark.parametrize("name", COUNTS)
def test_counts_are_at_least_one_and_within_the_cap(name: str) -> None:
    assert refusal(**{name: 0}) == f"{name} must be at least 1, not 0"
    assert refusal(**{name: -1}) == f"{name} must be at least 1, not -1"
    assert refusal(**{name: MAX_COUNT + 1}) == (
        f"{name} must be at most {MAX_COUNT}, not {MAX_COUNT + 1}"
    )
    largest: dict[str, Any] = {name: MAX_COUNT}
    assert getattr(SourceConfig(TARGET, **largest), name) == MAX_COUNT


@pytest.mark.parametrize("name", COUNTS)
@pytest.mark.parametrize("value", [1.5, 2.0, True, "4", None])
def test_counts_are_whole_numbers(name: str, value: object) -> None:
    # True is 1 to Python, and "4" reads as four: both were taken, or failed mid-run.
    error = refused(**{name: value})
    assert str(error) == f"{name} must be a whole number, not {value!r}"
    assert error.field == name


@pytest.mark.parametrize("name", SECONDS)
@pytest.mark.parametrize(
    ("value", "words"),
    [(-1.0, "a positive number of seconds, not -1.0"),
     (float("nan"), "a positive number of seconds, not nan"),
     (float("inf"), "at most 31536000 seconds, not inf"),
     (1e30, "at most 31536000 seconds, not 1e+30"),
     (10**400, f"at most 31536000 seconds, not {10**400}"),
     ("1", "a number of seconds, not '1'"),
     (False, "a number of seconds, not False")],
    ids=["negative", "nan", "inf", "1e30", "10**400", "str", "bool"],
)
def test_seconds_are_positive_finite_numbers_within_the_cap(
    name: str, value: object, words: str
) -> None:
    error = refused(**{name: value})
    assert (str(error), error.field) == (f"{name} must be {words}", name)


@pytest.mark.parametrize("name", SECONDS)
def test_a_float_field_takes_an_int_and_keeps_a_float(name: str) -> None:
    given: dict[str, Any] = {name: 5}
    value = getattr(SourceConfig(TARGET, **given), name)
    assert (value, type(value)) == (5.0, float)


@pytest.mark.parametrize("name", FLAGS)
@pytest.mark.parametrize("value", [1, 0, "no", None])
def test_booleans_must_be_bool(name: str, value: object) -> None:
    assert refusal(**{name: value}) == f"{name} must be True or False, not {value!r}"


@pytest.mark.parametrize("name", TEXTS)
def test_addresses_and_names_must_be_text(name: str) -> None:
    assert refusal(**{name: 5}) == f"{name} must be a str, not 5"
    assert refusal(**{name: b"x"}) == f"{name} must be a str, not b'x'"


def test_the_family_must_be_the_enum() -> None:
    error = refused(family="ipv4")
    assert str(error) == ("family must be one of Family.ANY, Family.INET, Family.INET6, "
                          "not 'ipv4'")
    assert SourceConfig(TARGET, family=Family.INET6).family is Family.INET6


def test_paths_take_os_pathlike_and_stay_json_able(tmp_path: Path) -> None:
    config = SourceConfig(TARGET, message_file=tmp_path / "msg.eml")
    assert config.message_file == f"{tmp_path}/msg.eml"
    assert json.loads(json.dumps(config.as_dict()))["message_file"] == f"{tmp_path}/msg.eml"
    assert refusal(message_file=3) == "message_file must be a path (str or os.PathLike), not 3"
    assert refusal(message_file="") == "message_file must be a path, not ''"


def test_myhostname_is_checked_as_postfix_checks_minus_m() -> None:
    error = refused(myhostname="bad..name")
    assert isinstance(error, HostnameError)
    assert (str(error), error.field) == ("bad hostname: bad..name", "myhostname")
    assert SourceConfig(TARGET, myhostname="[127.0.0.1]").myhostname == "[127.0.0.1]"


def test_a_wait_of_zero_is_no_wait() -> None:
    config = SourceConfig(TARGET)
    assert (config.fixed_delay, config.random_delay) == (0.0, 0.0)
    assert SourceConfig(TARGET, fixed_delay=0.5).fixed_delay == 0.5
    assert SourceConfig(TARGET, random_delay=0).random_delay == 0.0


def test_fixed_and_random_waits_exclude_each_other() -> None:
    error = refused(fixed_delay=1.0, random_delay=2.0)
    assert (str(error), error.field) == ("fixed_delay and random_delay exclude each other", None)


@pytest.mark.parametrize("rate", [0.0, -4.0, float("nan"), float("inf")])
def test_rate_is_a_positive_number_of_messages_per_second(rate: float) -> None:
    assert refusal(rate=rate) == (
        f"rate must be a positive number of messages per second, not {rate}"
    )


def test_target_and_shard() -> None:
    assert (str(refused(target="")), refused(target="").field) == ("missing target", "target")
    assert refusal(target=5) == "target must be a str, not 5"
    # A UNIX socket is written unix:PATH: a bare path would read as a host name.
    assert refusal(target=Path("/run/qmqp")) == "target must be a str, not PosixPath('/run/qmqp')"
    assert refusal(shard_index=2, shard_count=2) == (
        "shard_index must be less than shard_count (2), not 2"
    )
    assert refusal(shard_index=-1) == "shard_index must be at least 0, not -1"


def test_every_refusal_is_one_config_error_of_the_library() -> None:
    # ValueProblem, the name older modules use, is the same class; callers may catch
    # ValueError, or every error of the library at once.
    assert ValueProblem is ConfigError is config_module.ConfigError
    assert issubclass(ConfigError, QmqpsourceError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("options", "says"),
    [({"sessions": 0}, "-s must be at least 1, not 0"),
     ({"sessions": "sessions"}, "-s must be a whole number, not 'sessions'"),
     ({"timeout": 0.0}, "--timeout must be a positive number of seconds, not 0.0"),
     ({"fixed_delay": 1, "random_delay": 1}, "-w and -R exclude each other"),
     ({"message_file": ""}, "-F must be a path, not ''"),
     ({"reply_limit": 0}, "reply_limit must be at least 1, not 0")],  # no option: the field
)
def test_the_command_says_its_options(options: dict[str, Any], says: str) -> None:
    assert option_words(refused(**options), OPTIONS) == says


def test_as_dict_gives_enums_as_their_values() -> None:
    value = SourceConfig(TARGET, sessions=3).as_dict()
    assert (value["target"], value["sessions"], value["family"]) == (TARGET, 3, "any")


@pytest.mark.parametrize("pause", ["fixed_delay", "random_delay"])
def test_a_rate_excludes_pauses_between_messages(pause: str) -> None:
    error = refused(rate=5.0, **{pause: 1.0})
    assert (str(error), error.field) == ("rate excludes fixed_delay and random_delay: an open "
                                         "loop runs on its schedule, without pauses", None)
    assert option_words(error, OPTIONS) == ("--rate excludes -w and -R: an open loop runs on "
                                            "its schedule, without pauses")
    assert SourceConfig(target=TARGET, rate=5.0).rate == 5.0

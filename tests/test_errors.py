"""One exception base: every error the library raises on purpose is a QmqpsourceError of
one kind (errors.py), importable from the package and from the modules that raise it."""

from __future__ import annotations

import subprocess
import sys

import pytest

import qmqpsource
from qmqpsource import errors
from qmqpsource.addresses import AddressError as AddressesAddressError
from qmqpsource.addresses import parse_address
from qmqpsource.infile import InputError
from qmqpsource.sink import ListenError
from qmqpsource.sink import SinkError as SinkPackageSinkError
from qmqpsource.sink.listeners import SinkError as ListenersSinkError
from qmqpsource.source.config import ConfigError as SourceConfigError
from qmqpsource.source.limits import LimitError as LimitsLimitError
from qmqpsource.source.message import HostnameError
from qmqpsource.source.request import MessageFileError
from qmqpsource.source.shard import ShardError
from qmqpsource.values import ValueProblem

KINDS = ["AddressError", "CheckError", "ConfigError", "LimitError", "ResultError", "RunError",
         "SinkError", "TrioRequiredError"]


@pytest.mark.parametrize(
    ("old", "kind"),
    [
        (ValueProblem, errors.ConfigError),
        (SourceConfigError, errors.ConfigError),
        (AddressesAddressError, errors.AddressError),
        (LimitsLimitError, errors.LimitError),
        (HostnameError, errors.ConfigError),
        (ShardError, errors.ConfigError),
        (MessageFileError, errors.ConfigError),
        (InputError, errors.ConfigError),
        (ListenersSinkError, errors.SinkError),
        (SinkPackageSinkError, errors.SinkError),
        (ListenError, errors.SinkError),
    ],
    ids=lambda value: getattr(value, "__qualname__", str(value)),
)
def test_each_old_name_is_of_its_kind(old: type[Exception], kind: type[Exception]) -> None:
    assert issubclass(old, kind) and issubclass(old, errors.QmqpsourceError)


def test_the_errors_of_one_field_name_it() -> None:
    assert HostnameError("bad hostname: x").field == "myhostname"
    assert MessageFileError("cannot read message file x: gone").field == "message_file"


@pytest.mark.parametrize("name", ["QmqpsourceError", *KINDS])
def test_the_package_exports_the_base_and_its_kinds(name: str) -> None:
    assert name in qmqpsource.__all__
    assert name in dir(qmqpsource)
    assert getattr(qmqpsource, name) is getattr(errors, name)


def test_the_errors_cost_the_commands_no_import() -> None:
    # The package's names are found on first use: importing it imports no errors module
    # beyond what asked for one.
    code = ("import sys, qmqpsource; before = 'qmqpsource.errors' in sys.modules; "
            "qmqpsource.ConfigError; print(before, 'qmqpsource.errors' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=60)
    assert done.stdout.split() == ["False", "True"]


@pytest.mark.parametrize(("make", "says"), [
    (lambda: qmqpsource.SourceConfig(target="x", myhostname="a\nb"), "bad hostname: a\\nb"),
    (lambda: parse_address("127.0.0.1:0\n", listen=True),
     "127.0.0.1:0\\n: bad port number: '0\\n'"),
])
def test_str_is_one_line_whatever_it_quotes(make: object, says: str) -> None:
    # A newline in what the user gave split the error in two, and could forge a line.
    with pytest.raises(qmqpsource.QmqpsourceError) as caught:
        make()  # type: ignore[operator]
    assert str(caught.value) == says

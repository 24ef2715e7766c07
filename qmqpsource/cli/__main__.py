"""``python -m qmqpsource.cli COMMAND [ARGS]...``: the qmqpsource command's module form."""

from qmqpsource.cli.startup import qmqpsource

qmqpsource()

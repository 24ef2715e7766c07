from qmqpsource.cli.startup import source

source()

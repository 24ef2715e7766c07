"""qmqpsource: a QMQP load generator and test server built on trio."""

__version__ = "0.1.0"

# The three programs' names, as their usage, version and stderr lines give them: here
# once, for the commands and for the code that writes lines in their name.
SOURCE_PROG = "qmqp-source"
SINK_PROG = "qmqp-sink"
REPORT_PROG = "qmqp-report"

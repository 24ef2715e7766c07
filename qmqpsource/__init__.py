"""qmqpsource: a QMQP load generator and test server built on trio."""

__version__ = "0.1.0"

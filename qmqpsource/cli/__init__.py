"""The three commands (qmqp-source, qmqp-sink, qmqp-report) and what they share."""

"""qmqp-sink's server: listeners, connections, faults, counts, Maildir."""

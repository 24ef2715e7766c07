"""The load generator: config, message, connections, sessions."""

"""Shared test setup: the Postfix fixtures (skipped with a reason where Postfix is missing)."""

pytest_plugins = ["tests.postfix_fixtures"]

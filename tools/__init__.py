"""Scripts of the project's own: the manual pages' generator (`nox -s docs` runs it)."""

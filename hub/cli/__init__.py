"""The `hub` command: thin wrappers over hub.operations, hub.publishing and workers."""


class UsageError(Exception):
    """Bad usage found after parsing (options that go together): exit 2, one line."""

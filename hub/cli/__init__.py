"""The `hub` command: thin wrappers over hub.operations, hub.publishing and workers."""

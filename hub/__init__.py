"""The hub's domain: pure logic, no broker, no database (except hub.db / hub.broker)."""

from hub import native as _native

# The compiled matching path, first, while it was built from these very sources.
_native.extend_path(__name__, __path__)

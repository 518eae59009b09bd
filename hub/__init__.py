"""The hub's domain: pure logic, no broker, no database (except hub.db / hub.broker)."""

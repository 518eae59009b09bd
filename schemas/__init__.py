"""Message models of the hub's external contract (canonical update, notification)."""

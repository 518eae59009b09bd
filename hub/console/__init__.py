"""The operator console: server-rendered pages over hub.operations (see app.py)."""

"""Thin asyncio shells: consume -> call hub -> ack."""

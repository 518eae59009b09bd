"""Generate the published contract from the models: JSON Schema and AsyncAPI.

    python -m schemas.generate          # rewrite the files in schemas/
A test fails when the files and the models drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from schemas.canonical import CanonicalUpdate
from schemas.notification import Notification

HERE = Path(__file__).parent


def documents() -> dict[str, Any]:
    update = CanonicalUpdate.model_json_schema()
    update["$id"] = "https://schemas.child-index.example/canonical_update.schema.json"
    note = Notification.model_json_schema()
    note["$id"] = "https://schemas.child-index.example/notification.schema.json"
    asyncapi = {
        "asyncapi": "2.6.0",
        "info": {
            "title": "The national child index hub",
            "version": "1.0.0",
            "description": "Sources publish canonical updates; councils receive change "
            "notifications. A shielded child's notifications go to its shielding authority "
            "alone.",
        },
        "defaultContentType": "application/json",
        "servers": {"broker": {"url": "amqp://127.0.0.1:5672/", "protocol": "amqp",
                               "protocolVersion": "0-9-1"}},
        "channels": {
            "source.{source}": {
                "description": "One canonical update per message, persistent, published with "
                "confirms to the topic exchange hub.ingest.",
                "parameters": {"source": {"schema": {
                    "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"}}},
                "bindings": {"amqp": {"is": "routingKey", "exchange": {
                    "name": "hub.ingest", "type": "topic", "durable": True}}},
                "publish": {"message": {"$ref": "#/components/messages/CanonicalUpdate"}},
            },
            "la.{la}.{event}": {
                "description": "Change notifications on the topic exchange hub.notifications; "
                "each council's durable queue council.<LA> is bound to la.<LA>.#. "
                "At-least-once: drop repeats by event_id, order by version.",
                "parameters": {"la": {"schema": {"type": "string", "pattern": "^[0-9]{3}$"}},
                               "event": {"schema": {"type": "string"}}},
                "bindings": {"amqp": {"is": "routingKey", "exchange": {
                    "name": "hub.notifications", "type": "topic", "durable": True}}},
                "subscribe": {"message": {"$ref": "#/components/messages/Notification"}},
            },
        },
        "components": {"messages": {
            "CanonicalUpdate": {"name": "CanonicalUpdate",
                                "payload": {"$ref": "canonical_update.schema.json"}},
            "Notification": {"name": "Notification",
                             "payload": {"$ref": "notification.schema.json"}},
        }},
    }
    return {
        "canonical_update.schema.json": update,
        "notification.schema.json": note,
        "asyncapi.json": asyncapi,
    }


def render(doc: Any) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> None:
    for name, doc in documents().items():
        (HERE / name).write_text(render(doc))
        print(f"wrote schemas/{name}")


if __name__ == "__main__":
    main()

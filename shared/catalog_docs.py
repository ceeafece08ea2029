"""The event catalog as JSON Schema and as an AsyncAPI 3 document (channels = topics, messages = events)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from shared import topics
from shared.events import CATALOG


def event_schemas() -> dict[str, dict[str, Any]]:
    return {event.__name__: event.model_json_schema(mode="serialization") for event in CATALOG}


def asyncapi_document() -> dict[str, Any]:
    _, definitions = models_json_schema(
        [(event, "serialization") for event in CATALOG], ref_template="#/components/schemas/{model}"
    )
    channels: dict[str, Any] = {}
    for topic in topics.ALL:
        events = [e for e in CATALOG if e.topic == topic]
        channels[topic] = {
            "address": topic,
            "description": "keyed by order id",
            "messages": {e.__name__: {"$ref": f"#/components/messages/{e.__name__}"} for e in events},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "Dropship fulfillment events", "version": "1"},
        "defaultContentType": "application/json",
        "channels": channels,
        "components": {
            "schemas": definitions["$defs"],
            "messages": {
                e.__name__: {
                    "name": e.__name__,
                    "payload": {"$ref": f"#/components/schemas/{e.__name__}"},
                }
                for e in CATALOG
            },
        },
    }

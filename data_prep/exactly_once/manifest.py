"""Writing what is derived from the unit records: the manifest's shard entries, and files written only when
their bytes change (a second run over the same inputs then writes nothing)."""

from __future__ import annotations

import json

from data_prep.storage import Store

MANIFEST = "manifest.json"


def shard_entry(record: dict) -> dict:
    """The manifest's entry for a committed unit's shard: the record's shard plus media type and unit id."""
    return {**record["shard"], "media_type": record["media_type"], "unit_id": record["unit_id"]}


def write_json(store: Store, rel: str, content: dict) -> None:
    store.write_atomic(rel, json.dumps(content, indent=1).encode())


def write_json_if_changed(store: Store, rel: str, content: dict) -> bool:
    """Write `content` unless the file already holds exactly these bytes; whether it wrote."""
    data = json.dumps(content, indent=1).encode()
    if store.exists(rel) and store.read_bytes(rel) == data:
        return False
    store.write_atomic(rel, data)
    return True

"""Incremental mode: the records the output's previous manifest names, kept as they are (append-only)."""

from __future__ import annotations

import json

from data_prep.exactly_once.manifest import MANIFEST
from data_prep.storage import Store


def incremental_base(store: Store, committed: dict[str, dict], error: type[Exception]) -> list[dict]:
    """The records the previous manifest names (none without a manifest: a first run); `error` when one of
    them is gone."""
    if not store.exists(MANIFEST):
        return []
    ids = json.loads(store.read_bytes(MANIFEST))["unit_ids"]
    missing = [i for i in ids if i not in committed]
    if missing:
        raise error(f"output {store.root}: manifest names {len(missing)} missing unit records ({missing[0]})")
    return [committed[i] for i in ids]

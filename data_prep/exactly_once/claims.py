"""The output's claim on its parameters: `params.json`, written on first use, compared on every rerun.

An output holds shards of one set of parameters only, so shards of other parameters never mix into it.
"""

from __future__ import annotations

import json

from data_prep.storage import Store

PARAMS_FILE = "params.json"


def claim_params(store: Store, wanted: dict) -> dict | None:
    """Record `wanted` on first use; return the parameters found when they differ (the caller refuses)."""
    if not store.exists(PARAMS_FILE):
        store.write_atomic(PARAMS_FILE, json.dumps(wanted, indent=1).encode())
        return None
    found = json.loads(store.read_bytes(PARAMS_FILE))
    return None if found == wanted else found


def differing_keys(found: dict, wanted: dict) -> list[str]:
    return sorted(k for k in wanted.keys() | found.keys() if wanted.get(k) != found.get(k))

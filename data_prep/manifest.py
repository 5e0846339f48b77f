"""The manifest and the quarantine table, derived from the committed unit records (never the reverse)."""

from __future__ import annotations

import io
import json
from collections import Counter

import pyarrow.parquet as pq

from data_prep.schema import quarantine_table
from data_prep.storage import LocalStore

MANIFEST = "manifest.json"
QUARANTINE = "quarantine.parquet"
TOTAL_KEYS = ("inputs_seen", "inputs_used", "inputs_quarantined", "tubelets", "train_tubelets", "val_tubelets")


def write_manifest(store: LocalStore, params: dict, records: list[dict], extra: dict) -> dict:
    """Write quarantine.parquet then manifest.json (the manifest last: it names a finished output)."""
    records = sorted(records, key=lambda r: r["unit_id"])
    totals = {k: sum(r["stats"][k] for r in records) for k in TOTAL_KEYS}
    if totals["inputs_seen"] != totals["inputs_used"] + totals["inputs_quarantined"]:
        raise RuntimeError(f"accounting does not close: {totals}")
    decoders: Counter = Counter()
    for r in records:
        decoders.update(r["stats"].get("decoders", {}))
    shards = [
        {**r["shard"], "media_type": r["media_type"], "unit_id": r["unit_id"]} for r in records if r["shard"]
    ]
    quarantined = sorted((q for r in records for q in r["quarantine"]), key=lambda q: q["uri"])
    buf = io.BytesIO()
    pq.write_table(quarantine_table(quarantined), buf)
    store.write_atomic(QUARANTINE, buf.getvalue())
    manifest = {
        "params": params,
        **extra,
        "units": len(records),
        "decoders": dict(sorted(decoders.items())),
        "shards": shards,
        "totals": totals,
    }
    store.write_atomic(MANIFEST, json.dumps(manifest, indent=1).encode())
    return manifest

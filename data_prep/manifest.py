"""The manifest and the quarantine table, derived from the committed unit records (never the reverse)."""

from __future__ import annotations

import io
from collections import Counter

import pyarrow.parquet as pq

from data_prep.exactly_once.manifest import MANIFEST, shard_entry, write_json
from data_prep.schema import quarantine_table
from data_prep.storage import Store

QUARANTINE = "quarantine.parquet"
TOTAL_KEYS = (
    "inputs_seen", "inputs_used", "inputs_quarantined", "tubelets", "train_tubelets", "val_tubelets", "frames",
    "input_bytes",
)  # fmt: skip


def write_manifest(store: Store, params: dict, records: list[dict], extra: dict) -> dict:
    """Write quarantine.parquet then manifest.json (the manifest last: it names a finished output)."""
    records = sorted(records, key=lambda r: r["unit_id"])
    totals = {k: sum(r["stats"][k] for r in records) for k in TOTAL_KEYS}
    totals["shard_bytes"] = sum(r["shard"]["bytes"] for r in records if r["shard"])
    if totals["inputs_seen"] != totals["inputs_used"] + totals["inputs_quarantined"]:
        raise RuntimeError(f"accounting does not close: {totals}")
    decoders: Counter = Counter()
    for r in records:
        decoders.update(r["stats"].get("decoders", {}))
    shards = [shard_entry(r) for r in records if r["shard"]]
    quarantined = sorted((q for r in records for q in r["quarantine"]), key=lambda q: q["uri"])
    reasons = Counter(f"{q['stage']}/{q['error_type']}" for q in quarantined)
    buf = io.BytesIO()
    pq.write_table(quarantine_table(quarantined), buf)
    store.write_atomic(QUARANTINE, buf.getvalue())
    manifest = {
        "params": params,
        **extra,
        "units": len(records),
        "unit_ids": [r["unit_id"] for r in records],  # the base an --incremental run adds to
        "decoders": dict(sorted(decoders.items())),
        "shards": shards,
        "totals": totals,
        "quarantined_by_reason": dict(sorted(reasons.items())),  # "stage/error_type" -> inputs
    }
    write_json(store, MANIFEST, manifest)
    return manifest

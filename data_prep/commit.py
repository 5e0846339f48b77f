"""Preparing and committing one tubelet work unit: its shard, then its record (the kit's commit_once).

The record carries the shard's checksum, each member's fingerprint, the quarantine records and the stats.
"""

from __future__ import annotations

from data_prep.exactly_once.commit import commit_once, shard_path, write_shard
from data_prep.params import PrepParams
from data_prep.process import process_unit
from data_prep.s3 import S3Settings
from data_prep.schema import tubelet_table
from data_prep.storage import Store
from data_prep.units import WorkUnit


def commit_tubelet_unit(store: Store, unit: WorkUnit, params: PrepParams, settings: S3Settings) -> dict:
    """Process and commit `unit` unless already committed; return its record."""
    return commit_once(store, unit.unit_id, lambda: _tubelet_record(store, unit, params, settings))


def _tubelet_record(store: Store, unit: WorkUnit, params: PrepParams, settings: S3Settings) -> dict:
    out = process_unit(unit, params, settings)
    stats = out.stats()
    shard = None  # stays None when every input of the unit was quarantined
    if out.rows:
        table = tubelet_table(out.rows, out.pixels)
        shard = write_shard(store, shard_path(unit.media_type, unit.unit_id), table)
        # Per-split counts let readers skip shards without opening them.
        shard.update(train_rows=stats["train_tubelets"], val_rows=stats["val_tubelets"])
    return {
        "unit_id": unit.unit_id,
        "media_type": unit.media_type,
        "inputs": list(unit.uris),
        # Each member's fingerprint: later runs reuse it instead of rereading the file (fingerprint.py).
        "members": [{k: m[k] for k in ("uri", "size", "version", "sha256", "sniffed", "error")} for m in unit.members],
        "shard": shard,
        "quarantine": out.quarantine,
        "stats": stats,
    }

"""The latent output's manifest.json and latent_stats.json, derived from the committed unit records.

Both hold only what the output is (no times, no counts of what one invocation did), and each is written
only when its bytes change: a run killed and rerun ends with the same files as an uninterrupted one, and a
second run over the same inputs and tokenizer writes nothing at all.
"""

from __future__ import annotations

from data_prep.exactly_once.manifest import MANIFEST, shard_entry, write_json_if_changed
from data_prep.storage import Store
from workflows.latents.stats import latent_stats

STATS = "latent_stats.json"


def write_outputs(store: Store, header: dict, records: list[dict], channels: int) -> tuple[dict, dict, bool]:
    """(manifest, stats, whether anything was written): latent_stats.json first, manifest.json last (the
    manifest names a finished output)."""
    records = sorted(records, key=lambda r: r["unit_id"])
    stats = latent_stats(records, channels)
    shards = [
        {**shard_entry(r), "source_path": r["source"]["path"], "source_sha256": r["source"]["sha256"]} for r in records
    ]
    by_media = {m: sum(s["rows"] for s in shards if s["media_type"] == m) for m in header["latent_shapes"]}
    manifest = {
        **header,
        "units": len(records),
        "unit_ids": [r["unit_id"] for r in records],  # the base an --incremental run adds to
        "shards": shards,
        "totals": {
            "latents": sum(s["rows"] for s in shards),
            "train_latents": sum(s["train_rows"] for s in shards),
            "val_latents": sum(s["val_rows"] for s in shards),
            "shard_bytes": sum(s["bytes"] for s in shards),
            "latents_by_media_type": by_media,
        },
        "stats_file": STATS,
    }
    wrote_stats = write_json_if_changed(store, STATS, stats)
    wrote_manifest = write_json_if_changed(store, MANIFEST, manifest)
    return manifest, stats, wrote_stats or wrote_manifest

"""The exactly-once unit kit that data prep and the latent cache both run on.

A work unit is a fixed, named group of inputs that becomes one shard. It is complete exactly when its
record `units/<unit_id>.json` exists: the shard is written atomically first, the record last (records.py,
commit.py), so a rerun skips committed units and a crash costs at most the units in flight. An output holds
shards of one set of parameters (claims.py); the manifest is derived from the records, never the reverse
(manifest.py), and an incremental run keeps the units the previous manifest names (incremental.py). Units
fan out over Ray Data actors with a progress line (fan_out.py). A shard's arrays (pixels, latents) are
tensor columns, one binary value per row (tensor_columns.py).

Each pipeline keeps only its own step (decode or encode), schema and parameters.
"""

"""Latent work units: one per tubelet shard, named by the latent parameters and the shard's bytes.

The unit id hashes LatentParams.key() (tokenizer weights, dtype, log-variance, precision) with the tubelet
shard's sha256, so the same shard encoded by the same tokenizer is always the same unit, and its latent
shard the same name: a rerun finds its commit record and skips it; a changed shard is a new unit.
"""

from __future__ import annotations

import dataclasses

from data_prep.exactly_once.commit import shard_path
from data_prep.params import stable_hash
from data_prep.shard_manifest import ShardEntry


@dataclasses.dataclass(frozen=True)
class LatentUnit:
    unit_id: str
    media_type: str
    source: dict  # the tubelet manifest's entry for the shard (ShardEntry's fields): path, sha256, unit_id, ...

    @property
    def shard_path(self) -> str:
        return shard_path(self.media_type, self.unit_id)

    def to_row(self) -> dict:
        return {"unit_id": self.unit_id, "media_type": self.media_type, "source": self.source}

    @classmethod
    def from_row(cls, row: dict) -> LatentUnit:
        return cls(unit_id=row["unit_id"], media_type=row["media_type"], source=row["source"])


def plan_latent_units(tubelet_shards: tuple[ShardEntry, ...], key: str,
                      media_types: tuple[str, ...]) -> list[LatentUnit]:  # fmt: skip
    """A unit per shard of the tubelet manifest whose media type is in `media_types`, in manifest order."""
    return [
        LatentUnit(f"{s.media_type}-{stable_hash(key, s.sha256)}", s.media_type, dataclasses.asdict(s))
        for s in tubelet_shards
        if s.media_type in media_types
    ]

"""The latent manifest (OUT/manifest.json of the latent cache) read once into typed values.

The file is written by manifest.py and keeps its format; `read_latent_manifest` validates it on the way in,
so a broken file is one LatentsError line naming it and what is wrong ("...manifest.json: missing 'dtype'").
"""

from __future__ import annotations

import dataclasses
import json

from data_prep.exactly_once.json_fields import Fields
from data_prep.exactly_once.manifest import MANIFEST
from data_prep.params import PrepParams
from data_prep.shard_manifest import ShardEntry, read_prep_params
from data_prep.storage import Store
from workflows.latents.errors import LatentsError


@dataclasses.dataclass(frozen=True)
class LatentShardEntry(ShardEntry):
    """A latent shard, and the tubelet shard it was encoded from."""

    source_path: str
    source_sha256: str


@dataclasses.dataclass(frozen=True)
class TubeletSource:
    """The tubelet shards the latents were made from."""

    root: str
    params: PrepParams

    def tubelet_shape(self, media_type: str) -> tuple[int, int, int]:
        frames = 1 if media_type == "image" else self.params.frames
        return frames, self.params.size, self.params.size


@dataclasses.dataclass(frozen=True)
class LatentManifest:
    where: str  # the file's location, for messages
    tubelets: TubeletSource
    tokenizer: dict  # what tokenizer.Tokenizer.describe() wrote: reference, weights_sha256, variant, ...
    dtype: str  # the storage dtype (schema.STORAGE)
    media_types: tuple[str, ...]
    latent_shapes: dict[str, tuple[int, ...]]  # media type -> (T', H', W', c)
    label_names: tuple[str, ...] | None  # the tubelets' classes; None without labels
    shards: tuple[LatentShardEntry, ...]  # sorted by unit id
    unit_ids: tuple[str, ...]
    totals: dict  # latents, train_latents, val_latents, shard_bytes, latents_by_media_type
    stats_file: str

    def shards_of(self, media_type: str, split: str | None = None) -> list[LatentShardEntry]:
        """The shards of `media_type`; with `split`, only those holding rows of that split."""
        return [s for s in self.shards if s.media_type == media_type and (split is None or s.rows_of(split) > 0)]

    @classmethod
    def from_json(cls, doc: object, where: str) -> LatentManifest:
        f = Fields(doc, where, LatentsError)
        tubelets = f.object("tubelets")
        tokenizer = f.object("tokenizer")
        for key in ("reference", "weights_sha256"):
            tokenizer.get(key, str)
        shapes = f.object("latent_shapes")
        return cls(
            where=where,
            tubelets=TubeletSource(tubelets.get("root", str), read_prep_params(tubelets.object("params"))),
            tokenizer=tokenizer.doc,
            dtype=f.get("dtype", str),
            media_types=f.strs("media_types"),
            latent_shapes={media: shapes.ints(media) for media in shapes.doc},
            label_names=f.object("labels").strs("names") if f.has("labels") else None,
            shards=tuple(LatentShardEntry.read(s) for s in f.objects("shards")),
            unit_ids=f.strs("unit_ids"),
            totals=f.get("totals", dict),
            stats_file=f.get("stats_file", str),
        )


def read_latent_manifest(store: Store) -> LatentManifest:
    """The latent cache's manifest at `store`, typed; LatentsError (one line naming the file) when it is
    absent or broken."""
    where = store.uri(MANIFEST)
    if not store.exists(MANIFEST):
        raise LatentsError(f"{store.root}: no {MANIFEST} (run workflows/cache_latents.py first)")
    try:
        document = json.loads(store.read_bytes(MANIFEST))
    except (OSError, ValueError) as err:
        raise LatentsError(f"{where}: unreadable manifest ({' '.join(str(err).split())[:300]})") from None
    return LatentManifest.from_json(document, where)

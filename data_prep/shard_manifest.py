"""The shard manifest (OUT/manifest.json of data prep) read once into typed values, validated on the way.

Every reader of prepared shards (data_prep's reader, the trainer's and the generator's plans, the latent
cache) takes a ShardManifest (`read_shard_manifest`) instead of the raw JSON, so `size` and `frames` are ints
once, and a broken file is one DataPrepError line naming it and what is wrong ("...manifest.json: shards[2]:
missing 'rows'"). Nothing here imports Ray, so an entry point can check a manifest before its heavy imports.
The file on disk is written by manifest.py and keeps its format; `document` holds it as read, for what
copies it as is (a scheduler's summary, the latent manifest's record of its source).
"""

from __future__ import annotations

import dataclasses
import json
import os

from data_prep import s3
from data_prep.errors import DataPrepError
from data_prep.exactly_once.json_fields import Fields
from data_prep.exactly_once.manifest import MANIFEST
from data_prep.params import PREP_VERSION, WHY_REBUILD, PrepParams
from data_prep.storage import open_store

SPLITS = ("train", "val")


@dataclasses.dataclass(frozen=True)
class ShardEntry:
    """One shard the manifest names: where it is, what it holds, the unit that made it and its checksum."""

    path: str  # relative to the output root
    rows: int
    train_rows: int
    val_rows: int
    media_type: str  # "image" or "video"
    unit_id: str
    sha256: str
    bytes: int

    def rows_of(self, split: str) -> int:
        return self.train_rows if split == "train" else self.val_rows

    @classmethod
    def read(cls, f: Fields) -> ShardEntry:
        return f.record(cls)


@dataclasses.dataclass(frozen=True)
class ShardManifest:
    where: str  # the file's location, for messages
    prep_version: int
    params: PrepParams
    shards: tuple[ShardEntry, ...]  # sorted by unit id
    unit_ids: tuple[str, ...]  # the base an --incremental run adds to
    totals: dict[str, int]  # inputs_seen ... shard_bytes (manifest.py)
    label_names: tuple[str, ...] | None  # names[i] is the class of label i; None without --labels
    document: dict  # the JSON as read

    def shards_of(self, media_type: str, split: str | None = None) -> list[ShardEntry]:
        """The shards of `media_type`; with `split`, only those holding rows of that split."""
        return [s for s in self.shards if s.media_type == media_type and (split is None or s.rows_of(split) > 0)]

    def rows(self, media_type: str, split: str) -> int:
        return sum(s.rows_of(split) for s in self.shards_of(media_type))

    def tubelet_shape(self, media_type: str) -> tuple[int, int, int]:
        """(T, H, W) of the tubelets of `media_type`: images are one frame, videos `frames`."""
        frames = 1 if media_type == "image" else self.params.frames
        return frames, self.params.size, self.params.size

    @classmethod
    def from_json(cls, doc: object, where: str) -> ShardManifest:
        f = Fields(doc, where, DataPrepError)
        labels = f.object("labels").strs("names") if f.has("labels") else None
        version = f.object("params").get("prep_version", int)
        if version != PREP_VERSION:
            # Its shards are not in the layout this version reads (WHY_REBUILD); the same line as a rerun's.
            raise DataPrepError(f"{where}: prepared by data prep version {version}, this is version {PREP_VERSION} "
                                f"({WHY_REBUILD}); prepare the corpus again into a new output")  # fmt: skip
        return cls(
            where=where,
            prep_version=version,
            params=read_prep_params(f.object("params")),
            shards=tuple(ShardEntry.read(s) for s in f.objects("shards")),
            unit_ids=f.strs("unit_ids"),
            totals={k: f.object("totals").get(k, int) for k in f.get("totals", dict)},
            label_names=labels,
            document=doc,
        )


def read_prep_params(f: Fields) -> PrepParams:
    """PrepParams from a manifest's `params`: every field typed, `labels` optional (outputs made before
    labels existed have none)."""
    return f.record(PrepParams, optional=frozenset({"labels"}))


def load_manifest(output_dir: str, s3_endpoint_url: str | None = None, s3_region: str | None = None) -> dict:
    """The manifest's JSON as written (validated), for summaries that copy it as is."""
    return read_shard_manifest(output_dir, s3_endpoint_url, s3_region).document


def read_shard_manifest(output_dir: str, s3_endpoint_url: str | None = None,
                        s3_region: str | None = None) -> ShardManifest:  # fmt: skip
    """The output's manifest, typed; DataPrepError (one line naming the file) when it is absent or broken."""
    settings = s3.S3Settings(endpoint_url=s3_endpoint_url, region=s3_region)
    root = output_dir if s3.is_s3(output_dir) else os.path.abspath(output_dir)
    store = open_store(root, settings)
    where = store.uri(MANIFEST)
    try:
        if not store.exists(MANIFEST):
            raise DataPrepError(f"{where}: no manifest (run `python -m data_prep run` first)")
        document = json.loads(store.read_bytes(MANIFEST))
    except DataPrepError:
        raise
    except Exception as e:  # noqa: BLE001 - I/O, S3 and JSON errors all mean "unreadable"
        raise DataPrepError(f"{where}: unreadable manifest ({' '.join(str(e).split())[:300]})") from None
    return ShardManifest.from_json(document, where)

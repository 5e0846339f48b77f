"""The typed shard manifest: what a valid manifest.json reads as, and the one-line errors of broken ones."""

import json

import pytest

from data_prep import DataPrepError, read_shard_manifest
from data_prep.params import PREP_VERSION, WHY_REBUILD, PrepParams
from data_prep.shard_manifest import ShardEntry, ShardManifest

SHARD = {"path": "images/image-1.parquet", "rows": 5, "sha256": "ab", "bytes": 100, "train_rows": 4, "val_rows": 1,
         "media_type": "image", "unit_id": "image-1"}  # fmt: skip
VIDEO = {**SHARD, "path": "videos/video-2.parquet", "media_type": "video", "unit_id": "video-2", "val_rows": 0,
         "train_rows": 5}  # fmt: skip


def manifest_json(**changes) -> dict:
    doc = {
        "params": PrepParams(size=32, frames=4).to_dict(),
        "units": 2,
        "unit_ids": ["image-1", "video-2"],
        "shards": [SHARD, VIDEO],
        "totals": {"tubelets": 10, "shard_bytes": 200},
    }
    return {**doc, **changes}


def test_a_manifest_reads_into_typed_values():
    m = ShardManifest.from_json(manifest_json(), "out/manifest.json")
    assert m.params == PrepParams(size=32, frames=4)
    assert m.shards[0] == ShardEntry(**SHARD)
    assert m.tubelet_shape("image") == (1, 32, 32) and m.tubelet_shape("video") == (4, 32, 32)
    assert m.rows("image", "train") == 4 and m.rows("video", "val") == 0
    assert [s.unit_id for s in m.shards_of("video", "val")] == []
    assert m.label_names is None and m.document == manifest_json()


def test_labels_are_read_when_present():
    doc = manifest_json(labels={"source": {"kind": "parent-dir"}, "names": ["a", "b"]})
    assert ShardManifest.from_json(doc, "m.json").label_names == ("a", "b")


def test_an_output_of_an_older_data_prep_is_refused_with_why():
    doc = manifest_json(params={**manifest_json()["params"], "prep_version": PREP_VERSION - 1})
    with pytest.raises(DataPrepError) as err:
        ShardManifest.from_json(doc, "m.json")
    assert str(err.value) == (f"m.json: prepared by data prep version {PREP_VERSION - 1}, this is version "
                              f"{PREP_VERSION} ({WHY_REBUILD}); prepare the corpus again into a new output")


@pytest.mark.parametrize(
    "doc, message",
    [
        ({k: v for k, v in manifest_json().items() if k != "shards"}, "m.json: missing 'shards'"),
        (manifest_json(shards=[SHARD, {k: v for k, v in VIDEO.items() if k != "rows"}]),
         "m.json: shards[1]: missing 'rows'"),
        (manifest_json(params={**manifest_json()["params"], "size": "64"}),
         "m.json: params: 'size' is '64', expected an integer"),
        (manifest_json(shards=[{**SHARD, "rows": True}]), "m.json: shards[0]: 'rows' is True, expected an integer"),
        ([], "m.json: expected an object, got list"),
    ],
)  # fmt: skip
def test_a_broken_manifest_is_one_line_naming_the_file(doc, message):
    with pytest.raises(DataPrepError) as err:
        ShardManifest.from_json(doc, "m.json")
    assert str(err.value) == message


def test_the_reader_names_the_file(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(manifest_json(totals=None)))
    with pytest.raises(DataPrepError, match=f"^{tmp_path}/manifest.json: 'totals' is None, expected an object$"):
        read_shard_manifest(str(tmp_path))

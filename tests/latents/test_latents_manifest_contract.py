"""The typed latent manifest: what a valid manifest.json reads as, and the one-line errors of broken ones."""

import json

import pytest

from data_prep.params import PrepParams
from data_prep.s3 import S3Settings
from data_prep.storage import open_store
from workflows.latents.errors import LatentsError
from workflows.latents.latent_manifest import LatentManifest, read_latent_manifest

SHARD = {"path": "images/image-1.parquet", "rows": 5, "sha256": "ab", "bytes": 100, "train_rows": 4, "val_rows": 1,
         "media_type": "image", "unit_id": "image-1", "source_path": "images/image-0.parquet", "source_sha256": "cd"}  # fmt: skip


def manifest_json(**changes) -> dict:
    doc = {
        "tubelets": {"root": "/shards", "params": {"prep_version": 2, **PrepParams(size=32, frames=4).to_dict()}},
        "tokenizer": {"reference": "/tok", "weights_sha256": "ef", "channels": 4},
        "params": {"latent_format": 1},
        "dtype": "float16",
        "media_types": ["image"],
        "latent_shapes": {"image": [1, 4, 4, 4]},
        "units": 1,
        "unit_ids": ["image-1"],
        "shards": [SHARD],
        "totals": {"latents": 5},
        "stats_file": "latent_stats.json",
    }
    return {**doc, **changes}


def test_a_manifest_reads_into_typed_values():
    m = LatentManifest.from_json(manifest_json(), "m.json")
    assert m.latent_shapes == {"image": (1, 4, 4, 4)} and m.dtype == "float16"
    assert m.tubelets.params == PrepParams(size=32, frames=4) and m.tubelets.tubelet_shape("video") == (4, 32, 32)
    assert m.shards[0].source_sha256 == "cd" and m.shards_of("image", "val")[0].unit_id == "image-1"
    assert m.tokenizer["weights_sha256"] == "ef" and m.label_names is None


@pytest.mark.parametrize(
    "doc, message",
    [
        ({k: v for k, v in manifest_json().items() if k != "dtype"}, "m.json: missing 'dtype'"),
        (manifest_json(tokenizer={"reference": "/tok"}), "m.json: tokenizer: missing 'weights_sha256'"),
        (manifest_json(latent_shapes={"image": [1, 4, "4"]}),
         "m.json: latent_shapes: 'image' is [1, 4, '4'], expected a list of integers"),
        (manifest_json(shards=[{k: v for k, v in SHARD.items() if k != "source_path"}]),
         "m.json: shards[0]: missing 'source_path'"),
    ],
)  # fmt: skip
def test_a_broken_manifest_is_one_line_naming_the_file(doc, message):
    with pytest.raises(LatentsError) as err:
        LatentManifest.from_json(doc, "m.json")
    assert str(err.value) == message


def test_the_reader_names_the_folder_or_the_file(tmp_path):
    store = open_store(str(tmp_path), S3Settings())
    with pytest.raises(LatentsError, match=f"^{tmp_path}: no manifest.json"):
        read_latent_manifest(store)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest_json(units=None, stats_file=3)))
    with pytest.raises(LatentsError, match=f"^{tmp_path}/manifest.json: 'stats_file' is 3, expected a string$"):
        read_latent_manifest(store)

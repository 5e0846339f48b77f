"""Labels end to end and `--incremental`: data prep with `--labels parent-dir` -> latent shards that carry
the labels; new inputs prepared incrementally -> `cache_latents --incremental` encodes only the new tubelet
shards, leaves the old latent shards as they are, and the stats cover old and new."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from data_prep import run as prepare
from tests.latents.conftest import read_output
from workflows.latents.params import CacheOptions
from workflows.latents.pipeline import cache_latents

PREP = dict(size=32, images_per_unit=2, val_fraction=0.0)
OPTIONS = CacheOptions(dtype="float32", precision="fp32", incremental=True)


def _photo(path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (40, 48, 3), np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())


def test_labels_reach_the_latents_and_incremental_encodes_only_new_shards(local_ray, tiny_tokenizer, tmp_path):
    corpus, shards, latents = tmp_path / "corpus", tmp_path / "shards", tmp_path / "latents"
    for k, name in enumerate(["n01/a", "n01/b", "n02/c", "n02/d"]):
        _photo(corpus / "train" / f"{name}.png", k)
    prepare(str(corpus), str(shards), **PREP, labels="parent-dir")
    first = cache_latents(str(shards), str(tiny_tokenizer), str(latents), OPTIONS)
    assert first["units_run"] == 2 and first["latents_run"] == 4
    manifest, rows = read_output(latents)
    assert manifest["labels"] == {"source": "parent-dir", "names": ["n01", "n02"]}
    assert sorted((os.path.basename(r["source_uri"]), r["label"], r["label_name"]) for r in rows) == [
        ("a.png", 0, "n01"), ("b.png", 0, "n01"), ("c.png", 1, "n02"), ("d.png", 1, "n02")]  # fmt: skip
    old = {s["path"]: (latents / s["path"]).stat().st_mtime_ns for s in manifest["shards"]}

    for k, name in enumerate(["n03/e", "n03/f", "n00/g"]):
        _photo(corpus / "train" / f"{name}.png", 10 + k)
    prepare(str(corpus), str(shards), **PREP, labels="parent-dir", incremental=True)
    tubelet_shards = json.loads((shards / "manifest.json").read_text())["shards"]
    second = cache_latents(str(shards), str(tiny_tokenizer), str(latents), OPTIONS)
    assert second["units_run"] == len(tubelet_shards) - 2 and second["latents_run"] == 3
    manifest, rows = read_output(latents)
    assert manifest["units"] == len(tubelet_shards)
    assert {p: (latents / p).stat().st_mtime_ns for p in old} == old  # the first run's shards untouched
    by_name = {os.path.basename(r["source_uri"]): (r["label"], r["label_name"]) for r in rows}
    # n00 and n03 are new: in sorted order they take the next ints, 2 and 3; n01 keeps 0.
    assert by_name["e.png"] == (3, "n03") and by_name["g.png"] == (2, "n00") and by_name["a.png"] == (0, "n01")
    tubelet_labels = {}
    for s in tubelet_shards:
        for r in pq.read_table(shards / s["path"], columns=["sample_id", "label"]).to_pylist():
            tubelet_labels[r["sample_id"]] = r["label"]
    assert {r["sample_id"]: r["label"] for r in rows} == tubelet_labels
    stats = json.loads((latents / "latent_stats.json").read_text())
    values = np.concatenate([r["latent"].reshape(-1, 4) for r in rows]).astype(np.float64)
    assert stats["train_latents"] == 7
    np.testing.assert_allclose(stats["mean"], values.mean(axis=0), rtol=1e-12, atol=1e-12)

    third = cache_latents(str(shards), str(tiny_tokenizer), str(latents), OPTIONS)
    assert third["units_run"] == 0 and third["written"] is False

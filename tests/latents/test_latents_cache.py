"""The latent cache on the shared 32x32 test shards, in this process on a real local Ray:

- latent shapes are `encode`'s, and each cached latent is `model.encode(x, sample=False)` of the same pixels
  within the storage dtype's rounding (fp32 compute), or close to it (bf16 compute);
- latent_stats.json equals numpy's mean/std over the same stored train latents;
- the manifest names the tokenizer by its weights' sha256, the shapes, E and checksummed shards;
- a second run over the same shards and tokenizer encodes nothing and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pytest

from tests.latents.conftest import encode_tubelets, read_output
from workflows.latents.errors import LatentsError
from workflows.latents.params import CacheOptions
from workflows.latents.pipeline import cache_latents

# Half an ulp at the top of each storage dtype's mantissa: the most that rounding to it can move a value.
ROUNDING = {"float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8}


@pytest.fixture(scope="module")
def reference(tiny_tokenizer, sample_shards):
    return encode_tubelets(tiny_tokenizer, sample_shards)


@pytest.fixture(scope="module")
def fp32_output(local_ray, tiny_tokenizer, sample_shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("latents") / "fp32"
    options = CacheOptions(dtype="float32", precision="fp32", logvar=True, batch_size=16)
    summary = cache_latents(str(sample_shards), str(tiny_tokenizer), str(out), options)
    return out, summary


def test_latents_are_the_encoders_means_with_encode_shapes(fp32_output, reference, sample_shards):
    out, summary = fp32_output
    manifest, rows = read_output(out)
    tubelets = json.loads((sample_shards / "manifest.json").read_text())
    assert len(rows) == summary["totals"]["latents"] == tubelets["totals"]["tubelets"]
    assert summary["units_run"] == len(tubelets["shards"])
    assert {r["media_type"] for r in rows} == {"image", "video"}
    for row in rows:
        mean, logvar = reference[row["sample_id"]]
        assert row["latent"].shape == mean.shape == tuple(manifest["latent_shapes"][row["media_type"]])
        # Batches of 16 against one tubelet at a time: fp32 sums in another order, nothing more.
        np.testing.assert_allclose(row["latent"], mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(row["latent_logvar"], logvar, rtol=1e-4, atol=1e-5)
    assert manifest["latent_shapes"] == {"image": [1, 4, 4, 4], "video": [4, 4, 4, 4]}  # (T/q, H/p, W/p, c)
    assert manifest["E"] == {"image": 64, "video": 256}


def test_float16_storage_rounds_the_fp32_latents(local_ray, tiny_tokenizer, sample_shards, reference, tmp_path):
    options = CacheOptions(dtype="float16", precision="fp32", media_types=("image",))
    cache_latents(str(sample_shards), str(tiny_tokenizer), str(tmp_path / "f16"), options)
    manifest, rows = read_output(tmp_path / "f16")
    assert manifest["dtype"] == "float16" and manifest["media_types"] == ["image"]
    assert rows and {r["media_type"] for r in rows} == {"image"} and "latent_logvar" not in rows[0]
    for row in rows:
        mean = reference[row["sample_id"]][0]
        np.testing.assert_allclose(row["latent"], mean, rtol=ROUNDING["float16"] + 1e-4, atol=1e-5)


def test_bf16_compute_and_storage_stay_close_to_fp32(local_ray, tiny_tokenizer, sample_shards, reference, tmp_path):
    options = CacheOptions(dtype="bfloat16", precision="bf16", media_types=("image",))
    summary = cache_latents(str(sample_shards), str(tiny_tokenizer), str(tmp_path / "bf16"), options)
    manifest, rows = read_output(tmp_path / "bf16")
    assert summary["precision"] == "bf16" and manifest["storage"].startswith("uint16 bit patterns of bfloat16")
    latents = np.stack([r["latent"] for r in rows])
    means = np.stack([reference[r["sample_id"]][0] for r in rows])
    # bf16 matmuls (8-bit mantissa) through the encoder, then bf16 storage: a few bf16 ulps of the latents' scale.
    scale = np.abs(means).max()
    assert np.abs(latents - means).max() <= 8 * ROUNDING["bfloat16"] * scale
    assert np.corrcoef(latents.ravel(), means.ravel())[0, 1] > 0.999


def test_stats_equal_numpys_over_the_stored_train_latents(fp32_output):
    out, summary = fp32_output
    _, rows = read_output(out)
    stats = json.loads((out / "latent_stats.json").read_text())
    train = [r["latent"].reshape(-1, 4) for r in rows if r["split"] == "train"]
    values = np.concatenate(train).astype(np.float64)
    assert stats["train_latents"] == len(train) == summary["totals"]["train_latents"]
    assert stats["values_per_channel"] == len(values)
    np.testing.assert_allclose(stats["mean"], values.mean(axis=0), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats["std"], values.std(axis=0), rtol=1e-12)
    assert stats["shift_factor"] == pytest.approx(values.mean(), rel=1e-12, abs=1e-12)
    assert stats["scale_factor"] == pytest.approx(1.0 / values.std(), rel=1e-12)
    assert summary["stats"] == stats


def test_manifest_names_the_tokenizer_and_checksummed_shards(fp32_output, tiny_tokenizer, sample_shards):
    out, _ = fp32_output
    manifest = json.loads((out / "manifest.json").read_text())
    weights = (tiny_tokenizer / "model.safetensors").read_bytes()
    tok = manifest["tokenizer"]
    assert tok["weights_sha256"] == hashlib.sha256(weights).hexdigest()
    assert tok["reference"] == str(tiny_tokenizer) and tok["variant"] == "N-N/8" and tok["channels"] == 4
    assert manifest["tubelets"]["root"] == str(sample_shards)
    assert manifest["dtype"] == "float32" and manifest["columns"] == ["sample_id", "latent", "latent_logvar"]
    tubelet_shas = {s["path"]: s["sha256"] for s in json.loads((sample_shards / "manifest.json").read_text())["shards"]}
    for shard in manifest["shards"]:
        assert hashlib.sha256((out / shard["path"]).read_bytes()).hexdigest() == shard["sha256"]
        assert tubelet_shas[shard["source_path"]] == shard["source_sha256"]
    assert sum(s["rows"] for s in manifest["shards"]) == manifest["totals"]["latents"]


def test_a_second_run_does_nothing(fp32_output, tiny_tokenizer, sample_shards):
    out, first = fp32_output
    before = {p: os.stat(p).st_mtime_ns for p in out.rglob("*")}
    options = CacheOptions(dtype="float32", precision="fp32", logvar=True, batch_size=16)
    again = cache_latents(str(sample_shards), str(tiny_tokenizer), str(out), options)
    assert again["units_run"] == 0 and again["latents_run"] == 0 and again["written"] is False
    assert {p: os.stat(p).st_mtime_ns for p in out.rglob("*")} == before  # not one file touched
    assert again["totals"] == first["totals"] and again["stats"] == first["stats"]


def test_an_output_of_other_parameters_is_refused(fp32_output, tiny_tokenizer, sample_shards):
    out, _ = fp32_output
    with pytest.raises(LatentsError) as err:
        cache_latents(str(sample_shards), str(tiny_tokenizer), str(out), CacheOptions(precision="fp32"))
    assert str(err.value) == (f"output {out}: holds latents of other parameters (dtype: float32 there, float16 now; "
                              "logvar: True there, False now); use a new output")  # fmt: skip

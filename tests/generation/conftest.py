"""Fixtures of the generator tests: tiny tokenizers and their MLflow runs, latent caches made by the real
latent cache, labelled shards, and small feature networks shaped like Inception and I3D."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from data_prep import run as prepare_shards
from vitok import ViTok
from workflows.latents.params import CacheOptions
from workflows.latents.pipeline import cache_latents
from tests.feature_networks import TinyI3D, TinyInception
from workflows.tracking import MlflowClient, create_run, log_params

CONFIG_ROLE_TAGS = {"role": "config", "sweep": "generation-test"}  # what a sweep's tokenizer runs carry


def export_tokenizer(folder: Path, variant: str, channels: int = 4) -> Path:
    """An untrained tokenizer with a decoder that does not start at mid-grey: the trainer zeroes the pixel head
    (every decoded image would be one flat grey, and a patch distance of flat images is undefined), so the
    head gets small random weights. Enough to carry samples through the plumbing; nothing here is learned."""
    torch.manual_seed(0)
    model = ViTok.from_name(variant, channels=channels)
    nn.init.normal_(model.decoder.to_pixels.weight, std=0.05)
    return model.save_pretrained(folder)


def tokenizer_run(uri: str, experiment_id: str, name: str, export: Path, params: dict) -> str:
    """A tokenizer's MLflow run as the trainer leaves one: params, the export as its `model/` artifact, FINISHED."""
    client = MlflowClient(uri)
    run_id = create_run(client, experiment_id, name, tags=CONFIG_ROLE_TAGS)
    log_params(client, run_id, params)
    client.log_artifacts(run_id, str(export), "model")
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def cache(shards: Path, tokenizer: Path, output: Path, media_type: str) -> Path:
    """The real latent cache of `media_type`, stored as bfloat16 (the dtype that needs decoding on read)."""
    options = CacheOptions(dtype="bfloat16", precision="fp32", media_types=(media_type,), batch_size=64)
    cache_latents(str(shards), str(tokenizer), str(output), options)
    return output


@pytest.fixture(scope="module")
def feature_networks(tmp_path_factory) -> dict[str, Path]:
    """{"inception": file, "i3d": file}: TorchScript files, as weights.inception / weights.i3d name them."""
    folder = tmp_path_factory.mktemp("feature-nets")
    torch.manual_seed(0)
    files = {"inception": folder / "inception.pt", "i3d": folder / "i3d.pt"}
    torch.jit.script(TinyInception()).save(str(files["inception"]))
    torch.jit.script(TinyI3D()).save(str(files["i3d"]))
    return files


@pytest.fixture(scope="module")
def labelled_shards(local_ray, sample_corpus, tmp_path_factory) -> Path:
    """The sample corpus's images as 32x32 tubelets with a class each (its source photograph: parent-dir)."""
    out = tmp_path_factory.mktemp("labelled") / "shards"
    prepare_shards(str(sample_corpus), str(out), size=32, images_per_unit=128, labels="parent-dir", include=("img/*",))
    return out

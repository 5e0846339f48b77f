"""Fixtures of the latent-cache tests: a tiny exported tokenizer, and readers of what an output holds.

Fake AWS credentials for the loopback S3 server are set at collection, before any Ray worker starts (workers
inherit the environment of the process that starts Ray). They are moto's test values: nothing here can
reach real AWS (tests only talk to 127.0.0.1, and the endpoint is always given explicitly).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from data_prep import tensor_numpy
from vitok import ViTok
from workflows.latents.schema import to_float32
from workflows.training.evaluation import pixels_to_model_input

for key, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                   ("AWS_DEFAULT_REGION", "us-east-1")):  # fmt: skip
    os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> Path:
    """N-N/8 with c = 4 (seeded random weights), exported as the trainer exports: save_pretrained's folder."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tokenizer") / "n-n-8-c4"
    ViTok.from_name("N-N/8", channels=4).save_pretrained(folder)
    return folder


def read_output(output: Path) -> tuple[dict, list[dict]]:
    """(manifest, rows of every latent shard it names), with `latent` (and `latent_logvar`) as float32."""
    manifest = json.loads((output / "manifest.json").read_text())
    rows = []
    for shard in manifest["shards"]:
        table = pq.read_table(output / shard["path"])
        arrays = {c: to_float32(tensor_numpy(table, c), manifest["dtype"])
                  for c in ("latent", "latent_logvar") if c in table.column_names}  # fmt: skip
        scalars = table.drop_columns(list(arrays)).to_pylist()
        rows += [{**row, **{c: a[i] for c, a in arrays.items()}} for i, row in enumerate(scalars)]
    return manifest, rows


def encode_tubelets(tokenizer: Path, shards: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """sample_id -> (mean, logvar) of `model.encode_moments` in fp32, one tubelet at a time: the reference."""
    model = ViTok.from_pretrained(tokenizer)
    manifest = json.loads((shards / "manifest.json").read_text())
    out = {}
    with torch.inference_mode():
        for shard in manifest["shards"]:
            table = pq.read_table(shards / shard["path"], columns=["sample_id", "pixels"])
            pixels = tensor_numpy(table, "pixels")
            for sample_id, one in zip(table.column("sample_id").to_pylist(), pixels):
                x = pixels_to_model_input(torch.from_numpy(one[None]))
                mean = model.encode(x, sample=False)
                _, logvar = model.encode_moments(x)
                out[sample_id] = (mean[0].numpy(), logvar[0].numpy())
    return out

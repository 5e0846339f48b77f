"""Fine-tuning an exported tokenizer on a domain it never saw: a tokenizer trained on natural photographs of the
sample corpus, fine-tuned decoder-only (`train.init_from` + `train.freeze: encoder`) on its documents, text and
logos, reconstructs held-out crops of those better than before, and encodes every input exactly as before (the
latent space, and with it cached latents and generators, stays valid). Both exports carry a model card."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from data_prep import tensor_numpy
from tests.helpers import run_cli
from vitok import ViTok
from workflows.config import TrainConfig
from workflows.tracking import prepare_tracking
from workflows.training.evaluation import ValBatch, evaluate, pixels_to_model_input
from workflows.training.model_card import CARD_NAME
from workflows.training.plan import plan_run
from workflows.training.spec import run_training

pytestmark = pytest.mark.integration

# (split folder of the sample corpus, scene) of each domain; a quarter of each domain's files are held out.
PHOTOS = [("train", "astronaut"), ("train", "coffee"), ("train", "horse"), ("val", "chelsea")]
DOCUMENTS = [("train", "text"), ("train", "logo"), ("val", "page")]


def domain_shards(sample_corpus: Path, scenes: list[tuple[str, str]], folder: Path) -> Path:
    """Shards of the corpus's images of `scenes`, 32 px, with a quarter of the files (by name) held out."""
    corpus = folder / "corpus"
    for split, name in scenes:
        shutil.copytree(sample_corpus / "img" / split / name, corpus / name)
    out = folder / "shards"
    proc = run_cli(sys.executable, "-m", "data_prep", "run", "--input", str(corpus), "--output", str(out),
                   "--size", "32", "--val-fraction", "0.25")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def train(name: str, shards: Path, tmp_path: Path, **train) -> tuple[dict, Path]:
    config = TrainConfig.from_dict({
        "name": name, "model": {"variant": "N-N/8", "channels": 8},
        "data": {"shards": str(shards), "eval_unit": "sample"}, "optim": {"base_lr": 0.064, "warmup_steps": 2},
        "train": {"steps": 40, "micro_batch_size": 8, "num_workers": 1, "log_every": 20, "eval_samples": 64,
                  "export_to": str(tmp_path / name), **train},
    })  # fmt: skip
    uri, experiment_id = prepare_tracking(f"sqlite:///{tmp_path / 'mlflow.db'}", "fine-tune-test")
    result = run_training(plan_run(config), uri, experiment_id, storage=str(tmp_path / "ray"))
    return result.metrics, tmp_path / name


def held_out(shards: Path) -> torch.Tensor:
    """The val split's pixels, uint8 (N, 1, H, W, 3)."""
    table = pq.read_table(sorted((shards / "images").glob("*.parquet")))
    val = table.filter(np.array(table.column("split").to_pylist()) == "val")
    return torch.from_numpy(tensor_numpy(val, "pixels").copy())


def held_out_psnr(model: ViTok, pixels: torch.Tensor) -> float:
    """The evaluation's PSNR (uint8 reconstructions, per-sample means) of `model` on `pixels`, in fp32."""
    def reconstruct(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(x, sample=False).recon

    batch = ValBatch(pixels, [str(i) for i in range(len(pixels))], [str(i) for i in range(len(pixels))])
    results, _, _ = evaluate(reconstruct, [batch], len(pixels), batch_size=16)
    return results["eval_psnr"]


def test_a_decoder_only_fine_tune_improves_a_new_domain_and_keeps_the_latent_space(sample_corpus, local_ray,
                                                                                   tmp_path):
    photos = domain_shards(sample_corpus, PHOTOS, tmp_path / "photos")
    documents = domain_shards(sample_corpus, DOCUMENTS, tmp_path / "documents")
    _, base_export = train("photos", photos, tmp_path)
    metrics, tuned_export = train("documents", documents, tmp_path, init_from=str(base_export), freeze="encoder")

    base, tuned = ViTok.from_pretrained(base_export).eval(), ViTok.from_pretrained(tuned_export).eval()
    pixels = held_out(documents)
    assert len(pixels) >= 8
    before = held_out_psnr(base, pixels)
    after = held_out_psnr(tuned, pixels)
    assert after == pytest.approx(metrics["eval_psnr"], abs=0.5)  # the run's own evaluation (bf16 autocast)
    assert after > before + 0.5, (before, after)

    x = pixels_to_model_input(pixels)
    with torch.inference_mode():
        assert torch.equal(base.encode(x, sample=False), tuned.encode(x, sample=False))
        assert not torch.equal(base(x, sample=False).recon, tuned(x, sample=False).recon)

    card = (tuned_export / CARD_NAME).read_text()
    assert "E = L x c = 128" in card  # 32x32 / patch 8 = 16 tokens x 8 channels
    assert f"fine-tuned from `{base_export}` with the encoder frozen" in card
    assert f"| PSNR (dB) | {metrics['eval_psnr']:.4g} |" in card
    assert "python -m vitok reconstruct THIS_FOLDER" in (base_export / CARD_NAME).read_text()

"""The model card written beside every exported tokenizer: `README.md` in the export folder, saying what the
weights are (variant, E = L x c, sizes), what they were trained on and how, how they were evaluated (n, the
independent units, 95% intervals), where the run is tracked, and how to load and use them.

Everything in it comes from the run's plan and the metrics its evaluation measured; a metric the run did not
measure is left out, never filled in.
"""

from __future__ import annotations

from workflows.training.plan import RunPlan

CARD_NAME = "README.md"

# (metric key, label, what it measures) in the card's order; intervals are read from `{key}_ci_low/high`.
CARD_METRICS = (
    ("eval_psnr", "PSNR (dB)", "higher is better"),
    ("eval_ssim", "SSIM", "higher is better"),
    ("eval_lpips", "LPIPS", "lower is better"),
    ("eval_rfid", "rFID", "lower is better; no interval"),
    ("eval_rfvd", "rFVD", "lower is better; no interval"),
)


def model_card(plan: RunPlan, metrics: dict[str, float], run_id: str, tracking_uri: str, weights: str) -> str:
    """The card's markdown. `weights` says which weights the folder holds ("ema" or "raw")."""
    c, s, t = plan.config, plan.stats, plan.config.train
    frames, size = plan.frames, plan.resolution
    started = f", fine-tuned from `{t.init_from}`" if t.init_from else ""
    frozen = " with the encoder frozen (the latent space of the export it started from)" if t.freeze == "encoder" \
        else ""
    lines = [
        f"# ViTok tokenizer `{c.name}`",
        "",
        f"{plan.model_config.name or c.model.variant} with {s.channels} latent channels: "
        f"a {frames}x{size}x{size} input becomes L = {s.tokens} tokens of c = {s.channels} channels, "
        f"E = L x c = {s.E} numbers (patch p = {s.patch}, tubelet q = {s.tubelet}).",
        f"{s.params / 1e6:.2f} M parameters (encoder {s.encoder_params / 1e6:.2f} M, decoder "
        f"{s.decoder_params / 1e6:.2f} M), {s.gmacs:.3g} GMACs per forward pass at that size. "
        f"This folder holds the {'EMA of the' if weights == 'ema' else 'trained'} weights in fp32.",
        "",
        "## Training",
        "",
        f"- Data: the {c.data.media_type} tubelet shards at `{c.data.shards}`: {plan.train_rows} train and "
        f"{plan.val_rows} held-out tubelets, trained at {frames}x{size}x{size}"
        + (f" (random {c.data.crop}-px crops)" if c.data.crop else "") + (", random flips" if c.data.flip else "")
        + ".",
        f"- Stage {t.stage}{started}{frozen}: {t.steps} steps at a global batch of {t.global_batch_size}, "
        f"peak lr {c.peak_lr:.3g}, {t.precision}, ZeRO-{t.zero_stage} over {t.num_workers} worker(s), seed {t.seed}.",
        "",
        "## Evaluation",
        "",
    ]
    if "eval_psnr" not in metrics:
        lines.append("Not evaluated: the shards have no held-out split.")
    else:
        n, groups = int(metrics.get("eval_samples", 0)), int(metrics.get("eval_groups", 0))
        lines += [
            f"On n = {n} held-out tubelets from {groups} independent units ({c.data.eval_unit}), reconstructed "
            "from the posterior mean and quantised to uint8 as a saved image would be. Intervals are 95% "
            "bootstrap intervals of the mean that resample the independent units (t-widened for few units); "
            "one training run, so training noise is not in them.",
            "",
            "| metric | mean | 95% interval | |",
            "|---|---|---|---|",
        ]
        for key, label, note in CARD_METRICS:
            if key not in metrics:
                continue
            low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
            interval = f"[{low:.4g}, {high:.4g}]" if low is not None and high is not None else "-"
            lines.append(f"| {label} | {metrics[key]:.4g} | {interval} | {note} |")
    lines += [
        "",
        "## Tracking",
        "",
        f"MLflow run `{run_id}` at `{tracking_uri}` (params, per-step metrics, reconstruction grids).",
        "",
        "## Use",
        "",
        "```",
        f"python -m vitok reconstruct THIS_FOLDER photo.jpg photo_reconstructed.png --tile {size}",
        f"python -m vitok encode THIS_FOLDER clip.mp4 clip_latents.safetensors --tile {size}",
        "python -m vitok decode THIS_FOLDER clip_latents.safetensors clip_decoded.mp4",
        "```",
        "",
        f"Inputs of any size are cut into {size}-px tiles (the training size) that overlap and are blended. "
        "In Python: `ViTok.from_pretrained(\"THIS_FOLDER\")` (a folder or s3:// prefix) gives the model; "
        "`encode` and `decode` take (B, T, H, W, 3) tensors in [-1, 1]. To fine-tune it on your own data: "
        "`workflows/train.py --init-from THIS_FOLDER` with `train.freeze: encoder` (decoder only) or `none`.",
        "",
    ]
    return "\n".join(lines)

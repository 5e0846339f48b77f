"""The sweep's summary rows: one dict per config with what the report needs (E, p, sizes, loss settings,
the eval metrics with their n and 95% intervals, the design that seed replicates share, status, and the
generation probe's metrics when the sweep has one). These
rows are the input of `workflows.reports`."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from workflows.tracking import RunResult
from workflows.training.plan import RunPlan

# eval metric logged by the training run -> column of the summary table
METRIC_KEYS = {"PSNR": "eval_psnr", "SSIM": "eval_ssim", "LPIPS": "eval_lpips", "rFID": "eval_rfid",
               "rFVD": "eval_rfvd"}
# Per-sample metrics also carry a 95% bootstrap interval over the n validation samples, logged as
# `<key>_ci_low` / `<key>_ci_high`: columns `<column>_lo` / `<column>_hi`. (rFID and rFVD are statistics of
# the whole set, so they have none.)
INTERVAL_METRICS = ("PSNR", "SSIM", "LPIPS")
# The generation probe's metrics on the generator run -> columns (all lower-is-better): the sliced Wasserstein
# distance with its 95% interval over the N samples, and gFID / gFVD when their networks were configured.
GENERATION_KEYS = {"SWD": "gen_swd", "gFID": "gen_fid", "gFVD": "gen_fvd"}
# The columns the console shows at the end of a sweep (the CSV on the parent run has them all).
CONSOLE_COLUMNS = ["config", "variant", "p", "L", "c", "E", "params_M", "GMACs", "n", "units", "PSNR", "PSNR_lo",
                   "PSNR_hi", "SSIM", "LPIPS", "rFID", "wall_s", "status", "note"]
# With a generation probe the console table shows these after the reconstruction columns.
CONSOLE_GENERATION_COLUMNS = ["generator", "gen_n", "SWD", "SWD_lo", "SWD_hi", "gFID", "gFVD", "gen_status"]


def size_letters(variant: str) -> tuple[str, str]:
    sizes = variant.split("/", 1)[0].split("-")
    return (sizes[0], sizes[1]) if len(sizes) == 2 else (variant, variant)


def design_of(plan: RunPlan) -> str:
    """What a run is apart from its name and seed: runs that share it are seed replicates of one design."""
    flat = {k: v for k, v in plan.config.flat().items() if k not in ("name", "train.seed")}
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:12]


def summary_row(plan: RunPlan, result: RunResult | None, error: str | None = None, *, probed: bool = False,
                generation: RunResult | None = None, generation_error: str | None = None,
                generator: str = "") -> dict[str, Any]:  # fmt: skip
    """One config's row; with `probed` (the sweep has a generation probe) also its generator's columns:
    `generation` is the generator run's result (None: no probe ran or it failed with `generation_error`)."""
    metrics = result.metrics if result else {}
    s, c = plan.stats, plan.config
    enc, dec = size_letters(c.model.variant)
    row = {
        "config": c.name,
        "variant": c.model.variant,
        "enc": enc,
        "dec": dec,
        "media": c.data.media_type,
        "p": s.patch,
        "q": s.tubelet,
        "L": s.tokens,
        "c": s.channels,
        "E": s.E,
        "params_M": round(s.params / 1e6, 3),
        "encoder_params": s.encoder_params,
        "decoder_params": s.decoder_params,
        "GMACs": round(s.gmacs, 4),
        "stage": c.train.stage,
        "lpips_weight": c.optim.lpips_weight,
        "lpips_active": plan.lpips_active,
        "gan_weight": c.optim.gan_weight,
        "frames": plan.frames,
        "seed": c.train.seed,
        "design": design_of(plan),
        "n": int(metrics["eval_samples"]) if metrics.get("eval_samples") is not None else None,
        # the independent units (scenes, videos) the n samples come from, which the intervals resample
        "units": int(metrics["eval_groups"]) if metrics.get("eval_groups") is not None else None,
    }
    for column, key in METRIC_KEYS.items():
        row[column] = _number(metrics.get(key))
        if column in INTERVAL_METRICS:
            row[f"{column}_lo"] = _number(metrics.get(f"{key}_ci_low"))
            row[f"{column}_hi"] = _number(metrics.get(f"{key}_ci_high"))
    row["wall_s"] = round(float(result.wall_time_s), 1) if result and result.wall_time_s else None
    row["status"] = "failed: " + error if error else "finished"
    row["note"] = "skipped (already finished)" if result and result.skipped else ""
    row["run_id"] = result.run_id if result else ""
    if probed:
        row.update(_generation_columns(generation, generation_error, generator))
    return row


def _generation_columns(generation: RunResult | None, error: str | None, generator: str) -> dict[str, Any]:
    metrics = generation.metrics if generation else {}
    status = "finished" if generation else f"failed: {error}" if error else ""
    columns = {"generator": generator if generation else None,
               "gen_n": int(metrics["gen_samples"]) if "gen_samples" in metrics else None}  # fmt: skip
    for column, key in GENERATION_KEYS.items():
        columns[column] = _number(metrics.get(key))
        if column == "SWD":
            columns["SWD_lo"] = _number(metrics.get(f"{key}_ci_low"))
            columns["SWD_hi"] = _number(metrics.get(f"{key}_ci_high"))
    columns["gen_status"] = status
    columns["gen_run_id"] = generation.run_id if generation else ""
    return columns


def _number(value: Any) -> float | None:
    return float(value) if value is not None else None

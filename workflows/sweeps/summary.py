"""The sweep's summary rows: one dict per config with what the report needs (E, p, sizes, loss settings,
the eval metrics with their n and 95% intervals, the design that seed replicates share, status). These
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
# The columns the console shows at the end of a sweep (the CSV on the parent run has them all).
CONSOLE_COLUMNS = ["config", "variant", "p", "L", "c", "E", "params_M", "GMACs", "n", "PSNR", "PSNR_lo", "PSNR_hi",
                   "SSIM", "LPIPS", "rFID", "wall_s", "status", "note"]


def size_letters(variant: str) -> tuple[str, str]:
    sizes = variant.split("/", 1)[0].split("-")
    return (sizes[0], sizes[1]) if len(sizes) == 2 else (variant, variant)


def design_of(plan: RunPlan) -> str:
    """What a run is apart from its name and seed: runs that share it are seed replicates of one design."""
    flat = {k: v for k, v in plan.config.flat().items() if k not in ("name", "train.seed")}
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:12]


def summary_row(plan: RunPlan, result: RunResult | None, error: str | None = None) -> dict[str, Any]:
    metrics = result.metrics if result else {}
    s, c = plan.stats, plan.config
    enc, dec = size_letters(c.model.variant)
    row = {
        "config": c.name,
        "variant": c.model.variant,
        "enc": enc,
        "dec": dec,
        "media": c.data.media_type,
        "p": s["patch"],
        "q": s["tubelet"],
        "L": s["tokens"],
        "c": s["channels"],
        "E": s["E"],
        "params_M": round(s["params"] / 1e6, 3),
        "encoder_params": s["encoder_params"],
        "decoder_params": s["decoder_params"],
        "GMACs": round(s["gmacs"], 4),
        "stage": c.train.stage,
        "lpips_weight": c.optim.lpips_weight,
        "lpips_active": plan.lpips_active,
        "gan_weight": c.optim.gan_weight,
        "frames": plan.frames,
        "seed": c.train.seed,
        "design": design_of(plan),
        "n": int(metrics["eval_samples"]) if metrics.get("eval_samples") is not None else None,
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
    return row


def _number(value: Any) -> float | None:
    return float(value) if value is not None else None

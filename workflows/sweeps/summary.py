"""The sweep's summary rows: one dict per config with what the report needs (E, p, sizes, loss settings,
the eval metrics, status). These rows are the input of `workflows.reports`."""

from __future__ import annotations

from typing import Any

from workflows.tracking import RunResult
from workflows.training.plan import RunPlan

# eval metric logged by the training run -> column of the summary table
METRIC_KEYS = {"PSNR": "eval_psnr", "SSIM": "eval_ssim", "LPIPS": "eval_lpips", "rFID": "eval_rfid",
               "rFVD": "eval_rfvd"}
# The columns the console shows at the end of a sweep (the CSV on the parent run has them all).
CONSOLE_COLUMNS = ["config", "variant", "p", "L", "c", "E", "params_M", "GMACs", "PSNR", "SSIM", "LPIPS", "rFID",
                   "wall_s", "status", "note"]


def size_letters(variant: str) -> tuple[str, str]:
    sizes = variant.split("/", 1)[0].split("-")
    return (sizes[0], sizes[1]) if len(sizes) == 2 else (variant, variant)


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
    }
    for column, key in METRIC_KEYS.items():
        value = metrics.get(key)
        row[column] = float(value) if value is not None else None
    row["wall_s"] = round(float(result.wall_time_s), 1) if result and result.wall_time_s else None
    row["status"] = "failed: " + error if error else "finished"
    row["note"] = "skipped (already finished)" if result and result.skipped else ""
    row["run_id"] = result.run_id if result else ""
    return row

"""The sweep's summary rows: one frozen `SummaryRow` per config with what the report needs (E, p, sizes, loss
settings, the eval metrics with their n and 95% intervals, the design that seed replicates share, status, and
the generation probe's metrics when the sweep has one), built here once and read by attribute in
`workflows.reports`; `SummaryRow.columns` is the summary table's row."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from workflows.sweeps.sweep_file import DEP_PREFIX, SEED_SUFFIX
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
    # A `seeds:` replicate of a stage-2 run starts from its own seed's stage-1 run (`@NAME-s<seed>`): the same design.
    suffix = f"{SEED_SUFFIX}{plan.config.train.seed}"
    if flat["train.init_from"].startswith(DEP_PREFIX) and flat["train.init_from"].endswith(suffix):
        flat["train.init_from"] = flat["train.init_from"][: -len(suffix)]
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class SummaryRow:
    """One config's summary, read by the report (workflows.reports) by attribute. Metrics are None when not
    measured; `<metric>_lo` / `<metric>_hi` is the run's 95% interval. The generation columns are the probe's
    (`probed`: the sweep has one). `draws` is not a column: the paired bootstrap deviations per metric and
    the number of the validation set they belong to (workflows.reports.paired), set by `with_draws`."""

    config: str
    variant: str = ""
    enc: str = ""
    dec: str = ""
    media: str = "image"
    p: int | None = None
    q: int | None = 1
    L: int | None = None
    c: int | None = None
    E: int | None = None
    params_M: float | None = None
    encoder_params: int | None = None
    decoder_params: int | None = None
    GMACs: float | None = None
    stage: int = 1
    lpips_weight: float = 0.0
    lpips_active: bool = False
    gan_weight: float = 0.0
    frames: int | None = None
    seed: int | None = None
    design: str = ""  # runs that share it are seed replicates of one config ("": every run its own)
    n: int | None = None
    # the independent units (scenes, videos) the n samples come from, which the intervals resample
    units: int | None = None
    PSNR: float | None = None
    PSNR_lo: float | None = None
    PSNR_hi: float | None = None
    SSIM: float | None = None
    SSIM_lo: float | None = None
    SSIM_hi: float | None = None
    LPIPS: float | None = None
    LPIPS_lo: float | None = None
    LPIPS_hi: float | None = None
    rFID: float | None = None
    rFVD: float | None = None
    wall_s: float | None = None
    status: str = "finished"
    note: str = ""
    run_id: str = ""
    probed: bool = False
    generator: str | None = None
    gen_n: int | None = None
    SWD: float | None = None
    SWD_lo: float | None = None
    SWD_hi: float | None = None
    gFID: float | None = None
    gFVD: float | None = None
    gen_status: str = ""
    gen_run_id: str = ""
    draws: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    def metric(self, key: str) -> float | None:
        """The value of metric column `key` (PSNR, SWD, ...)."""
        return getattr(self, key)

    def interval(self, key: str) -> tuple[float | None, float | None]:
        """`key`'s 95% interval; (None, None) for a metric that has none (rFID) or a run that logged none."""
        return getattr(self, f"{key}_lo", None), getattr(self, f"{key}_hi", None)

    def with_draws(self, draws: dict[str, Any]) -> "SummaryRow":
        return dataclasses.replace(self, draws=draws)

    def columns(self) -> dict[str, Any]:
        """The table's columns in order (summary.csv / .md): every field but `probed` and `draws`, and the
        generation probe's only when the sweep has one (so every row of a sweep has one header)."""
        skipped = {"probed", "draws"} | (set() if self.probed else set(GENERATION_COLUMNS))
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skipped}


GENERATION_COLUMNS = ("generator", "gen_n", "SWD", "SWD_lo", "SWD_hi", "gFID", "gFVD", "gen_status", "gen_run_id")


def summary_row(plan: RunPlan, result: RunResult | None, error: str | None = None, *, probed: bool = False,
                generation: RunResult | None = None, generation_error: str | None = None,
                generator: str = "") -> SummaryRow:  # fmt: skip
    """One config's row; with `probed` (the sweep has a generation probe) also its generator's columns:
    `generation` is the generator run's result (None: no probe ran or it failed with `generation_error`)."""
    metrics = result.metrics if result else {}
    s, c = plan.stats, plan.config
    enc, dec = size_letters(c.model.variant)
    columns: dict[str, Any] = {}
    for column, key in METRIC_KEYS.items():
        columns[column] = _number(metrics.get(key))
        if column in INTERVAL_METRICS:
            columns[f"{column}_lo"] = _number(metrics.get(f"{key}_ci_low"))
            columns[f"{column}_hi"] = _number(metrics.get(f"{key}_ci_high"))
    if probed:
        columns.update(_generation_columns(generation, generation_error, generator))
    return SummaryRow(
        config=c.name, variant=c.model.variant, enc=enc, dec=dec, media=c.data.media_type, p=s.patch,
        q=s.tubelet, L=s.tokens, c=s.channels, E=s.E, params_M=round(s.params / 1e6, 3),
        encoder_params=s.encoder_params, decoder_params=s.decoder_params, GMACs=round(s.gmacs, 4),
        stage=c.train.stage, lpips_weight=c.optim.lpips_weight, lpips_active=plan.lpips_active,
        gan_weight=c.optim.gan_weight, frames=plan.frames, seed=c.train.seed, design=design_of(plan),
        n=int(metrics["eval_samples"]) if metrics.get("eval_samples") is not None else None,
        units=int(metrics["eval_groups"]) if metrics.get("eval_groups") is not None else None,
        wall_s=round(float(result.wall_time_s), 1) if result and result.wall_time_s else None,
        status="failed: " + error if error else "finished",
        note="skipped (already finished)" if result and result.skipped else "",
        run_id=result.run_id if result else "", probed=probed, **columns,
    )


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

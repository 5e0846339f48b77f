"""Run a scaling sweep: one MLflow parent run for the sweep, one child run per config, then the report.

    python workflows/scale_sweep.py --config workflows/configs/e_sweep_tiny.yaml --dry-run
    python workflows/scale_sweep.py --config workflows/configs/e_sweep_tiny.yaml --shards work/shards
    ray job submit --working-dir . -- python workflows/scale_sweep.py --config workflows/configs/e_sweep_paper.yaml \
        --shards s3://bucket/shards-256 --tracking-uri http://mlflow:5000

Plain `python` starts a local Ray; under `ray job submit` it joins the job's cluster (RAY_ADDRESS).
Before anything runs, every config is validated and the plan is printed (params, GMACs/sample, tokens L,
c, E, and the sweep's estimated training FLOPs); `--dry-run` stops there.
Re-running the same sweep (same `sweep:` name and experiment) resumes it: finished children are skipped,
unfinished ones resume from their checkpoints; `--new` starts a fresh parent run instead.
A child that fails is recorded as failed and the others go on (the exit code is then 1).
On the parent run: summary.csv/.md, plots/*.png (metrics vs log E with fits, vs encoder and decoder size,
PSNR vs rFID or LPIPS), findings.md, and the fits as metrics.
"""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflows.cluster import connect_ray
from workflows.config import ConfigError, TrainConfig, absolute_location
from workflows.findings import METRICS, evaluate_findings, findings_markdown
from workflows.fits import fit_log2
from workflows.plots import make_plots
from workflows.report import rows_to_markdown
from workflows.sweep_config import DEP_PREFIX, Sweep, load_sweep
from workflows.sweep_runner import Outcome, SweepRunner, find_parent
from workflows.tracking import MlflowClient, create_run, dashboard_command, log_table, prepare_tracking
from workflows.train import RunPlan, plan_run, run_training

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "e_sweep_tiny.yaml"
# eval metric logged by the training run -> column of the summary table
METRIC_KEYS = {"PSNR": "eval_psnr", "SSIM": "eval_ssim", "LPIPS": "eval_lpips", "rFID": "eval_rfid",
               "rFVD": "eval_rfvd"}


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


# ---------------------------------------------------------------------------------------------- planning

def plan_from_input(config: TrainConfig, frames: int, size: int) -> RunPlan:
    """A plan from the sweep's declared `input` when the shards are not reachable from here (dry runs of
    paper-scale sweeps on a laptop): the model's numbers, no data rows."""
    from vitok import ViTokConfig, model_stats
    from vitok.config import check_input_shape

    try:
        model_config = ViTokConfig.from_name(config.model.variant, channels=config.model.channels)
        check_input_shape(model_config, frames, size, size)
    except ValueError as err:
        raise ConfigError(f"{config.name}: {err}") from None
    stats = model_stats(model_config, frames, size, size)
    return RunPlan(config, frames, size, stats, train_rows=0, val_rows=0)


def _plan(config: TrainConfig) -> RunPlan:
    """`plan_run`, except that a stage-2 run pointing at another run of the sweep (`init_from: "@NAME"`, whose
    export does not exist yet) is planned as its stage-1 twin; the runner fills in the export's location."""
    if not config.train.init_from.startswith(DEP_PREFIX):
        return plan_run(config)
    twin = dataclasses.replace(
        config, train=dataclasses.replace(config.train, stage=1, init_from=""),
        optim=dataclasses.replace(config.optim, gan_weight=0.0),
    )
    return dataclasses.replace(plan_run(twin), config=config)


def plan_sweep(sweep: Sweep, dry_run: bool) -> list[RunPlan]:
    """Plans every config against its shards; a dry run may fall back on the sweep's `input`."""
    plans = []
    for config in sweep.configs:
        try:
            plan = _plan(config)
        except (OSError, ValueError) as err:
            if not (dry_run and sweep.input.get("size") and "manifest" in str(err)):
                raise
            frames = sweep.input.get("frames", 1) if config.data.media_type == "video" else 1
            plan = plan_from_input(config, frames, sweep.input["size"])
        else:
            want = sweep.input
            frames = want.get("frames", 1) if config.data.media_type == "video" else 1
            if want.get("size") and (want["size"], frames) != (plan.resolution, plan.frames):
                raise ConfigError(
                    f"{sweep.source}: {config.name}: input is {frames}x{want['size']}x{want['size']} "
                    f"but {config.data.shards} holds {plan.frames}x{plan.resolution}x{plan.resolution} tubelets"
                )
        plans.append(plan)
    return plans


def training_flops(plan: RunPlan) -> float:
    """Estimated training FLOPs: forward + backward ≈ 3 forwards, 2 FLOPs per multiply-accumulate."""
    t = plan.config.train
    return 6.0 * plan.stats["gmacs"] * 1e9 * t.steps * t.global_batch_size


def plan_rows(plans: list[RunPlan]) -> list[dict[str, Any]]:
    return [
        {
            "config": p.config.name,
            "variant": p.config.model.variant,
            "input": f"{p.frames}x{p.resolution}x{p.resolution}",
            "params_M": round(p.stats["params"] / 1e6, 3),
            "GMACs/sample": round(p.stats["gmacs"], 4),
            "L": p.stats["tokens"],
            "c": p.stats["channels"],
            "E": p.stats["E"],
            "steps": p.config.train.steps,
            "batch": p.config.train.global_batch_size,
            "train_FLOPs": float(f"{training_flops(p):.3g}"),
        }
        for p in plans
    ]


def format_plan(sweep: Sweep, plans: list[RunPlan]) -> str:
    total = sum(training_flops(p) for p in plans)
    es = [p.stats["E"] for p in plans]
    return (
        f"Sweep '{sweep.name}' ({sweep.study or 'no study'}): {len(plans)} configs, E from {min(es)} to {max(es)} "
        f"({max(es) / min(es):.3g}x)\n{rows_to_markdown(plan_rows(plans))}"
        f"Estimated total training compute: {total:.4g} FLOPs ({total / 1e15:.4g} PFLOPs; "
        f"6 x MACs x steps x global batch)\n"
    )


# ---------------------------------------------------------------------------------------------- results

def size_letters(variant: str) -> tuple[str, str]:
    sizes = variant.split("/", 1)[0].split("-")
    return (sizes[0], sizes[1]) if len(sizes) == 2 else (variant, variant)


def summary_row(plan: RunPlan, result: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
    metrics = (result or {}).get("metrics", {})
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
        # LPIPS is a training term only when its weights are configured (the run records it as param `lpips`)
        "lpips_active": plan.params().get("lpips", "on" if c.optim.lpips_weight > 0 and c.weights.lpips else "off") == "on",
        "gan_weight": c.optim.gan_weight,
    }
    for column, key in METRIC_KEYS.items():
        value = metrics.get(key)
        row[column] = float(value) if value is not None else None
    row["wall_s"] = round(float(result["wall_time_s"]), 1) if result and result.get("wall_time_s") else None
    row["status"] = "failed: " + error if error else "finished"
    row["note"] = "skipped (already finished)" if result and result.get("skipped") else ""
    row["run_id"] = (result or {}).get("run_id", "")
    return row


def fit_metrics(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The log2 fits as parent-run metrics, so the dashboard can compare sweeps."""
    ok = [r for r in rows if r["status"] == "finished"]
    out: dict[str, float] = {}
    for x_key, x_name in (("E", "E"), ("encoder_params", "enc_params"), ("decoder_params", "dec_params")):
        for metric, _, _ in METRICS:
            points = [r for r in ok if r.get(metric) is not None]
            fit = fit_log2([r[x_key] for r in points], [r[metric] for r in points])
            if fit is None:
                continue
            out[f"fit_{metric}_vs_log2_{x_name}_slope"] = fit.slope
            if fit.r2 is not None:
                out[f"fit_{metric}_vs_log2_{x_name}_r2"] = fit.r2
    return out


def publish_results(client: MlflowClient, parent_id: str, sweep: Sweep, rows: list[dict[str, Any]]) -> str:
    """Logs the table, the plots, the fits and findings.md on the parent run; returns findings.md's text."""
    findings = evaluate_findings(rows, sweep.study)
    ok = sum(1 for r in rows if r["status"] == "finished")
    text = findings_markdown(findings, sweep.name, sweep.study, len(rows), ok)
    log_table(client, parent_id, rows, "summary")
    with tempfile.TemporaryDirectory() as tmp:
        for path in make_plots(rows, Path(tmp) / "plots"):
            client.log_artifact(parent_id, str(path), "plots")
        findings_file = Path(tmp) / "findings.md"
        findings_file.write_text(text)
        client.log_artifact(parent_id, str(findings_file))
    for key, value in fit_metrics(rows).items():
        client.log_metric(parent_id, key, value)
    for f in findings:
        client.set_tag(parent_id, f"finding.{f.id}", f.verdict)
    return text


# ---------------------------------------------------------------------------------------------- the sweep

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="sweep YAML (default: %(default)s)")
    parser.add_argument("--shards", default=None, help="override data.shards of every run")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite ./mlflow.db)")
    parser.add_argument("--storage-path", default=None, help="Ray Train storage path (default: ~/ray_results)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--new", action="store_true", help="start a new parent run instead of resuming")
    parser.add_argument("--max-concurrent", type=int, default=0,
                        help="most configs training at once (default 0: as many as the cluster has room for)")
    return parser.parse_args(argv)


def open_parent(client: MlflowClient, experiment_id: str, sweep: Sweep, tags: dict[str, str], new: bool) -> tuple[str, bool]:
    """(parent run id, resumed?): the sweep's unfinished parent run, or a new one."""
    parent_id = None if new else find_parent(client, experiment_id, sweep.name)
    if parent_id is not None:
        client.update_run(parent_id, status="RUNNING")
        for key, value in tags.items():
            client.set_tag(parent_id, key, value)  # the commit of this attempt
        return parent_id, True
    parent_id = create_run(client, experiment_id, sweep.name, tags={**tags, "role": "sweep"})
    params = {"config_file": sweep.source, "num_configs": len(sweep.configs), "study": sweep.study or "-"}
    params.update({f"axis.{k}": ",".join(map(str, v)) for k, v in sweep.axes.items()})
    from workflows.tracking import log_params

    log_params(client, parent_id, params)
    return parent_id, False


def start_system_metrics(tracking_uri: str, run_id: str):
    """MLflow's CPU/memory(/GPU) sampler on the driver, logged to the parent run; None if unavailable."""
    try:
        from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

        monitor = SystemMetricsMonitor(run_id, sampling_interval=10, resume_logging=True, tracking_uri=tracking_uri)
        monitor.start()
        return monitor
    except Exception as err:  # noqa: BLE001 - optional: psutil missing, etc.
        print(f"note: no system metrics on the parent run ({err})", flush=True)
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {"data": {"shards": absolute_location(args.shards)}} if args.shards else None
    try:
        sweep = load_sweep(args.config, overrides)
        plans = plan_sweep(sweep, args.dry_run)
    except (ConfigError, ValueError, OSError) as err:  # a bad config fails before any work
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_plan(sweep, plans), flush=True)
    if args.dry_run:
        return 0

    tracking_uri, experiment_id = prepare_tracking(args.tracking_uri, sweep.experiment)
    client = MlflowClient(tracking_uri)
    tags = {"sweep": sweep.name, "study": sweep.study or "-", "git_commit": git_commit()}
    parent_id, resumed = open_parent(client, experiment_id, sweep, tags, args.new)
    verb = "resuming" if resumed else "started"
    print(f"sweep '{sweep.name}': {verb} MLflow parent run {parent_id}", flush=True)
    monitor = start_system_metrics(tracking_uri, parent_id)

    connect_ray()
    start = time.perf_counter()
    runner = SweepRunner(
        client, experiment_id, parent_id, run_training,
        train_kwargs={"tracking_uri": tracking_uri, "experiment_id": experiment_id,
                      "tags": {**tags, "role": "config"}, "storage_path": args.storage_path},
        max_concurrent=args.max_concurrent,
        log=lambda message: print(message, flush=True),
    )
    outcomes: list[Outcome] = runner.run(plans)
    rows = [summary_row(o.plan, o.result, o.error) for o in outcomes]
    findings = publish_results(client, parent_id, sweep, rows)
    client.log_metric(parent_id, "sweep_wall_time_s", time.perf_counter() - start)
    if monitor is not None:
        monitor.finish()
    failed = sum(1 for r in rows if r["status"] != "finished")
    client.set_terminated(parent_id, status="FAILED" if failed else "FINISHED")

    shown = ["config", "variant", "p", "L", "c", "E", "params_M", "GMACs", "PSNR", "SSIM", "LPIPS", "rFID",
             "wall_s", "status", "note"]
    table = rows_to_markdown([{k: r[k] for k in shown} for r in rows])
    print(f"\nSweep '{sweep.name}' summary\n{table}\n{findings}", flush=True)
    print(f"MLflow store: {tracking_uri} (experiment '{sweep.experiment}', parent run {parent_id})")
    print(f"Open the dashboard: {dashboard_command(tracking_uri)}")
    if failed:
        print(f"{failed} config(s) failed; re-run the same command to retry them (finished ones are skipped)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""Run a scaling sweep: one MLflow parent run for the sweep, one child run per config, a summary table.

    python workflows/scale_sweep.py --config workflows/configs/smoke.yaml
    ray job submit --working-dir . -- python workflows/scale_sweep.py --config workflows/configs/smoke.yaml \
        --shards /abs/path/to/shards --tracking-uri sqlite:////abs/path/mlflow.db

Plain `python` starts a local Ray; under `ray job submit` it joins the job's cluster (RAY_ADDRESS).
Every config is validated before anything runs; a child that fails is recorded as failed and the
sweep goes on with the others (the exit code is then 1).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflows.cluster import connect_ray
from workflows.config import ConfigError
from workflows.report import rows_to_markdown
from workflows.sweep_config import load_sweep
from workflows.tracking import (
    MlflowClient,
    create_run,
    dashboard_command,
    log_params,
    log_table,
    prepare_tracking,
)
from workflows.train import RunPlan, plan_run, run_training

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "smoke.yaml"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10,
            cwd=Path(__file__).resolve().parent,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def summary_row(plan: RunPlan, result: dict[str, Any] | None, error: str | None = None) -> dict[str, Any]:
    metrics = (result or {}).get("metrics", {})
    s = plan.stats
    return {
        "config": plan.config.name,
        "variant": plan.config.model.variant,
        "E": s["E"],
        "L": s["tokens"],
        "c": s["channels"],
        "params_M": round(s["params"] / 1e6, 3),
        "GMACs": round(s["gmacs"], 4),
        "PSNR": metrics.get("eval_psnr"),
        "SSIM": metrics.get("eval_ssim"),
        "wall_s": round(result["wall_time_s"], 1) if result else None,
        "status": "failed: " + error if error else "finished",
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="sweep YAML (default: %(default)s)")
    parser.add_argument("--shards", default=None, help="override data.shards of every run")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite ./mlflow.db)")
    parser.add_argument("--storage-path", default=None, help="Ray Train storage path (default: ~/ray_results)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    overrides = {"data": {"shards": str(Path(args.shards).resolve())}} if args.shards else None
    try:
        sweep = load_sweep(args.config, overrides)
        plans = [plan_run(config) for config in sweep.configs]
    except (ConfigError, ValueError, OSError) as err:  # a bad config fails before any work
        print(f"error: {err}", file=sys.stderr)
        return 2

    tracking_uri, experiment_id = prepare_tracking(args.tracking_uri, sweep.experiment)
    client = MlflowClient(tracking_uri)
    tags = {"sweep": sweep.name, "git_commit": git_commit()}
    parent_id = create_run(client, experiment_id, sweep.name, tags={**tags, "role": "sweep"})
    log_params(client, parent_id, {"config_file": sweep.source, "num_configs": len(plans)})
    print(f"sweep '{sweep.name}': {len(plans)} configs, MLflow parent run {parent_id}", flush=True)

    connect_ray()
    rows = []
    for plan in plans:
        print(f"[{plan.config.name}] E={plan.stats['E']} variant={plan.config.model.variant} training...", flush=True)
        try:
            result = run_training(
                plan, tracking_uri, experiment_id, parent_run_id=parent_id,
                tags={**tags, "role": "config"}, storage_path=args.storage_path,
            )
            rows.append(summary_row(plan, result))
        except Exception as err:  # one failed child must not stop the others
            message = (str(err).strip().splitlines() or [type(err).__name__])[-1][:120]
            rows.append(summary_row(plan, None, error=message))
        print(f"[{plan.config.name}] {rows[-1]['status']}", flush=True)

    table = rows_to_markdown(rows)
    log_table(client, parent_id, rows, "summary")
    failed = sum(1 for r in rows if r["status"] != "finished")
    client.set_terminated(parent_id, status="FAILED" if failed else "FINISHED")
    print(f"\nSweep '{sweep.name}' summary\n{table}")
    print(f"MLflow store: {tracking_uri} (experiment '{sweep.experiment}', parent run {parent_id})")
    print(f"Open the dashboard: {dashboard_command(tracking_uri)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

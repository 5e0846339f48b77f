"""Train one ViTok config: Ray Train `TorchTrainer` workers running a DeepSpeed ZeRO engine, data from the
tubelet shards through Ray Data's streaming split, tracked in one MLflow run written by rank 0.

    python workflows/train.py --config workflows/configs/smoke.yaml --run c16

trains one run of a sweep file on its own (a top-level MLflow run, no parent); `scale_sweep.py` trains
them all under a parent run. Re-running the same command resumes an unfinished run from its last
checkpoint, and skips a finished one. Bad input (a flag, the sweep file, the run, the shards, an unwritable
--storage, a tracking store that cannot be written or reached) exits 2 with one line on stderr, before any work.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray

from data_prep.cli import OneLineParser, unwritable
from data_prep.ray_session import connect_ray
from workflows.config import ConfigError, TrainConfig, absolute_location
from workflows.runs.room import ClusterTooSmall, check_cluster_can_hold
from workflows.runtime.console import configure_console, say
from workflows.runtime.paths import REGISTRY_EXPORTS
from workflows.runtime.tracking_store import check_tracking_store, dashboard_lines, resolve_tracking_uri
from workflows.sweeps.sweep_file import load_sweep
from workflows.tracking import export_location, git_commit, prepare_tracking, tracking_client
from workflows.training.plan import plan_run
from workflows.training.spec import TokenizerSpec, run_training


def fetched_init_from(config: TrainConfig, tracking_uri: str) -> TrainConfig:
    """`config` with its registry `train.init_from` (runs:/, models:/) replaced by where the export can be
    loaded from: s3:// as it is, else a local copy under work/registry_exports."""
    reference = config.train.init_from
    try:
        location = export_location(tracking_client(tracking_uri, registry=True), reference, REGISTRY_EXPORTS)
    except (LookupError, ValueError) as err:
        raise ConfigError(f"train.init_from {reference}: {err}") from None
    return dataclasses.replace(config, train=dataclasses.replace(config.train, init_from=location))


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="workflows/train.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--config", default="workflows/configs/smoke.yaml", help="sweep YAML file")
    parser.add_argument("--run", required=True, help="name of the run in the sweep file to train")
    parser.add_argument("--shards", default=None, help="override data.shards")
    parser.add_argument("--init-from", default=None,
                        help="override train.init_from: the exported tokenizer to fine-tune (a folder, s3://, "
                             "runs:/<run id>/model, models:/<name>/<version> or models:/<name>@<alias>)")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite ./mlflow.db)")
    parser.add_argument("--storage", "--storage-path", dest="storage", default=None,
                        help="Ray Train storage for checkpoints: a folder, a path all nodes share, or s3:// "
                             "(default: work/ray_results)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's, DeepSpeed's and the workers' logs")
    args = parser.parse_args(argv)
    configure_console(args.verbose)
    overrides: dict = {}
    if args.shards:
        overrides["data"] = {"shards": absolute_location(args.shards)}
    if args.init_from:
        overrides["train"] = {"init_from": args.init_from}
    try:
        sweep = load_sweep(args.config, overrides or None)
        matches = [c for c in sweep.configs if c.name == args.run]
        if not matches:
            names = ", ".join(c.name for c in sweep.configs)
            raise ConfigError(f"{args.config}: no run named '{args.run}' (runs: {names})")
        why = args.storage and unwritable(args.storage)
        if why:
            raise ConfigError(f"--storage {args.storage}: {why}")
        tracking_uri = resolve_tracking_uri(args.tracking_uri)
        config = matches[0]
        from_registry = config.train.init_from.startswith(("runs:/", "models:/"))
        check_tracking_store(tracking_uri, must_exist=from_registry)
        if from_registry:
            config = fetched_init_from(config, tracking_uri)
        plan = plan_run(config, where=args.config)
    except (ConfigError, LookupError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    connect_ray(args.verbose)
    try:
        check_cluster_can_hold(TokenizerSpec(plan), ray.cluster_resources())
    except ClusterTooSmall as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tracking_uri, experiment_id = prepare_tracking(tracking_uri, sweep.experiment)
    say(f"[{plan.name}] training {plan.config.model.variant}, E = {plan.stats.E}, {plan.config.train.steps} steps")
    result = run_training(plan, tracking_uri, experiment_id, tags={"git_commit": git_commit()},
                          storage=args.storage, verbose=args.verbose)
    if result.skipped:
        say(f"[{plan.name}] already finished in run {result.run_id}: skipped")
    say(json.dumps({"run_id": result.run_id, "export": result.export,
                    **{k: v for k, v in result.metrics.items() if k.startswith("eval_")}}))
    for line in dashboard_lines(tracking_uri, experiment_id):
        say(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

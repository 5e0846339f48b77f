"""What `workflows/train.py` runs once its input has passed the checks there: the run's plan (with a registry
`train.init_from` fetched), the room check on the cluster, then the run under Ray Train.

Apart from the entry point so that its imports (torch, Ray, MLflow: seconds) are paid only by a run that will
start, not by a command that is rejected.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import ray

from data_prep.ray_session import connect_ray
from workflows.config import ConfigError, TrainConfig
from workflows.runs.room import ClusterTooSmall, check_cluster_can_hold
from workflows.runtime.console import say
from workflows.runtime.paths import REGISTRY_EXPORTS
from workflows.runtime.tracking_store import dashboard_lines, is_registry_reference
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


def train_one(args: argparse.Namespace, config: TrainConfig, experiment: str, tracking_uri: str) -> int:
    """Trains `config` in MLflow's `experiment` (the config, --storage and the store at `tracking_uri` already
    checked); returns the exit code: 2 for a config the plan or the cluster refuses."""
    try:
        if is_registry_reference(config.train.init_from):
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
    tracking_uri, experiment_id = prepare_tracking(tracking_uri, experiment)
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

"""What `workflows/train_generator.py` runs once its input has passed the checks there: the generator's plan
(the tokenizer, its latents and the held-out reals looked up), the room check on the cluster, then the run
under Ray Train.

Apart from the entry point so that its imports (torch, Ray, MLflow: seconds) are paid only by a run that will
start, not by a command that is rejected.
"""

from __future__ import annotations

import argparse
import json
import sys

import ray

from data_prep.ray_session import connect_ray
from workflows.config import ConfigError, GenerationConfig
from workflows.generation.errors import GenerationError
from workflows.generation.plan import plan_generation
from workflows.generation.spec import check_workers_fit, run_generator
from workflows.runs.room import ClusterTooSmall
from workflows.runtime.console import say
from workflows.runtime.tracking_store import dashboard_lines
from workflows.tracking import git_commit, prepare_tracking


def train_generator(args: argparse.Namespace, config: GenerationConfig, tracking_uri: str) -> int:
    """Plans and trains the generator `config` (already checked, as are --storage and the store at
    `tracking_uri`); returns the exit code: 2 for a plan or a cluster that refuses it."""
    try:
        plan, tokenizer_files = plan_generation(config, args.latents, tracking_uri, tokenizer_run=args.tokenizer_run,
                                                tokenizer=args.tokenizer, parent_run=args.parent_run,
                                                shards=args.shards)  # fmt: skip
        connect_ray(args.verbose)
        check_workers_fit(config, ray.cluster_resources(), f"generator '{plan.name}'", plan.train_streams)
    except (ConfigError, ValueError, GenerationError, ClusterTooSmall) as err:
        print(f"train_generator: error: {err}", file=sys.stderr)
        return 2
    experiment_id = plan.experiment_id or prepare_tracking(tracking_uri, args.experiment)[1]
    d = plan.dit_stats
    say(f"[{plan.name}] training {plan.dit_config.name} ({d.params / 1e6:.2f}M params, {d.tokens} tokens) on "
        f"{plan.train_rows} {config.media_type} latents of {plan.tokenizer['variant']}, {config.steps} steps, "
        f"{'class-conditional' if plan.conditional else 'unconditional'}")  # fmt: skip
    result = run_generator(plan, tokenizer_files, tracking_uri, experiment_id, tags={"git_commit": git_commit()},
                           storage=args.storage, verbose=args.verbose)  # fmt: skip
    if result.skipped:
        say(f"[{plan.name}] already finished in run {result.run_id}: skipped")
    say(json.dumps({"run_id": result.run_id, "parent_run_id": plan.parent_run_id, "export": result.export,
                    **{k: v for k, v in result.metrics.items() if k.startswith("gen_")}}))  # fmt: skip
    for line in dashboard_lines(tracking_uri, experiment_id):
        say(line)
    return 0

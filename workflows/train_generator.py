"""Train the generation probe of one tokenizer: a DiT with flow matching on its cached latents (Ray Train, DDP),
then N samples decoded by the tokenizer and scored against held-out reals, in an MLflow run that is a child of
the tokenizer's run.

    python workflows/train_generator.py --latents work/latents --tokenizer-run <RUN_ID> --config gen.yaml
    python -m workflows.train_generator --latents s3://bucket/latents --tokenizer models:/vitok-e-sweep-tiny@best \
        --parent-run <RUN_ID>

--latents is workflows/cache_latents.py's output (latent shards, manifest.json, latent_stats.json).
--tokenizer-run names the tokenizer by its MLflow run (its `model/` export), which also becomes the parent;
--tokenizer takes any reference cache_latents takes, with --parent-run as the parent (none: a top-level run in
--experiment). The tokenizer must be the one whose weights made the latents. --config is a YAML file holding the
generation settings (workflows.config.GenerationConfig), at its top level or under a `generation:` key; without
it the defaults apply. --shards (default: the tubelet shards the latents were made from) supplies the held-out
reals. Metrics: gen_swd always; gen_fid / gen_fvd when weights.inception / weights.i3d are configured.

Re-running the same command resumes an unfinished run from its last checkpoint and skips a finished one.
Exit codes: 0 done; 2 bad input (one line on stderr, before any work); 1 failed while running.
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
import yaml

from data_prep.cli import OneLineParser, unwritable
from data_prep.ray_session import connect_ray
from workflows.config import ConfigError, GenerationConfig
from workflows.generation.errors import GenerationError
from workflows.generation.plan import plan_generation
from workflows.generation.spec import check_workers_fit, run_generator
from workflows.runs.room import ClusterTooSmall
from workflows.runtime.console import configure_console, say
from workflows.runtime.tracking_store import check_tracking_store, dashboard_lines, resolve_tracking_uri
from workflows.tracking import git_commit, prepare_tracking

DEFAULT_EXPERIMENT = "vitok-generation"  # where a generator without a parent run goes


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="workflows/train_generator.py", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--latents", required=True,
                   help="latent cache (workflows/cache_latents.py's output): folder or s3://")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--tokenizer-run", help="MLflow run id of the tokenizer (its model/ export; the parent run)")
    which.add_argument("--tokenizer", help="tokenizer reference: folder, s3://, runs:/<run_id>/model, "
                       "models:/<name>/<version> or models:/<name>@<alias>")  # fmt: skip
    p.add_argument("--parent-run", default=None, help="parent MLflow run id (default: the --tokenizer-run)")
    p.add_argument("--config", default=None, help="YAML with the generation settings (top level or `generation:`)")
    p.add_argument("--name", default=None, help="run name (overrides the config's `name`)")
    p.add_argument("--shards", default=None, help="tubelet shards for the held-out reals (default: the ones the "
                   "latents were made from)")  # fmt: skip
    p.add_argument("--experiment", default=DEFAULT_EXPERIMENT,
                   help="MLflow experiment of a run without a parent (default: %(default)s); a child run lives in "
                   "its parent's")  # fmt: skip
    p.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, else "
                   "sqlite ./mlflow.db)")  # fmt: skip
    p.add_argument("--storage", default=None, help="Ray Train storage for checkpoints: a folder, a path all nodes "
                   "share, or s3:// (default: work/ray_results)")  # fmt: skip
    p.add_argument("--verbose", action="store_true", help="show Ray's and the workers' logs")
    return p.parse_args(argv)


def load_config(path: str | None, name: str | None) -> GenerationConfig:
    """The YAML's generation settings (its `generation:` block when it has one), the run name overridden."""
    raw: dict = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{path}: unreadable ({' '.join(str(err).split())[:300]})") from None
        raw = loaded.get("generation", loaded) if isinstance(loaded, dict) else loaded
    config = GenerationConfig.from_dict(raw if raw is not None else {}, where=f"{path}: generation" if path
                                        else "generation")
    if name is not None:
        config = dataclasses.replace(config, name=name)
        config.validate(where="--name")
    return config


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_console(args.verbose)
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    try:
        config = load_config(args.config, args.name)
        why = args.storage and unwritable(args.storage)
        if why:
            raise ConfigError(f"--storage {args.storage}: {why}")
        # Runs named by id or reference are looked up in this store, so it must exist (a lookup would create it).
        looks_up = bool(args.tokenizer_run or args.parent_run) or args.tokenizer.startswith(("runs:/", "models:/"))
        check_tracking_store(tracking_uri, must_exist=looks_up)
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


if __name__ == "__main__":
    sys.exit(main())

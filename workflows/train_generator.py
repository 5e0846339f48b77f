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
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml

from data_prep.cli import OneLineParser, unwritable
from workflows.config import ConfigError, GenerationConfig
from workflows.runtime.console import configure_console
from workflows.runtime.tracking_store import check_tracking_store, is_registry_reference, resolve_tracking_uri

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
        looks_up = bool(args.tokenizer_run or args.parent_run) or is_registry_reference(args.tokenizer)
        check_tracking_store(tracking_uri, must_exist=looks_up)
    except (ConfigError, ValueError) as err:
        print(f"train_generator: error: {err}", file=sys.stderr)
        return 2
    # The generator's own modules (torch, Ray, MLflow: seconds of imports) once the input has passed the checks
    # above, so that a bad flag, config or output is answered at once.
    from workflows.generation.command import train_generator

    return train_generator(args, config, tracking_uri)


if __name__ == "__main__":
    sys.exit(main())

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
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.cli import OneLineParser, unwritable
from workflows.config import ConfigError, absolute_location
from workflows.runtime.console import configure_console
from workflows.runtime.tracking_store import check_tracking_store, is_registry_reference, resolve_tracking_uri
from workflows.sweeps.sweep_file import load_sweep


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
        check_tracking_store(tracking_uri, must_exist=is_registry_reference(config.train.init_from))
    except (ConfigError, LookupError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    # The run's own modules (torch, Ray, MLflow: seconds of imports) once the input has passed the checks above,
    # so that a bad flag, sweep file or output is answered at once.
    from workflows.training.command import train_one

    return train_one(args, config, sweep.experiment, tracking_uri)


if __name__ == "__main__":
    sys.exit(main())

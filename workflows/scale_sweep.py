"""Run a scaling sweep: one MLflow parent run for the sweep, one child run per config, then the report.

    python workflows/scale_sweep.py --config workflows/configs/e_sweep_tiny.yaml --dry-run
    python workflows/scale_sweep.py --config workflows/configs/e_sweep_tiny.yaml --shards work/shards
    ray job submit --working-dir . -- python workflows/scale_sweep.py --config workflows/configs/e_sweep_paper.yaml \
        --shards s3://bucket/shards-256 --tracking-uri http://mlflow:5000 --storage s3://bucket/ray-results

Plain `python` starts a local Ray; under `ray job submit` it joins the job's cluster (RAY_ADDRESS).
Before anything runs, every argument and config is validated and the plan is printed (params, GMACs/sample,
tokens L, c, E, the estimated FLOPs of the training and of the generation probes, and with --gpu-peak the
estimated wall time); `--dry-run` stops there.
Re-running the same sweep (same `sweep:` name and experiment) resumes it: finished children are skipped,
unfinished ones resume from their checkpoints; `--new` starts a fresh parent run instead.
A child that fails is recorded as failed and the others go on (the exit code is then 1).
On the parent run: summary.csv/.md, plots/*.png (metrics vs log E with fits, vs encoder and decoder size,
PSNR vs rFID or LPIPS), findings.md, and the fits as metrics.
With a `generation:` block in the sweep file, each finished tokenizer also gets its generation probe (latents
cached under --latents, a DiT trained on them, samples scored) in a generator run under its own run, and the
report judges generation against E beside reconstruction.
Every exported tokenizer is registered as a version of the model `vitok-<sweep>` (tagged with its config,
variant, E and eval metrics), and the alias `best` points at the best by eval_psnr (--alias, --best-by), so
`models:/vitok-<sweep>@best` names it; `--register-only` does just that for the sweep's finished configs
(also those of earlier runs of it), training nothing and reading no shards.
Bad input (a flag, the sweep file, the shards, an unwritable --storage or --latents, a tracking store that
cannot be written or reached) exits 2 with one line on stderr, before any work.
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
from workflows.runtime.eval_ranking import RANKING_METRICS
from workflows.runtime.tracking_store import check_tracking_store, resolve_tracking_uri
from workflows.sweeps.sweep_file import load_sweep

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "e_sweep_tiny.yaml"


def _at_least(low: float, kind: type = int):
    """An argparse type: a number of `kind` >= `low`, else a one-line error naming the bound."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got "
                                             f"'{text}'") from None  # fmt: skip
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low:g}, got {text}")
        return value
    return parse


def _positive(text: str) -> float:
    value = _at_least(0.0, float)(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _at_least(0.0, float)(text)
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {text}")
    return value


def parse_args(argv: list[str] | None, prog: str = "workflows/scale_sweep.py") -> argparse.Namespace:
    """The sweep's arguments; `prog` names the command in a rejection (the demo passes its own options here)."""
    parser = OneLineParser(prog=prog, description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), help="sweep YAML (default: %(default)s)")
    parser.add_argument("--shards", default=None, help="override data.shards of every run")
    parser.add_argument("--tracking-uri", default=None, help="MLflow tracking URI (default: sqlite ./mlflow.db)")
    parser.add_argument("--storage", "--storage-path", dest="storage", default=None,
                        help="Ray Train storage for checkpoints: a folder, a path all nodes share, or s3:// "
                             "(default: work/ray_results)")
    parser.add_argument("--latents", default=None,
                        help="where the generation probe caches latents: a folder every node sees, or s3:// "
                             "(default: work/sweep_latents)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--new", action="store_true", help="start a new parent run instead of resuming")
    parser.add_argument("--max-concurrent", type=_at_least(0), default=0,
                        help="most configs training at once (default 0: as many as the cluster has room for)")
    parser.add_argument("--alias", default="best",
                        help="registry alias set on the best registered tokenizer (default: %(default)s; '' for none)")
    parser.add_argument("--best-by", default="eval_psnr", choices=RANKING_METRICS,
                        help="eval metric that picks it: highest wins, lowest for eval_lpips, eval_rfid and "
                             "eval_rfvd (default: %(default)s)")
    parser.add_argument("--register-only", action="store_true",
                        help="only register the sweep's finished tokenizers and point --alias; train nothing")
    parser.add_argument("--gpus", type=_at_least(1), default=1,
                        help="for the plan's wall-time estimate: accelerators the sweep runs on (default: %(default)s)")
    parser.add_argument("--gpu-peak", type=_positive, default=None, metavar="TFLOPS",
                        help="for the plan's wall-time estimate: each accelerator's peak TFLOP/s at the runs' "
                             "precision, e.g. 989 for an H100's dense bf16 (default: no estimate)")
    parser.add_argument("--mfu", type=_fraction, default=0.2,
                        help="for the plan's wall-time estimate: the share of the peak the runs reach "
                             "(default: %(default)s, about what S-B/16 reaches on one H200)")
    parser.add_argument("--verbose", action="store_true", help="show Ray's, DeepSpeed's and the workers' logs")
    return parser.parse_args(argv)


def check_outputs(args: argparse.Namespace, probed: bool) -> str:
    """The resolved tracking URI, once --storage (and --latents for a probed sweep) are writable and the
    tracking store can be written or reached; ConfigError (ValueError for the store) naming the first that is
    not. Creates nothing."""
    places = [("--storage", args.storage)] + ([("--latents", args.latents)] if probed else [])
    for flag, location in places:
        why = location and unwritable(location)
        if why:
            raise ConfigError(f"{flag} {location}: {why}")
    tracking_uri = resolve_tracking_uri(args.tracking_uri)
    check_tracking_store(tracking_uri, must_exist=args.register_only)  # nothing to register in a new store
    return tracking_uri


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_console(args.verbose)
    overrides = {"data": {"shards": absolute_location(args.shards)}} if args.shards else None
    try:
        sweep = load_sweep(args.config, overrides)
        if not args.register_only:  # the registry alone reads no shards
            if args.shards and "://" not in args.shards and not Path(args.shards).is_dir():
                raise ConfigError(f"--shards {args.shards}: no such folder")  # a dry run would plan without them
        writes = args.register_only or not args.dry_run
        tracking_uri = check_outputs(args, probed=sweep.probed and not args.register_only) if writes else None
    except (ConfigError, LookupError, ValueError, OSError) as err:  # bad input fails before any work
        print(f"error: {err}", file=sys.stderr)
        return 2
    # The sweep's own modules (torch, Ray, MLflow: seconds of imports) once the input has passed the checks
    # above, so that a bad flag, sweep file or output is answered at once.
    from workflows.sweeps.command import run_sweep

    return run_sweep(args, sweep, tracking_uri)


if __name__ == "__main__":
    sys.exit(main())

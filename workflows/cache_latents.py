"""Cache a tokenizer's latents: tubelet shards -> latent shards + manifest.json + latent_stats.json.

    python workflows/cache_latents.py --shards work/shards --tokenizer models:/vitok-e-sweep-tiny@best \
        --output work/latents
    python -m workflows.cache_latents --shards s3://bucket/shards --tokenizer runs:/<run_id>/model \
        --output s3://bucket/latents --dtype bfloat16 --incremental

--tokenizer is a folder (model.safetensors + config.json, as the trainer exports), an s3:// URI of one,
runs:/<run_id>/model (a training run's export), models:/<name>/<version> or models:/<name>@<alias> (a
registered version; a sweep registers its tokenizers as `vitok-<sweep>`, alias `best` by eval_psnr).
Plain `python` starts a local Ray; under `ray job submit` it joins the job's cluster (RAY_ADDRESS), with
one tokenizer actor per GPU there. Rerunning into the same output encodes only what is new and writes
nothing when nothing is. Exit codes: 0 done; 2 bad input (one line on stderr, before any work); 1 failed
while running. At the end it prints the counts and the statistics, then one JSON line with the summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from data_prep.cli import OneLineParser, unwritable
from data_prep.errors import DataPrepError
from workflows.latents.errors import LatentsError
from workflows.latents.inputs import read_tubelet_input
from workflows.latents.params import DTYPES, MEDIA_TYPES, CacheOptions
from workflows.runtime.console import configure_console, say
from workflows.runtime.precision import PRECISIONS

DEFAULTS = CacheOptions()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = OneLineParser(prog="workflows/cache_latents.py", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--shards", required=True, help="tubelet shards (data prep's output): folder or s3://")
    p.add_argument("--tokenizer", required=True, help="folder, s3://, runs:/<run_id>/model, models:/<name>/<version> "
                   "or models:/<name>@<alias>")  # fmt: skip
    p.add_argument("--output", required=True, help="output folder (created if missing) or s3://bucket/prefix")
    p.add_argument("--dtype", choices=DTYPES, default=DEFAULTS.dtype,
                   help="storage dtype of the latents (default: %(default)s)")
    p.add_argument("--logvar", action="store_true", help="also store the bottleneck's log-variance (latent_logvar)")
    p.add_argument("--precision", choices=PRECISIONS, default=DEFAULTS.precision,
                   help="encoder compute: bf16 autocast, fp32, or auto: bf16 on GPUs and CPUs with native bf16 "
                   "(default: %(default)s)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size,
                   help="tubelets per encoder forward (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=DEFAULTS.concurrency,
                   help="tokenizer actors (default 0: one per GPU on a GPU cluster, else one per usable CPU)")
    p.add_argument("--num-gpus", type=float, default=None,
                   help="GPUs per actor (default: 1 when the cluster has GPUs, else 0)")
    p.add_argument("--media-type", action="append", choices=MEDIA_TYPES, default=[], dest="media_types",
                   help="encode only these tubelets (repeatable; default: every media type the shards have)")
    p.add_argument("--incremental", action="store_true",
                   help="keep the output's units as they are and encode only tubelet shards none of them holds")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow for runs:/ and models:/ (default: MLFLOW_TRACKING_URI, else sqlite ./mlflow.db)")
    p.add_argument("--s3-endpoint-url", default=None, help="S3-compatible endpoint (default: AWS_ENDPOINT_URL)")
    p.add_argument("--s3-region", default=None, help="S3 region (default: AWS_REGION / AWS config)")
    p.add_argument("--verbose", action="store_true", help="show Ray's and the actors' logs")
    return p.parse_args(argv)


def report_lines(summary: dict, seconds: float) -> list[str]:
    """What a person reads at the end: this run's work, the output's counts, the train statistics."""
    totals, stats = summary["totals"], summary["stats"]
    kinds = ", ".join(
        f"{m} {totals['latents_by_media_type'][m]} x {tuple(shape)} (E = {summary['E'][m]})"
        for m, shape in summary["latent_shapes"].items()
    )
    lines = [f"latents in {summary['output']}: {totals['latents']} in {summary['shards']} shards ({kinds}), "
             f"{summary['dtype']}, {totals['train_latents']} train / {totals['val_latents']} val"]  # fmt: skip
    if summary["units_run"]:
        lines.append(f"this run: encoded {summary['units_run']} shards, {summary['latents_run']} latents "
                     f"({summary['precision']}) in {seconds:.1f} s")  # fmt: skip
    elif summary["written"]:
        lines.append("this run: nothing to encode; manifest.json and latent_stats.json rewritten")
    else:
        lines.append("this run: nothing to encode, nothing written (the output was up to date)")
    if stats["mean"] is None:
        lines.append("latent_stats.json: no train latents, so no statistics")
    else:
        lines += [f"train stats over {stats['train_latents']} latents, per channel: mean {_brief(stats['mean'])}",
                  f"  std {_brief(stats['std'])}",
                  f"  shift_factor {stats['shift_factor']:.6g}, scale_factor {stats['scale_factor']:.6g} "
                  "(z' = (z - shift_factor) * scale_factor)"]  # fmt: skip
    return lines


def _brief(values: list[float], shown: int = 8) -> str:
    """The first `shown` values; latent_stats.json has them all."""
    more = f", ... ({len(values)} channels)" if len(values) > shown else ""
    return "[" + ", ".join(f"{v:.4g}" for v in values[:shown]) + more + "]"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_console(args.verbose)
    options = CacheOptions(
        dtype=args.dtype,
        logvar=args.logvar,
        precision=args.precision,
        batch_size=args.batch_size,
        concurrency=args.concurrency,
        num_gpus=args.num_gpus,
        media_types=tuple(args.media_types),
        incremental=args.incremental,
    )
    try:  # what can be checked without torch and Ray Data (seconds of imports); the tokenizer is checked after them
        options.validate()
        read_tubelet_input(args.shards, options, args.s3_endpoint_url, args.s3_region)
        why = unwritable(args.output)
        if why:
            raise LatentsError(f"output {args.output}: {why}")
    except (LatentsError, DataPrepError) as err:
        print(f"cache_latents: error: {err}", file=sys.stderr)
        return 2
    from workflows.latents.pipeline import cache_latents

    start = time.perf_counter()
    try:
        summary = cache_latents(args.shards, args.tokenizer, args.output, options, tracking_uri=args.tracking_uri,
                                s3_endpoint_url=args.s3_endpoint_url, s3_region=args.s3_region,
                                verbose=args.verbose)  # fmt: skip
    except (LatentsError, DataPrepError) as err:
        print(f"cache_latents: error: {err}", file=sys.stderr)
        return 2
    for line in report_lines(summary, time.perf_counter() - start):
        say(line)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The scheduled data-prep job: what a scheduler (RayCronJob, cron, Airflow) calls to keep shards in sync.

    python workflows/data_prep_job.py --input s3://corpus/raw --output s3://prepared/v1 --incremental

Same options as `python -m data_prep run`. Exit codes: 0 when the run completed (quarantined inputs
included: they are data, listed in quarantine.parquet, not a failure of the job); 2 when it could not
start (bad input, output or parameters; one line on stderr); 1 when it failed while running. At the end
it logs a summary and prints it as one JSON line: inputs, tubelets, quarantined by reason, bytes,
throughput.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from data_prep import load_manifest, run
from data_prep.cli import OneLineParser, add_run_arguments, run_kwargs
from data_prep.console import configure_console
from data_prep.errors import DataPrepError
from data_prep.ray_session import connect_ray

log = logging.getLogger("data_prep_job")


def summarize(manifest: dict, seconds: float) -> dict:
    """The job's summary: this run's work and throughput, and the whole output's totals."""
    totals = manifest["totals"]
    return {
        "seconds": round(seconds, 3),
        "this_run": {
            "units": manifest["units_run"],
            "inputs": manifest["inputs_run"],
            "tubelets": manifest["tubelets_run"],
            "frames": manifest["frames_run"],
            "input_bytes": manifest["input_bytes_run"],
            "inputs_per_s": round(manifest["inputs_run"] / seconds, 3),
            "tubelets_per_s": round(manifest["tubelets_run"] / seconds, 3),
            "frames_per_s": round(manifest["frames_run"] / seconds, 3),
            "input_mb_per_s": round(manifest["input_bytes_run"] / seconds / 1e6, 3),
        },
        "output": {
            "inputs_seen": totals["inputs_seen"],
            "inputs_used": totals["inputs_used"],
            "inputs_quarantined": totals["inputs_quarantined"],
            "quarantined_by_reason": manifest["quarantined_by_reason"],
            "tubelets": totals["tubelets"],
            "input_bytes": totals["input_bytes"],
            "shard_bytes": totals["shard_bytes"],
            "shards": len(manifest["shards"]),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="workflows/data_prep_job.py", description=__doc__,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    add_run_arguments(parser)
    parser.add_argument("--verbose", action="store_true", help="show Ray's own logs and the workers' output")
    args = parser.parse_args(argv)
    configure_console(args.verbose)
    if args.verbose:  # otherwise Ray starts when the work first needs it, quiet (the first connect decides)
        connect_ray(verbose=True)
    start = time.perf_counter()
    try:
        run(args.input, args.output, **run_kwargs(args))
        manifest = load_manifest(args.output, args.s3_endpoint_url, args.s3_region)
    except DataPrepError as e:
        print(f"data_prep_job: error: {e}", file=sys.stderr)
        return 2
    except Exception:  # noqa: BLE001 - the scheduler needs an exit code; the traceback goes to the log
        log.exception("data prep failed")
        return 1
    summary = summarize(manifest, time.perf_counter() - start)
    this, out = summary["this_run"], summary["output"]
    log.info(
        "done in %.1fs: %d inputs (%d units) -> %d tubelets, %.2f tubelets/s, %.2f MB/s in; output: %d used, "
        "%d quarantined %s, %d tubelets, %d shard bytes",
        summary["seconds"], this["inputs"], this["units"], this["tubelets"], this["tubelets_per_s"],
        this["input_mb_per_s"], out["inputs_used"], out["inputs_quarantined"], out["quarantined_by_reason"],
        out["tubelets"], out["shard_bytes"],
    )  # fmt: skip
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())

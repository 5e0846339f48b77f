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
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import ray

from data_prep.cli import OneLineParser, unwritable
from data_prep.ray_session import connect_ray
from workflows.config import ConfigError, absolute_location
from workflows.generation.spec import check_workers_fit
from workflows.reports.publish import publish_results
from workflows.reports.tables import rows_to_markdown
from workflows.runs.room import ClusterTooSmall, check_cluster_can_hold
from workflows.runtime.console import configure_console, say
from workflows.runtime.paths import SWEEP_LATENTS
from workflows.runtime.tracking_store import check_tracking_store, dashboard_lines, resolve_tracking_uri
from workflows.sweeps.compute import Hardware
from workflows.sweeps.planning import format_plan, plan_sweep
from workflows.sweeps.probe import GenerationProbe
from workflows.sweeps.runner import SweepRunner
from workflows.sweeps.summary import CONSOLE_COLUMNS, CONSOLE_GENERATION_COLUMNS, summary_row
from workflows.sweeps.sweep_file import load_sweep
from workflows.tracking import (
    CONFIG_ROLE, LOWER_IS_BETTER, ROLE_TAG, MlflowClient, end_run, git_commit, log_metrics, open_parent,
    prepare_tracking, register_exports, registered_model_name, run_artifact_uri, set_alias_to_best,
    start_system_metrics, sweep_exports, tracking_client,
)
from workflows.training.spec import TokenizerSpec, run_training

DEFAULT_CONFIG = Path(__file__).resolve().parent / "configs" / "e_sweep_tiny.yaml"
# The eval metrics every training run logs or may log, which --best-by can rank the registered versions by.
BEST_BY = ("eval_psnr", "eval_ssim", *sorted(LOWER_IS_BETTER))


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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(prog="workflows/scale_sweep.py", description=__doc__,
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
    parser.add_argument("--best-by", default="eval_psnr", choices=BEST_BY,
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


def plan_text(plan: str, full: bool) -> str:
    """The plan as format_plan wrote it, or without its per-config table (the default console: each config's
    own lines and the summary table follow)."""
    return plan if full else "\n".join(line for line in plan.splitlines() if not line.startswith("|"))


def finding_lines(findings_md: str) -> list[str]:
    """One console line per finding ("finding e_sweep: holds") from findings.md's `## <id>: <verdict>`
    sections; the rest (the measured figures and the rules) stays in findings.md."""
    lines = [f"finding {line[3:]}" for line in findings_md.splitlines()
             if line.startswith("## ") and ": " in line]  # fmt: skip
    return lines or ["findings: none of the paper's findings is covered by this sweep"]


def local_path(uri: str) -> str:
    """A file:// URI as the path a shell takes; any other URI unchanged."""
    return uri[len("file://"):] if uri.startswith("file://") else uri


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


def register_tokenizers(client: MlflowClient, experiment_id: str, sweep: str, alias: str, best_by: str) -> None:
    """Registers every finished config's export as a version of `vitok-<sweep>` (once) and points `alias`
    at the best by `best_by`; LookupError when no version has that metric (the sweep's results stand)."""
    name = registered_model_name(sweep)
    versions = register_exports(client, sweep, sweep_exports(client, experiment_id, sweep))
    say(f"registry: {len(versions)} tokenizers are versions of {name}")
    if alias:
        best = set_alias_to_best(client, name, alias, best_by)
        say(f"registry: {name}@{alias} -> version {best.version} (config {best.tags.get('config')}, {best_by} "
            f"{float(best.tags[best_by]):.4g}); cache its latents with --tokenizer models:/{name}@{alias}")


def _probe(client: MlflowClient, tracking_uri: str, experiment_id: str, sweep, args: argparse.Namespace,
           tags: dict[str, str]):  # fmt: skip
    """The runner's probe callable when the sweep has a `generation:` block, else None."""
    if not sweep.probed:
        return None
    probe = GenerationProbe(client, tracking_uri, experiment_id, sweep.name,
                            absolute_location(args.latents or str(SWEEP_LATENTS)), args.storage, tags,
                            args.verbose)  # fmt: skip
    return lambda plan, result: probe.run(plan, sweep.generation_for(plan.config), result)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    configure_console(args.verbose)
    overrides = {"data": {"shards": absolute_location(args.shards)}} if args.shards else None
    hardware = Hardware(args.gpus, args.gpu_peak, args.mfu) if args.gpu_peak else None
    try:
        sweep = load_sweep(args.config, overrides)
        if args.register_only:  # the registry only: no shards read, no Ray, nothing trained
            tracking_uri = check_outputs(args, probed=False)
            tracking_uri, experiment_id = prepare_tracking(tracking_uri, sweep.experiment)
            register_tokenizers(tracking_client(tracking_uri), experiment_id, sweep.name, args.alias, args.best_by)
            return 0
        if args.shards and "://" not in args.shards and not Path(args.shards).is_dir():
            raise ConfigError(f"--shards {args.shards}: no such folder")  # a dry run would plan without them
        plans = plan_sweep(sweep, args.dry_run)
        plan_report = format_plan(sweep, plans, hardware)
        if not args.dry_run:
            tracking_uri = check_outputs(args, sweep.probed)
    except (ConfigError, LookupError, ValueError, OSError) as err:  # bad input fails before any work
        print(f"error: {err}", file=sys.stderr)
        return 2
    say(plan_text(plan_report, full=args.dry_run or args.verbose))
    if args.dry_run:
        return 0

    connect_ray(args.verbose)
    try:  # every config must fit the cluster on its own, or none starts
        cluster = ray.cluster_resources()
        for plan in plans:
            check_cluster_can_hold(TokenizerSpec(plan), cluster)
            probe = sweep.generation_for(plan.config)
            if probe is not None:
                check_workers_fit(probe, cluster, f"the generation probe of '{plan.config.name}'")
    except ClusterTooSmall as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    tracking_uri, experiment_id = prepare_tracking(tracking_uri, sweep.experiment)
    client = tracking_client(tracking_uri)
    tags = {"sweep": sweep.name, "study": sweep.study or "-", "git_commit": git_commit()}
    params = {"config_file": sweep.source, "num_configs": len(sweep.configs), "study": sweep.study or "-",
              **{f"axis.{k}": ",".join(map(str, v)) for k, v in sweep.axes.items()}}
    parent_id, resumed = open_parent(client, experiment_id, sweep.name, params, tags, args.new)
    say(f"sweep '{sweep.name}': {'resuming' if resumed else 'started'} MLflow parent run {parent_id}")
    monitor = start_system_metrics(tracking_uri, parent_id, interval_s=10)
    start = time.perf_counter()
    runner = SweepRunner(
        client, experiment_id, parent_id, run_training,
        train_kwargs={"tracking_uri": tracking_uri, "experiment_id": experiment_id,
                      "tags": {**tags, ROLE_TAG: CONFIG_ROLE}, "storage": args.storage, "verbose": args.verbose},
        max_concurrent=args.max_concurrent,
        probe=_probe(client, tracking_uri, experiment_id, sweep, args, tags),
    )
    outcomes = runner.run(plans)
    probed = sweep.probed
    rows = [summary_row(o.plan, o.result, o.error, probed=probed, generation=o.generation,
                        generation_error=o.generation_error,
                        generator=sweep.generation_for(o.plan.config).model if probed else "") for o in outcomes]
    findings = publish_results(client, parent_id, sweep.name, sweep.study, rows)
    try:
        register_tokenizers(client, experiment_id, sweep.name, args.alias, args.best_by)
    except LookupError as err:  # e.g. every config failed: no version to point the alias at
        say(f"registry: alias '{args.alias}' not set: {err}")
    log_metrics(client, parent_id, {"sweep_wall_time_s": time.perf_counter() - start})
    if monitor is not None:
        monitor.finish()
    # A failed generation probe fails the sweep too: the parent stays resumable, and a rerun redoes the probe.
    failed = sum(1 for r in rows if not r.finished or (r.probed and r.gen_status != "finished"))
    end_run(client, parent_id, failed=bool(failed))

    columns = CONSOLE_COLUMNS + (CONSOLE_GENERATION_COLUMNS if probed else [])
    table = rows_to_markdown([{k: r.columns()[k] for k in columns} for r in rows])
    say(f"\nSweep '{sweep.name}' summary\n{table}")
    say(findings if args.verbose else "\n".join(finding_lines(findings)))
    say(f"findings.md: {local_path(run_artifact_uri(client, parent_id, 'findings.md'))}")
    say(f"MLflow store: {tracking_uri} (experiment '{sweep.experiment}', parent run {parent_id})")
    for line in dashboard_lines(tracking_uri, experiment_id):
        say(line)
    if failed:
        say(f"{failed} config(s) or their generation probes failed; re-run the same command to retry them "
            "(finished ones are skipped)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

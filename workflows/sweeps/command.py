"""What `workflows/scale_sweep.py` runs once its input has passed the checks there: the plan, the configs
under Ray Train, the report on the parent run and the registry (or only the registry, with --register-only).

Apart from the entry point so that its imports (torch, Ray, MLflow: seconds) are paid only by a sweep that
will run, not by a command that is rejected.
"""

from __future__ import annotations

import argparse
import sys
import time

import ray

from data_prep.ray_session import connect_ray
from workflows.config import ConfigError, absolute_location
from workflows.generation.spec import check_workers_fit
from workflows.reports.publish import publish_results
from workflows.reports.tables import rows_to_markdown
from workflows.runs.room import ClusterTooSmall, check_cluster_can_hold
from workflows.runtime.console import say
from workflows.runtime.paths import SWEEP_LATENTS
from workflows.runtime.tracking_store import dashboard_lines
from workflows.sweeps.compute import Hardware
from workflows.sweeps.planning import format_plan, plan_sweep
from workflows.sweeps.probe import GenerationProbe
from workflows.sweeps.runner import SweepRunner
from workflows.sweeps.summary import CONSOLE_COLUMNS, CONSOLE_GENERATION_COLUMNS, summary_row
from workflows.sweeps.sweep_file import Sweep
from workflows.tracking import (
    CONFIG_ROLE, ROLE_TAG, MlflowClient, end_run, git_commit, log_metrics, open_parent, prepare_tracking,
    register_exports, registered_model_name, run_artifact_uri, set_alias_to_best, start_system_metrics,
    sweep_exports, tracking_client,
)
from workflows.training.spec import TokenizerSpec, run_training, run_training_group


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


def run_sweep(args: argparse.Namespace, sweep: Sweep, tracking_uri: str | None) -> int:
    """Runs the parsed command on its loaded sweep; `tracking_uri` is the checked store (None for a dry run).
    Returns the exit code: 2 for a config the plan refuses, 1 when a config or its probe failed."""
    hardware = Hardware(args.gpus, args.gpu_peak, args.mfu) if args.gpu_peak else None
    try:
        if args.register_only:  # the registry only: no shards read, no Ray, nothing trained
            tracking_uri, experiment_id = prepare_tracking(tracking_uri, sweep.experiment)
            register_tokenizers(tracking_client(tracking_uri), experiment_id, sweep.name, args.alias, args.best_by)
            return 0
        plans = plan_sweep(sweep, args.dry_run)
        plan_report = format_plan(sweep, plans, hardware)
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
        train_group=run_training_group,
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

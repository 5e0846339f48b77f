"""The sweep's report on its parent run: the summary table, the plots, the fits as metrics, findings.md and
one tag per finding's verdict."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from workflows.reports.findings import METRICS, findings_markdown, judge_findings
from workflows.reports.generation_findings import generation_metric, generation_rows
from workflows.reports.fits import Fit, fit_rows
from workflows.reports.paired import attach_paired_draws
from workflows.reports.plots import make_plots, varies
from workflows.reports.tables import rows_to_csv, rows_to_markdown
from workflows.tracking import MlflowClient, load_per_sample, log_files, log_metrics, log_text_files, set_tags

if TYPE_CHECKING:  # the rows' type only: the report reads their attributes
    from workflows.sweeps.summary import SummaryRow


def _fit_entries(prefix: str, fit: Fit | None) -> dict[str, float]:
    """`prefix`_slope, _slope_low/_slope_high where an interval was measured, _r2 where meaningful."""
    if fit is None:
        return {}
    out = {f"{prefix}_slope": fit.slope}
    if fit.slope_low is not None:
        out.update({f"{prefix}_slope_low": fit.slope_low, f"{prefix}_slope_high": fit.slope_high})
    if fit.r2 is not None:
        out[f"{prefix}_r2"] = fit.r2
    return out


def fit_metrics(rows: list[SummaryRow]) -> dict[str, float]:
    """The log2 fits (slope, its 95% interval, R²) against what the sweep varies, as parent-run metrics, so the
    dashboard can compare sweeps; with a generation probe also the generation metric's fit against E (finished
    probes only)."""
    ok = [r for r in rows if r.finished]
    out: dict[str, float] = {}
    for x_key, x_name, varied in (("E", "E", "E"), ("encoder_params", "enc_params", "enc"),
                                  ("decoder_params", "dec_params", "dec")):
        if not varies(ok, varied):  # a fit across what the sweep held fixed measures something else (plots.AXES)
            continue
        for metric, _, _ in METRICS:
            out.update(_fit_entries(f"fit_{metric}_vs_log2_{x_name}", fit_rows(ok, x_key, metric)))
    metric = generation_metric(ok)
    if metric is not None:
        out.update(_fit_entries(f"fit_{metric}_vs_log2_E", fit_rows(generation_rows(ok, metric), "E", metric)))
    return out


def publish_results(client: MlflowClient, parent_id: str, sweep_name: str, study: str,
                    rows: list[SummaryRow]) -> str:
    """Logs the table, the plots, the fits and findings.md on the parent run; returns findings.md's text.

    First reads each finished run's per-sample validation values and attaches the paired bootstrap draws
    that the fits and differences use (workflows.reports.paired)."""
    tables = {r.run_id: load_per_sample(client, r.run_id) for r in rows if r.finished and r.run_id}
    rows = attach_paired_draws(rows, {run: table for run, table in tables.items() if table is not None})
    findings = judge_findings(rows, study)
    text = findings_markdown(findings, sweep_name, study, len(rows), sum(r.finished for r in rows), rows)
    columns = [r.columns() for r in rows]
    log_text_files(client, parent_id, {"summary.csv": rows_to_csv(columns), "summary.md": rows_to_markdown(columns),
                                       "findings.md": text})
    with tempfile.TemporaryDirectory() as tmp:
        log_files(client, parent_id, make_plots(rows, Path(tmp) / "plots"), "plots")
    log_metrics(client, parent_id, fit_metrics(rows))
    set_tags(client, parent_id, {f"finding.{f.id}": f.verdict for f in findings})
    return text

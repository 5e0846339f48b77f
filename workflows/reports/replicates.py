"""Seed replicates grouped per config for findings.md: runs that share a design (everything but name and seed,
as `seeds:` in a sweep file makes them) are one config, reported as the mean over its seeds with a 95% interval
that holds the evaluation's uncertainty and the run-to-run spread of the seeds (pooled over every replicated
config, Student's t on its degrees of freedom), each widened once (`fits.half_width`)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from workflows.reports.fits import half_width
from workflows.reports.verdicts import ci_text, group_mean, replicate_noise, rows_with

if TYPE_CHECKING:  # the rows' type only: the report reads their attributes
    from workflows.sweeps.summary import SummaryRow

# `seeds:` names replicate NAME-s<seed> (workflows.sweeps.sweep_file); the config is NAME.
_SEED_SUFFIX = re.compile(r"-s\d+$")


def replicate_groups(rows: list[SummaryRow]) -> list[list[SummaryRow]]:
    """The rows grouped by design, in order of first appearance; only designs with more than one run."""
    groups: dict[Any, list[SummaryRow]] = {}
    for r in rows:
        groups.setdefault(r.design or id(r), []).append(r)
    return [runs for runs in groups.values() if len(runs) > 1]


def config_mean(rows: list[SummaryRow], runs: list[SummaryRow], key: str) -> tuple[float, float, float]:
    """The mean of `key` over one config's replicates `runs` and its 95% interval, with the seed spread pooled
    over all of `rows`."""
    run_var, dof = replicate_noise(rows, key)
    mean, evaluation, seeds = group_mean(runs, key, run_var)
    half = half_width(evaluation, seeds, dof)
    return mean, mean - half, mean + half


def replicates_table(rows: list[SummaryRow], keys: list[tuple[str, str]]) -> list[str]:
    """Markdown lines: each replicated config's seeds and, per measured metric in `keys` ((key, format)), its
    mean over the seeds with the 95% interval; empty when no config was replicated."""
    groups = replicate_groups(rows)
    if not groups:
        return []
    head = ["config", "seeds"] + [f"{key} mean [95% CI, seed spread in]" for key, _ in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for runs in groups:
        cells = [_SEED_SUFFIX.sub("", str(runs[0].config)),
                 ", ".join(str(r.seed) for r in runs)]
        for key, fmt in keys:
            measured = rows_with(runs, key)
            if len(measured) < len(runs):
                cells.append("-")
                continue
            mean, low, high = config_mean(rows, runs, key)
            cells.append(f"{mean:{fmt}} {ci_text(low, high, fmt)}")
        lines.append("| " + " | ".join(cells) + " |")
    return lines

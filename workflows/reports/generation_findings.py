"""The paper's generation findings, judged from the sweep's summary rows with a generation probe's columns:
`generator`, `gen_n` (N samples scored), `SWD` with `SWD_lo` / `SWD_hi`, `gFID`, `gFVD` (all lower is better;
None when not measured) and `gen_status` ("finished", "failed: ...", or "" when no probe ran). Only rows whose
probe finished count.
"""

from __future__ import annotations

import math
import statistics
from typing import TYPE_CHECKING, Any

import numpy as np

from workflows.reports.fits import MIN_POINTS, Fit, fit_rows, half_width
from workflows.reports.numbers import signed
from workflows.reports.verdicts import (
    FAILS, HOLDS, INCONCLUSIVE, NO_DATA, Finding, ci_text, group_mean, mean_difference, replicate_noise, rows_with,
    sure_side_of,
)

if TYPE_CHECKING:  # the rows' type only: the report reads their attributes
    from workflows.sweeps.summary import SummaryRow


RATIO_DRAWS = 4000  # resamples for the interval of a relative change
DECODER_GEN_REL = 0.10  # decoder size has "little effect" on generation when the metric moves less than this share


def generation_metric(rows: list[SummaryRow]) -> str | None:
    """The generation metric the report uses: gFID when every finished probe logged it, else gFVD likewise
    (video), else SWD (every probe logs it); None when no probe finished with one. One metric for all runs,
    so that they are compared on the same scale."""
    probed = [r for r in rows if r.gen_status == "finished"]
    for key in ("gFID", "gFVD"):
        if probed and all(r.metric(key) is not None for r in probed):
            return key
    return "SWD" if rows_with(probed, "SWD") else None


def generation_rows(rows: list[SummaryRow], key: str | None) -> list[SummaryRow]:
    """The runs whose generation probe finished with `key` measured: the only ones generation findings use."""
    return [r for r in rows if r.gen_status == "finished" and key is not None and r.metric(key) is not None]


def generation_coverage(rows: list[SummaryRow]) -> list[str]:
    """e_generation when generation was measured, and the size findings when those runs vary that size."""
    measured = generation_rows(rows, generation_metric(rows))
    if not measured:
        return []
    out = ["e_generation"]
    if len({r.enc for r in measured}) >= 2:
        out.append("encoder_generation")
    if len({r.dec for r in measured}) >= 2:
        out.append("decoder_generation")
    return out


def _by_e(rows: list[SummaryRow]) -> dict[Any, list[SummaryRow]]:
    out: dict[Any, list[SummaryRow]] = {}
    for r in sorted(rows, key=lambda r: r.E):
        out.setdefault(r.E, []).append(r)
    return out


def _mean_with_ci(runs: list[SummaryRow], key: str, replicates: tuple[float, int], unit: str = "") -> str:
    """`key`'s mean over the runs with its 95% interval; `replicates` = (run-to-run variance, its dof)."""
    run_var, dof = replicates
    mean, evaluation, runs_part = group_mean(runs, key, run_var)
    half = half_width(evaluation, runs_part, dof)
    return f"{key} {mean:.4g}{unit} {ci_text(mean - half, mean + half, '.4g', unit)}"


def _per_e_lines(by_e: dict[Any, list[SummaryRow]], key: str) -> list[str]:
    """Each E's mean generation metric and PSNR over its runs, with their 95% intervals."""
    runs = [r for group in by_e.values() for r in group]
    gen_noise, psnr_noise = replicate_noise(runs, key), replicate_noise(runs, "PSNR")
    lines = []
    for e, group in by_e.items():
        psnr = rows_with(group, "PSNR")
        recon = _mean_with_ci(psnr, "PSNR", psnr_noise, " dB") if psnr else "PSNR not measured"
        samples = "/".join(sorted({str(r.gen_n or "?") for r in group}))
        names = ", ".join(str(r.config) for r in group)
        lines.append(f"E = {e}: {_mean_with_ci(group, key, gen_noise)}; {recon} ({len(group)} run(s): {names}; "
                     f"N = {samples} generated samples)")
    return lines


def _generation_turn(by_e: dict[Any, list[SummaryRow]], key: str) -> tuple[str, list[str]]:
    """Does generation stop improving, or worsen, at the largest E while reconstruction still improves there?"""
    runs = [r for group in by_e.values() for r in group]
    means = {e: statistics.fmean(r.metric(key) for r in group) for e, group in by_e.items()}
    best, largest = min(means, key=means.get), max(by_e)
    if best == largest:
        runner_up = min((e for e in means if e != largest), key=means.get)
        diff, low, high = mean_difference(by_e[runner_up], by_e[largest], key, *replicate_noise(runs, key))
        sure = sure_side_of(low, high, 0.0) > 0
        verdict = FAILS if sure else INCONCLUSIVE
        why = ("generation is surely still improving at the largest E tried: no turn within this sweep's range"
               if sure else "the interval includes 0 (or was not measured)")
        return verdict, [f"{key} is best at the largest E = {largest}; the next best, E = {runner_up}, is worse by "
                         f"{signed(diff, '+.4g')} {ci_text(low, high, '+.4g')} — {verdict}: {why}"]
    comparisons = len(by_e) - 1
    diff, low, high = mean_difference(by_e[largest], by_e[best], key, *replicate_noise(runs, key), comparisons)
    lines = [f"{key} is best at E* = {best}; at E_max = {largest} it is worse by {signed(diff, '+.4g')} "
             f"[95% CI, Bonferroni over the {comparisons} E that could have been E*: {signed(low, '+.4g')}, "
             f"{signed(high, '+.4g')}]"]
    gen_side = sure_side_of(low, high, 0.0)
    at_largest, at_best = rows_with(by_e[largest], "PSNR"), rows_with(by_e[best], "PSNR")
    psnr_side = 0
    if at_largest and at_best:
        diff, low, high = mean_difference(at_largest, at_best, "PSNR", *replicate_noise(runs, "PSNR"))
        psnr_side = sure_side_of(low, high, 0.0)
        lines.append(f"PSNR at E_max minus at E*: {signed(diff, '+.2f')} dB {ci_text(low, high, '+.2f', ' dB')}")
    else:
        lines.append("PSNR not measured at both E* and E_max")
    if psnr_side < 0:
        verdict, why = FAILS, "reconstruction surely worsens from E* to E_max too: the turn is not generation's own"
    elif gen_side > 0 and psnr_side > 0:
        verdict, why = HOLDS, "generation surely worsens from E* to E_max while reconstruction surely improves"
    else:
        verdict, why = INCONCLUSIVE, "an interval includes 0 (or was not measured)"
    return verdict, lines + [f"E* against E_max — {verdict}: {why}"]


def e_generation(rows: list[SummaryRow], paper: dict[str, Any], media: str = "image") -> Finding:
    subset = [r for r in rows if r.media == media] or rows
    key = generation_metric(subset)
    by_e = _by_e(generation_rows(subset, key))
    rule = (f"generation metric: gFID when every finished probe logged it, else gFVD likewise, else SWD (lower is "
            f"better); only runs whose probe finished count. At each E, generation and PSNR are each the mean over "
            f"those runs (any tokenisation or seed), its variance from each run's 95% interval plus the seed "
            f"replicates' run-to-run variance. E* is the E with the best mean generation, E_max the largest E. "
            f"When E* < E_max: holds when generation at E_max is surely worse than at E* (the difference's "
            f"interval, Bonferroni-widened for "
            f"the k - 1 values of E that could have been E* among the k measured, lies above 0) and PSNR at E_max "
            f"is surely better than at E* (95% interval of the difference above 0: reconstruction still improves); "
            f"does not hold when PSNR at E_max is surely worse than at E* (reconstruction turns too, so the turn is "
            f"not generation's own); inconclusive otherwise. When E* = E_max: does not hold when generation at "
            f"E_max is surely better than at the next best E (95% interval of the difference above 0: still "
            f"improving at the largest E tried, so no turn within the sweep's range, which may end before the "
            f"paper's turn); inconclusive otherwise. An interval of zero width (no run logged one, no seed "
            f"replicates) is never sure. Needs >= {MIN_POINTS} distinct E with generation measured. The log-E "
            f"fit and its R² are reported beside the paper's, not judged; nor is the c > 32 part")
    if len(by_e) < MIN_POINTS:
        found = f"{key} measured at {len(by_e)} value(s) of E" if key else "no generation probe finished"
        return Finding("e_generation", paper["claim"], paper["paper"], NO_DATA, rule,
                       [f"{found}; needs {MIN_POINTS} (the sweep file's `generation:` block runs the probe)"])
    runs = [r for group in by_e.values() for r in group]
    generators = ", ".join(sorted({str(r.generator) for r in runs}))
    lines = [f"generation metric: {key} (lower is better), generator(s): {generators}"]
    lines += _per_e_lines(by_e, key)
    lines.append(f"{key} vs log2 E (not judged; paper: {paper['paper']}): {fit_rows(runs, 'E', key).describe()}")
    verdict, turn = _generation_turn(by_e, key)
    return Finding("e_generation", paper["claim"], paper["paper"], verdict, rule, lines + turn)


def _relative_change(fit: Fit, smallest: float, largest: float) -> tuple[float, float, float]:
    """The metric's change from the smallest to the largest size along the fit's line, relative to the line's
    value at the smallest size, with the 95% percentile interval of refits on runs redrawn within their
    uncertainty (the reference value is uncertain too, so the slope's interval alone would not do)."""
    start_x, span = math.log2(smallest), math.log2(largest) - math.log2(smallest)

    def relative(slope, intercept):
        start = slope * start_x + intercept
        # A line at or below 0 at the smallest size (the metrics are positive) bounds no relative change.
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(start > 0, slope * span / start, np.inf)

    slopes, intercepts = fit.resample(RATIO_DRAWS, seed=3)
    low, high = np.quantile(relative(slopes, intercepts), [0.025, 0.975])
    return float(relative(fit.slope, fit.intercept)), float(low), float(high)


def _generation_vs_size(rows: list[SummaryRow], x_key: str, label: str
                        ) -> tuple[Fit | None, tuple[float, float, float] | None, list[str]]:
    """The generation metric's log2 fit against a size, its relative change across the sizes (both None with too
    few runs or sizes), and the lines."""
    key = generation_metric(rows)
    runs = [r for r in generation_rows(rows, key) if r.metric(x_key)]
    fit = fit_rows(runs, x_key, key) if key else None
    if fit is None or fit.n < MIN_POINTS:
        return None, None, [f"generation vs {label}: {len(runs)} run(s) with generation measured; needs >= "
                            f"{MIN_POINTS} runs and >= 2 sizes"]
    xs = [r.metric(x_key) for r in runs]
    change = _relative_change(fit, min(xs), max(xs))
    return fit, change, [
        f"{key} vs log2 {label}: {fit.describe()}",
        f"{key} change from {min(xs) / 1e6:.3g}M to {max(xs) / 1e6:.3g}M {label}, relative to the fitted {key} at "
        f"the smallest: {signed(change[0], '+.1%')} {ci_text(change[1], change[2], '+.1%')}",
    ]


def encoder_generation(rows: list[SummaryRow], paper: dict[str, Any]) -> Finding:
    rule = (f"generation metric as for e_generation (gFID, else gFVD, else SWD; lower is better; finished probes "
            f"only); holds when the slope of the generation metric vs log2 encoder params has its 95% interval above "
            f"0 (a bigger encoder surely worsens generation); does not hold when it is below 0 (a bigger encoder "
            f"surely improves it); inconclusive when it includes 0 or has zero width (no run logged one, no seed "
            f"replicates); how much (\"slightly\") is reported, not judged: the paper gives no size; needs >= "
            f"{MIN_POINTS} runs and >= 2 encoder sizes with generation measured")
    fit, _, lines = _generation_vs_size(rows, "encoder_params", "encoder params")
    if fit is None:
        return Finding("encoder_generation", paper["claim"], paper["paper"], NO_DATA, rule, lines)
    side = sure_side_of(*fit.interval(), 0.0)
    verdict = HOLDS if side > 0 else FAILS if side < 0 else INCONCLUSIVE
    lines[0] += f" — {verdict}"
    return Finding("encoder_generation", paper["claim"], paper["paper"], verdict, rule, lines)


def decoder_generation(rows: list[SummaryRow], paper: dict[str, Any]) -> Finding:
    rule = (f"generation metric as for e_generation (gFID, else gFVD, else SWD; lower is better; finished probes "
            f"only); holds when its change from the smallest to the largest decoder along its log2 fit against "
            f"decoder params, relative to the fitted value at the smallest decoder, has its 95% interval (percentile "
            f"over refits on runs redrawn within their uncertainty) within +-{DECODER_GEN_REL:.0%}; does not hold "
            f"when the interval lies outside that band; inconclusive otherwise, or when it has zero width (no run "
            f"logged one, no seed replicates); that the decoder helps reconstruction is decoder_scaling's to judge; "
            f"needs >= {MIN_POINTS} runs and >= 2 decoder sizes with generation measured")
    fit, change, lines = _generation_vs_size(rows, "decoder_params", "decoder params")
    if fit is None:
        return Finding("decoder_generation", paper["claim"], paper["paper"], NO_DATA, rule, lines)
    _, low, high = change
    sure = high > low  # a zero-width interval (no uncertainty measured) is never sure
    inside = -DECODER_GEN_REL < low and high < DECODER_GEN_REL
    outside = low >= DECODER_GEN_REL or high <= -DECODER_GEN_REL
    verdict = HOLDS if sure and inside else FAILS if sure and outside else INCONCLUSIVE
    lines[1] += f" — {verdict}"
    return Finding("decoder_generation", paper["claim"], paper["paper"], verdict, rule, lines)


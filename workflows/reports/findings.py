"""`findings.md`: for each paper finding a sweep covers, what the paper reported, what the sweep measured
(fits with the slope's 95% interval and R², differences with theirs, each run's n and intervals) and the
verdict, by a rule stated next to it: "holds", "does not hold", or "inconclusive" when the interval of the
quantity the rule judges straddles the rule's threshold or has zero width (no uncertainty was measured).

Input is the sweep's summary rows (`workflows.sweeps.summary.SummaryRow`, read by attribute): one per config with E, p,
q, the encoder/decoder sizes and parameter counts, the loss settings, the eval metrics (None when not
measured) with `n` and `<metric>_lo` / `<metric>_hi`, and `design` (seed replicates share it). A sweep with a
generation probe adds the generator's columns: `generator`, `gen_n` (N samples scored), `SWD` with `SWD_lo` /
`SWD_hi`, `gFID`, `gFVD` (all lower is better; None when not measured) and `gen_status` ("finished",
"failed: ...", or "" when no probe ran): the generation findings are judged in
`workflows.reports.generation_findings`, the shared verdict arithmetic is `workflows.reports.verdicts`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from vitok.bootstrap import small_sample_widening
from workflows.reports.fits import MIN_POINTS, Fit, fit_rows
from workflows.reports.numbers import signed
from workflows.reports.replicates import replicates_table
from workflows.reports.generation_findings import (
    decoder_generation, e_generation, encoder_generation, generation_coverage, generation_metric, generation_rows,
)
from workflows.reports.verdicts import (
    FAILS, HOLDS, INCONCLUSIVE, NO_DATA, NO_INTERVAL, Finding, ci_text, combine_verdicts, finished_rows, group_mean,
    load_paper, mean_difference, replicate_noise, rows_with, seeds_per_config, sure_side_of,
)

if TYPE_CHECKING:  # the rows' type only: the report reads their attributes
    from workflows.sweeps.summary import SummaryRow


# Reconstruction metrics: (row key, +1 if higher is better, unit).
METRICS = [("PSNR", 1, " dB"), ("SSIM", 1, ""), ("LPIPS", -1, ""), ("rFID", -1, ""), ("rFVD", -1, "")]

# The rules, written once so the report quotes exactly what the code checks.
R2_LAW = 0.9  # a log-E law holds when its slope is surely the paper's sign and R² surely above this (paper 0.92-0.98)
ENCODER_DB = 0.5  # encoder size "barely matters" when PSNR moves less than this across the sizes tried
RATIO_DRAWS = 4000  # resamples for the interval of the video/image E ratio

STUDY_FINDINGS = {
    "e_sweep": ["e_reconstruction", "e_patch_size"],
    "encoder_scaling": ["encoder_scaling"],
    "decoder_scaling": ["decoder_scaling"],
    "loss_tradeoff": ["loss_tradeoff"],
    "video_e_sweep": ["e_reconstruction", "e_patch_size", "video_compressibility"],
    "e_generation": ["e_reconstruction", "e_generation"],
}


def covered(rows: list[SummaryRow], study: str = "") -> list[str]:
    """The findings a sweep covers: those of its study, else what its rows vary; plus the generation findings
    whenever a generation probe finished with a metric."""
    out = list(STUDY_FINDINGS[study]) if study in STUDY_FINDINGS else _varied(rows)
    return out + [f for f in generation_coverage(rows) if f not in out]


def _varied(rows: list[SummaryRow]) -> list[str]:
    """The reconstruction findings that what the rows vary covers."""
    out = []
    image = [r for r in rows if r.media == "image"]
    video = [r for r in rows if r.media == "video"]
    if len({r.E for r in image or video}) >= 2:
        out.append("e_reconstruction")
        out.append("e_patch_size")
    if len({r.enc for r in rows}) >= 2:
        out.append("encoder_scaling")
    if len({r.dec for r in rows}) >= 2:
        out.append("decoder_scaling")
    if len({(r.lpips_weight, r.gan_weight) for r in rows}) >= 2:
        out.append("loss_tradeoff")
    if video and len({r.E for r in video}) >= 2:
        out.append("video_compressibility")
    return out


def _law(rows: list[SummaryRow], x_key: str, label: str,
         metrics: list[tuple[str, int, str]] = METRICS) -> tuple[list[str], list[str]]:
    """Fits each measured metric against log2 of `x_key` and judges each fit; returns (lines, verdicts)."""
    lines, verdicts = [], []
    for key, sign, unit in metrics:
        points = rows_with(rows, key)
        if not points:
            continue
        fit = fit_rows(points, x_key, key)
        if fit is None or fit.r2 is None:
            lines.append(f"{key} vs log2 {label}: {len(points)} point(s) with distinct {label} — R² not meaningful")
            verdicts.append(NO_DATA)
            continue
        slope_interval, r2_interval = fit.interval(), fit.r2_interval() or (fit.r2, fit.r2)
        side = sure_side_of(*slope_interval, 0.0) * sign
        close = sure_side_of(*r2_interval, R2_LAW)
        if side < 0:
            verdict, why = FAILS, f"{key} surely worsens with {label}"
        elif side == 0 and not slope_interval[1] > slope_interval[0]:
            verdict, why = INCONCLUSIVE, f"the slope has {NO_INTERVAL}"
        elif side == 0:
            verdict, why = INCONCLUSIVE, "the slope's interval includes 0"
        elif close > 0:
            verdict, why = HOLDS, f"{key} surely improves with {label}, R² surely above {R2_LAW}"
        elif close < 0:
            verdict, why = FAILS, f"{key} improves with {label} but R² is surely below {R2_LAW}"
        elif not r2_interval[1] > r2_interval[0]:
            verdict, why = INCONCLUSIVE, f"R² has {NO_INTERVAL}"
        else:
            verdict, why = INCONCLUSIVE, f"R²'s interval straddles {R2_LAW}"
        verdicts.append(verdict)
        lines.append(f"{key} vs log2 {label}: {fit.describe(unit)} — {verdict}: {why}")
    return lines, verdicts


def family_of(row: SummaryRow) -> tuple[int, Any]:
    """The tokenisation a run belongs to: (q, p)."""
    return row.q or 1, row.p


def family_name(family: tuple[int, Any]) -> str:
    q, p = family
    return f"p = {p}" if q == 1 else f"q x p = {q}x{p}"


def _families(rows: list[SummaryRow]) -> dict[tuple[int, Any], list[SummaryRow]]:
    """Runs grouped by tokenisation (q, p): the log-E law is checked within each, the p part across them."""
    out: dict[tuple[int, Any], list[SummaryRow]] = {}
    for r in rows:
        out.setdefault(family_of(r), []).append(r)
    return out


def _family_laws(rows: list[SummaryRow], metrics: list[tuple[str, int, str]] = METRICS
                 ) -> tuple[list[str], list[str]]:
    """The log-E law judged within each tokenisation that has >= MIN_POINTS values of E (all runs together
    when none has), and the all-runs fit for the record; returns (lines, verdicts)."""
    families = _families(rows)
    lines, verdicts = [], []
    for family, runs in sorted(families.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        if len({r.E for r in runs}) < MIN_POINTS:
            continue
        family_lines, family_verdicts = _law(runs, "E", "E", metrics)
        lines += [f"{family_name(family)}: {line}" for line in family_lines]
        verdicts += family_verdicts
    if len(families) > 1:
        lines += [f"all runs ({len(families)} tokenisations together, as the paper fits; not judged): "
                  f"{line.split(' — ')[0]}" for line in _law(rows, "E", "E", metrics)[0]]
    if not verdicts:  # no single tokenisation has 3 values of E: fall back on all runs together
        all_lines, verdicts = _law(rows, "E", "E", metrics)
        if len(families) == 1:
            lines = all_lines
    return lines, verdicts


def e_reconstruction(rows: list[SummaryRow], paper: dict[str, Any], media: str = "image") -> Finding:
    subset = [r for r in rows if r.media == media] or rows
    lines, verdicts = _family_laws(subset)
    return Finding(
        "e_reconstruction", paper["claim"], paper["paper"], combine_verdicts(verdicts),
        f"within each tokenisation with >= {MIN_POINTS} values of E, each measured metric's slope against log2 E "
        f"has the paper's sign (PSNR, SSIM up; LPIPS, rFID down) with its 95% interval excluding 0, and R²'s 95% "
        f"interval lies above {R2_LAW}; does not hold when the slope is surely of the other sign or R² surely "
        f"below {R2_LAW}; inconclusive when the slope's interval includes 0 or R²'s straddles {R2_LAW}; whether p "
        f"matters at equal E is the separate finding e_patch_size", lines,
    )


def _patch_independence(rows: list[SummaryRow]) -> tuple[list[str], list[str]]:
    """At each E that several tokenisations share: is their PSNR gap surely below one doubling of E's gain?"""
    points = rows_with(rows, "PSNR")
    fit = fit_rows(points, "E", "PSNR")
    by_e: dict[Any, list[SummaryRow]] = {}
    for r in points:
        by_e.setdefault(r.E, []).append(r)
    shared = {e: group for e, group in sorted(by_e.items()) if len({family_of(r) for r in group}) >= 2}
    if not shared or fit is None:
        return ["no two runs share E with a different tokenisation"], []
    threshold = abs(fit.slope)
    run_var, dof = replicate_noise(points, "PSNR")
    lines = [f"threshold: {threshold:.2f} dB, the PSNR gained per doubling of E (all-runs fit: "
             f"{fit.describe(' dB')})"]
    verdicts = []
    for e, group in shared.items():
        means = [(group_mean(runs, "PSNR", run_var)[0], runs) for runs in _families(group).values()]
        by_mean = sorted(means, key=lambda m: m[0])
        (worst, worst_runs), (best, best_runs) = by_mean[0], by_mean[-1]
        gap, low, high = mean_difference(best_runs, worst_runs, "PSNR", run_var, dof)
        side = sure_side_of(low, high, threshold)
        verdict = HOLDS if side < 0 else FAILS if side > 0 else INCONCLUSIVE
        verdicts.append(verdict)
        ci = ci_text(low, high, ".2f", " dB")
        lines.append(f"E = {e}: {_described(best, best_runs)} vs {_described(worst, worst_runs)}: gap {gap:.2f} dB "
                     f"{ci} — {verdict}")
    return lines, verdicts


def _described(mean: float, runs: list[SummaryRow]) -> str:
    seeds = f" (mean of {len(runs)} runs)" if len(runs) > 1 else ""
    return f"{family_name(family_of(runs[0]))} {mean:.2f} dB{seeds}"


def e_patch_size(rows: list[SummaryRow], paper: dict[str, Any], media: str = "image") -> Finding:
    subset = [r for r in rows if r.media == media] or rows
    lines, verdicts = _patch_independence(subset)
    return Finding(
        "e_patch_size", paper["claim"], paper["paper"], combine_verdicts(verdicts),
        "at each E shared by runs of different tokenisation (p, or q x p), the PSNR gap between the best and the "
        "worst tokenisation (each the mean of its seed replicates) has its 95% interval below the PSNR gained per "
        "doubling of E (the all-runs log-E slope); does not hold when the interval is above it, inconclusive when "
        "it straddles it; needs two runs that share E with a different tokenisation",
        lines,
    )


def _for_the_record(rows: list[SummaryRow], x_key: str, label: str) -> list[str]:
    """The fits of the metrics other than PSNR (which the size rules judge), reported without a verdict."""
    lines = []
    for key, _, unit in METRICS[1:]:
        fit = fit_rows(rows_with(rows, key), x_key, key)
        if fit is not None:
            lines.append(f"{key} vs log2 {label} (not judged): {fit.describe(unit)}")
    return lines


def _psnr_vs_size(rows: list[SummaryRow], part: str) -> tuple[Fit | None, float, str]:
    """(PSNR's fit against log2 `part` ("encoder" or "decoder") params, or None with too few runs or a single
    size; the log2 span of the sizes; the line saying what the fit spans)."""
    fit = fit_rows(rows_with(rows, "PSNR"), f"{part}_params", "PSNR")
    if fit is None or fit.r2 is None:
        return None, 0.0, f"PSNR vs {part} size: too few runs or a single {part} size"
    xs = [getattr(r, f"{part}_params") for r in rows_with(rows, "PSNR")]
    spanned = f"PSNR change from {min(xs) / 1e6:.3g}M to {max(xs) / 1e6:.3g}M {part} params: "
    return fit, math.log2(max(xs)) - math.log2(min(xs)), spanned


ENCODER_SCALING_RULE = (
    f"holds when the PSNR change from the smallest to the largest encoder (slope of PSNR vs log2 encoder params x "
    f"the log2 span) has its 95% interval within +-{ENCODER_DB} dB; does not hold when the interval lies outside; "
    f"inconclusive otherwise; needs >= {MIN_POINTS} runs and >= 2 encoder sizes"
)
DECODER_SCALING_RULE = (
    f"holds when the slope of PSNR vs log2 decoder params has its 95% interval above 0; does not hold when it is "
    f"below 0; inconclusive when it includes 0; needs >= {MIN_POINTS} runs and >= 2 decoder sizes"
)


def encoder_scaling(rows: list[SummaryRow], paper: dict[str, Any]) -> Finding:
    fit, span, spanned = _psnr_vs_size(rows, "encoder")
    if fit is None:
        return Finding("encoder_scaling", paper["claim"], paper["paper"], NO_DATA, ENCODER_SCALING_RULE, [spanned])
    low, high = (v * span for v in fit.interval())
    change = fit.slope * span
    sure = high > low  # a zero-width interval (no uncertainty measured) is never sure
    inside, outside = -ENCODER_DB < low and high < ENCODER_DB, low >= ENCODER_DB or high <= -ENCODER_DB
    verdict = HOLDS if sure and inside else FAILS if sure and outside else INCONCLUSIVE
    lines = [f"PSNR vs log2 encoder params: {fit.describe(' dB')}",
             f"{spanned}{signed(change, '+.2f')} dB {ci_text(low, high, '+.2f', ' dB')} — {verdict}"]
    lines += _for_the_record(rows, "encoder_params", "encoder params")
    return Finding("encoder_scaling", paper["claim"], paper["paper"], verdict, ENCODER_SCALING_RULE, lines)


def decoder_scaling(rows: list[SummaryRow], paper: dict[str, Any]) -> Finding:
    fit, span, spanned = _psnr_vs_size(rows, "decoder")
    if fit is None:
        return Finding("decoder_scaling", paper["claim"], paper["paper"], NO_DATA, DECODER_SCALING_RULE, [spanned])
    side = sure_side_of(*fit.interval(), 0.0)
    verdict = HOLDS if side > 0 else FAILS if side < 0 else INCONCLUSIVE
    low, high = (v * span for v in fit.interval())
    lines = [f"PSNR vs log2 decoder params: {fit.describe(' dB')} — {verdict}",
             f"{spanned}{signed(fit.slope * span, '+.2f')} dB {ci_text(low, high, '+.2f', ' dB')}"]
    lines += _for_the_record(rows, "decoder_params", "decoder params")
    return Finding("decoder_scaling", paper["claim"], paper["paper"], verdict, DECODER_SCALING_RULE, lines)


def loss_tradeoff(rows: list[SummaryRow], paper: dict[str, Any]) -> Finding:
    rule = ("holds when the runs with an active perceptual or GAN term have lower mean PSNR and a better (lower) "
            "mean perceptual metric (rFID, else LPIPS) than the runs without, both differences with 95% "
            "intervals excluding 0; does not hold when either interval lies on the other side of 0; "
            "inconclusive otherwise; needs both kinds of run and a perceptual metric")
    on = [r for r in rows if r.lpips_active or (r.gan_weight or 0) > 0]
    off = [r for r in rows if r not in on]
    perceptual = next((k for k in ("rFID", "LPIPS") if rows_with(rows, k)), None)
    lines = [f"runs with a perceptual/GAN term active: {len(on)}; without: {len(off)}"]
    inactive = [r.config for r in rows if (r.lpips_weight or 0) > 0 and not r.lpips_active]
    if inactive:
        lines.append(f"LPIPS weight set but LPIPS was off (no weights.lpips) in: {', '.join(inactive)}")
    if perceptual is None:
        lines.append("no perceptual metric was measured (rFID needs weights.inception, LPIPS weights.lpips)")
    sides = []
    for key in ("PSNR", perceptual):
        if key is None:
            continue
        with_key, without_key = rows_with(on, key), rows_with(off, key)
        if not with_key or not without_key:
            lines.append(f"{key} missing on one side")
            continue
        diff, low, high = mean_difference(with_key, without_key, key, *replicate_noise(rows, key))
        lines.append(f"mean {key} with minus without: {signed(diff, '+.4g')} {ci_text(low, high, '+.4g')}")
        sides.append(sure_side_of(low, high, 0.0))
    if len(sides) < 2:
        return Finding("loss_tradeoff", paper["claim"], paper["paper"], NO_DATA, rule, lines)
    verdict = HOLDS if sides == [-1, -1] else FAILS if 1 in sides else INCONCLUSIVE
    return Finding("loss_tradeoff", paper["claim"], paper["paper"], verdict, rule, lines)


def _e_ratio(video_fit: Fit, image_fit: Fit, target: float) -> tuple[float, float, float]:
    """How many times the image E video needs to reach `target`, from the two log-E lines, with the 95%
    percentile interval of refits on runs redrawn within their uncertainty."""
    def log2_ratio(vs, vi, is_, ii):
        return (target - vi) / vs - (target - ii) / is_

    point = log2_ratio(video_fit.slope, video_fit.intercept, image_fit.slope, image_fit.intercept)
    vs, vi = video_fit.resample(RATIO_DRAWS, seed=1)
    is_, ii = image_fit.resample(RATIO_DRAWS, seed=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        draws = log2_ratio(vs, vi, is_, ii)
    # A draw in which either line does not rise has no finite ratio: it counts as unbounded, which can only
    # widen the interval upwards.
    draws = np.where((vs > 0) & (is_ > 0), draws, np.inf)
    # Quantiles that are draws ("inverted_cdf"): interpolating between two unbounded draws gives nan, not inf.
    low, high = np.quantile(draws, [0.025, 0.975], method="inverted_cdf")
    return 2.0**point, 2.0**low, 2.0**high


def _e_ratios(video: list[SummaryRow], image: list[SummaryRow]) -> tuple[list[str], list[str]]:
    """For each video tokenisation: how many times the image E it needs for equal PSNR, at a PSNR that both
    the image runs and its runs reach (the middle of the overlap of their measured ranges: no extrapolation)."""
    image = rows_with(image, "PSNR")
    image_fit = fit_rows(image, "E", "PSNR")
    frames = max((r.frames or 0 for r in video), default=0)
    if image_fit is None or image_fit.slope <= 0 or frames <= 1:
        return ["no image runs with a rising PSNR fit (or no frames per clip recorded) to compare against: the E "
                "ratio is not measured"], []
    image_psnr = [r.PSNR for r in image]
    lines, verdicts = [], []
    for family, runs in sorted(_families(rows_with(video, "PSNR")).items()):
        video_fit, name = fit_rows(runs, "E", "PSNR"), family_name(family)
        video_psnr = [r.PSNR for r in runs]
        low_end, high_end = max(min(image_psnr), min(video_psnr)), min(max(image_psnr), max(video_psnr))
        if video_fit is None or video_fit.slope <= 0 or low_end > high_end:
            lines.append(f"{name}: video PSNR {min(video_psnr):.2f}-{max(video_psnr):.2f} dB, image PSNR "
                         f"{min(image_psnr):.2f}-{max(image_psnr):.2f} dB: no shared range on rising fits, so the "
                         f"E ratio would be an extrapolation; not measured")
            continue
        target = (low_end + high_end) / 2
        ratio, low, high = _e_ratio(video_fit, image_fit, target)
        side = sure_side_of(low, high, frames)
        verdict = HOLDS if side < 0 else FAILS if side > 0 else INCONCLUSIVE
        interval = ci_text(low, high, ".3g", "x") if math.isfinite(high) else f"[95% CI {low:.3g}x, unbounded]"
        lines.append(f"{name}: at PSNR {target:.2f} dB video ({frames}-frame clips) needs {ratio:.3g}x the image E "
                     f"{interval} against {frames}x — {verdict}")
        verdicts.append(verdict)
    return lines, verdicts


def video_compressibility(rows: list[SummaryRow], paper: dict[str, Any]) -> Finding:
    video = [r for r in rows if r.media == "video"]
    image = [r for r in rows if r.media == "image"]
    rule = (f"holds when video PSNR follows log E within each tokenisation (as e_reconstruction judges it: slope "
            f"surely rising, R² surely above {R2_LAW}) and, for each video tokenisation, the E it needs for a PSNR "
            f"that it and the sweep's image runs both reach (the middle of their shared range) is surely less "
            f"than T x the image E, T the frames per clip (what video would need with no temporal redundancy; "
            f"paper at T = 16: 4-8x); does not hold when a law surely fails or a ratio is surely above T; "
            f"inconclusive when an interval straddles its threshold, or when no ratio could be measured")
    lines, verdicts = _family_laws(video, METRICS[:1])
    ratio_lines, ratio_verdicts = _e_ratios(video, image)
    verdict = combine_verdicts(verdicts + ratio_verdicts)
    if verdict == HOLDS and not ratio_verdicts:  # the law alone does not settle a claim about the E ratio
        verdict = INCONCLUSIVE
    return Finding("video_compressibility", paper["claim"], paper["paper"], verdict, rule, lines + ratio_lines)


def judge_findings(rows: list[SummaryRow], study: str = "", paper: dict[str, Any] | None = None) -> list[Finding]:
    paper = paper or load_paper()
    rows = finished_rows(rows)
    out = []
    # Each finding's judge; those of the E findings also take the media type the sweep studies.
    by_media = {"e_reconstruction": e_reconstruction, "e_patch_size": e_patch_size, "e_generation": e_generation}
    judges = {"encoder_scaling": encoder_scaling, "decoder_scaling": decoder_scaling, "loss_tradeoff": loss_tradeoff,
              "video_compressibility": video_compressibility, "encoder_generation": encoder_generation,
              "decoder_generation": decoder_generation}  # fmt: skip
    media = "video" if study == "video_e_sweep" else "image"
    for fid in covered(rows, study):
        if fid in by_media:
            out.append(by_media[fid](rows, paper[fid], media))
        elif fid in judges:
            out.append(judges[fid](rows, paper[fid]))
    seeds = seeds_per_config(rows)
    for finding in out:
        finding.seeds = seeds
    return out


def _with_interval(row: SummaryRow, key: str, fmt: str) -> str:
    value = row.metric(key)
    if value is None:
        return "-"
    low, high = row.interval(key)
    interval = f" [{low:{fmt}}, {high:{fmt}}]" if low is not None and high is not None else ""
    return f"{value:{fmt}}{interval}"


def _generation_cells(row: SummaryRow, keys: list[str]) -> list[str]:
    """The generator, its N and metrics; a failed probe shows its reason instead of metrics."""
    status = row.gen_status or ""
    if status != "finished":
        return [str(row.generator or "-") + (f" ({status})" if status else ""), "-"] + ["-"] * len(keys)
    return ([str(row.generator or "-"), str(row.gen_n or "-")]
            + [_with_interval(row, key, ".4g") for key in keys])


def _n_with_units(row: SummaryRow) -> str:
    if not row.n:
        return "-"
    return f"{row.n} ({row.units})" if row.units else str(row.n)


def runs_table(rows: list[SummaryRow]) -> list[str]:
    """Each finished run's E, tokenisation, n and metrics with their 95% intervals, as Markdown lines; with a
    generation probe also its generator, N and metrics."""
    metrics = [(key, ".2f" if key == "PSNR" else ".4f") for key, _, _ in METRICS if rows_with(rows, key)]
    head = ["config", "E", "tokens", "c", "enc-dec", "seed", "n (units)"] + [f"{key} [95% CI]" for key, _ in metrics]
    probed = any(r.gen_status for r in rows)
    generated = [key for key in ("SWD", "gFID", "gFVD") if generation_rows(rows, key)]
    if probed:
        head += ["generator", "gen n"] + [
            f"{key} [95% CI]" if any(r.interval(key)[0] is not None for r in rows) else key for key in generated]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r.config), str(r.E), family_name(family_of(r)), str(r.c),
                 f"{r.enc}-{r.dec}", "-" if r.seed is None else str(r.seed), _n_with_units(r)]
        cells += [_with_interval(r, key, fmt) for key, fmt in metrics]
        cells += _generation_cells(r, generated) if probed else []
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def findings_markdown(findings: list[Finding], sweep: str, study: str = "", n_runs: int = 0, n_ok: int = 0,
                      rows: list[SummaryRow] | None = None) -> str:
    head = [f"# Findings: sweep `{sweep}`" + (f" (study `{study}`)" if study else ""), ""]
    head.append(f"{n_ok} of {n_runs} configs finished and are used below. Fits are least squares of the metric "
                f"against log2 of the x quantity; R² is reported only with >= {MIN_POINTS} points. Every interval "
                f"is 95%: a run's is a percentile bootstrap of its mean over n validation samples, resampling the "
                f"independent units they come from (the runs table's units: the scenes or videos, set by "
                f"`data.eval_unit`), so correlated crops count once, and widened by Student's t over the normal "
                f"quantile for that number of units (x{small_sample_widening(6):.2f} for 6), so that few units "
                f"still give 95%. A slope's or a difference's draws every run scored on the same validation set "
                f"from the same resampled units (a paired bootstrap: what the runs share cancels; widened alike), "
                f"or, for runs that logged no per-sample values, combines their own intervals as independent; plus "
                f"the run-to-run spread of seed replicates where the sweep has them (without replicates, training "
                f"noise is not in the interval, and a verdict says \"1 seed\"). A rule is sure only by an interval "
                f"of non-zero width: where none was measured (runs that logged no interval, one validation unit, "
                f"no seed replicates) the verdict is inconclusive.")
    ok = finished_rows(rows or [])
    generated = bool(generation_rows(ok, generation_metric(ok)))
    if generated:
        head[-1] += (" A run's SWD interval is the value +- 1.96 jackknife standard deviations over its N generated "
                     "samples (groups of samples left out in turn); gFID and gFVD carry none, so without seed "
                     "replicates a verdict on them cannot be sure.")
    head.append("")
    if findings:
        head.append("| finding | verdict |")
        head.append("|---|---|")
        head += [f"| {f.id} | **{f.label}** |" for f in findings]
        head.append("")
    else:
        head += ["This sweep covers none of the paper's findings (nothing it varies matches one).", ""]
    if ok:
        head += ["## Runs", ""] + runs_table(ok) + [""]
        metrics = [(key, ".2f" if key == "PSNR" else ".4f") for key, _, _ in METRICS if rows_with(ok, key)]
        replicated = replicates_table(ok, metrics)
        if replicated:
            head += ["## Configs (seed replicates together)", ""] + replicated + [""]
    body = []
    for f in findings:
        body += [f"## {f.id}: {f.label}", "", f"- Paper: {f.claim.rstrip('.')} (paper: {f.paper})."]
        body += ["- Measured:"] + [f"  - {line}" for line in f.measured]
        body += [f"- Verdict: **{f.label}**. Rule: {f.rule.rstrip('.')}.", ""]
    if not generated and "e_generation" not in {f.id for f in findings}:
        body += ["Not covered by any sweep here: e_generation (no generation was measured: it needs a generator "
                 "trained on the latents, which the sweep file's `generation:` block runs after each tokenizer "
                 "config).", ""]
    return "\n".join(head + body)

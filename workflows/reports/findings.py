"""`findings.md`: for each paper finding a sweep covers, what the paper reported, what the sweep measured
(with the fit's R²) and whether the finding held, by a rule stated next to the verdict.

Input is the sweep's summary rows (see `workflows.sweeps.summary.summary_row`): one dict per config with E, p, the
encoder/decoder sizes and parameter counts, the loss settings and the eval metrics (None when not measured).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workflows.reports.fits import MIN_POINTS, Fit, fit_log2

PAPER_FILE = Path(__file__).resolve().parent / "paper_findings.json"

# Reconstruction metrics: (row key, +1 if higher is better, unit).
METRICS = [("PSNR", 1, " dB"), ("SSIM", 1, ""), ("LPIPS", -1, ""), ("rFID", -1, ""), ("rFVD", -1, "")]
HOLDS, FAILS, NO_DATA = "holds", "does not hold", "not enough data"

# The rules, written once so the report quotes exactly what the code checks.
R2_LAW = 0.7  # a log-E law "holds" when the fit has the paper's sign and R² >= this (paper: 0.92-0.98)
R2_ENCODER = 0.3  # encoder size "barely matters" when R² < this (paper <= 0.07) ...
ENCODER_DB = 0.5  # ... or PSNR moves less than this many dB across the encoder sizes tried
R2_DECODER = 0.4  # decoder size "helps" when PSNR rises with it and R² >= this (paper >= 0.48)
VIDEO_E_RATIO = 16.0  # video "needs less than 16x the image E" at equal PSNR (paper: 4-8x)

STUDY_FINDINGS = {
    "e_sweep": ["e_reconstruction", "e_patch_size"],
    "encoder_scaling": ["encoder_scaling"],
    "decoder_scaling": ["decoder_scaling"],
    "loss_tradeoff": ["loss_tradeoff"],
    "video_e_sweep": ["e_reconstruction", "e_patch_size", "video_compressibility"],
}


@dataclass
class Finding:
    id: str
    claim: str
    paper: str
    verdict: str
    rule: str
    measured: list[str] = field(default_factory=list)


def load_paper(path: Path = PAPER_FILE) -> dict[str, Any]:
    return json.loads(path.read_text())["findings"]


def _ok(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if str(r.get("status", "finished")) == "finished"]


def _measured(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [r for r in rows if r.get(key) is not None]


def covered(rows: list[dict[str, Any]], study: str = "") -> list[str]:
    """The findings a sweep covers: those of its study, else what its rows vary."""
    if study in STUDY_FINDINGS:
        return STUDY_FINDINGS[study]
    out = []
    image = [r for r in rows if r.get("media", "image") == "image"]
    video = [r for r in rows if r.get("media") == "video"]
    if len({r["E"] for r in image or video}) >= 2:
        out.append("e_reconstruction")
        out.append("e_patch_size")
    if len({r.get("enc") for r in rows}) >= 2:
        out.append("encoder_scaling")
    if len({r.get("dec") for r in rows}) >= 2:
        out.append("decoder_scaling")
    if len({(r.get("lpips_weight"), r.get("gan_weight")) for r in rows}) >= 2:
        out.append("loss_tradeoff")
    if video and len({r["E"] for r in video}) >= 2:
        out.append("video_compressibility")
    return out


def _law(rows: list[dict[str, Any]], x_key: str, label: str) -> tuple[list[str], list[str]]:
    """Fits every measured metric against log2(row[x_key]); returns (lines, verdicts)."""
    lines, verdicts = [], []
    for key, sign, unit in METRICS:
        points = _measured(rows, key)
        if not points:
            continue
        fit = fit_log2([r[x_key] for r in points], [r[key] for r in points])
        if fit is None or fit.r2 is None:
            lines.append(f"{key} vs log2 {label}: {len(points)} point(s) with distinct {label} — R² not meaningful")
            verdicts.append(NO_DATA)
            continue
        right_way = fit.slope * sign > 0
        ok = right_way and fit.r2 >= R2_LAW
        verdicts.append(HOLDS if ok else FAILS)
        trend = "improves" if right_way else "worsens"
        lines.append(f"{key} vs log2 {label}: {fit.describe(unit)} — {key} {trend} with {label}")
    return lines, verdicts


def _combine(verdicts: list[str]) -> str:
    if not verdicts or all(v == NO_DATA for v in verdicts):
        return NO_DATA
    return FAILS if FAILS in verdicts else HOLDS


def _patch_independence(rows: list[dict[str, Any]]) -> tuple[str | None, str]:
    """At equal E, how much PSNR varies with p, against the PSNR gained per doubling of E."""
    points = _measured(rows, "PSNR")
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in points:
        groups.setdefault(r["E"], []).append(r)
    spreads = []
    for e, group in sorted(groups.items()):
        if len({r.get("p") for r in group}) >= 2:
            values = [r["PSNR"] for r in group]
            spreads.append((e, max(values) - min(values), sorted({r.get("p") for r in group})))
    fit = fit_log2([r["E"] for r in points], [r["PSNR"] for r in points])
    if not spreads or fit is None:
        return None, "no two runs share E with different p"
    worst = max(spreads, key=lambda s: s[1])
    per_doubling = abs(fit.slope)
    ok = worst[1] < per_doubling
    text = (f"at equal E, PSNR differs by at most {worst[1]:.2f} dB across p (E = {worst[0]}, p in {worst[2]}), "
            f"against {per_doubling:.2f} dB per doubling of E")
    return (HOLDS if ok else FAILS), text


def _families(rows: list[dict[str, Any]]) -> dict[tuple[Any, Any], list[dict[str, Any]]]:
    """Runs grouped by tokenisation (q, p): the log-E law is checked within each, the p part across them."""
    out: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r.get("q", 1), r.get("p")), []).append(r)
    return out


def e_reconstruction(rows: list[dict[str, Any]], paper: dict[str, Any], media: str = "image") -> Finding:
    subset = [r for r in rows if r.get("media", "image") == media] or rows
    families = _families(subset)
    lines, verdicts = [], []
    for (q, p), family in sorted(families.items(), key=lambda kv: -len(kv[1])):
        label = f"p = {p}" if (q or 1) == 1 else f"q x p = {q}x{p}"
        if len({r["E"] for r in family}) < MIN_POINTS:
            continue
        family_lines, family_verdicts = _law(family, "E", "E")
        lines += [f"{label}: {line}" for line in family_lines]
        verdicts += family_verdicts
    if len(families) > 1:
        lines += [f"all runs ({len(families)} tokenisations together, as the paper fits): {line}"
                  for line in _law(subset, "E", "E")[0]]
    if not verdicts:  # no single tokenisation has 3 values of E: fall back on all runs together
        all_lines, verdicts = _law(subset, "E", "E")
        if len(families) == 1:
            lines = all_lines
    return Finding(
        "e_reconstruction", paper["claim"], paper["paper"], _combine(verdicts),
        f"holds when, within each patch size with >= {MIN_POINTS} values of E, every measured metric moves the "
        f"paper's way with log E (PSNR, SSIM up; LPIPS, rFID down) with R² >= {R2_LAW}; whether p matters at "
        f"equal E is the separate finding e_patch_size", lines,
    )


def e_patch_size(rows: list[dict[str, Any]], paper: dict[str, Any], media: str = "image") -> Finding:
    subset = [r for r in rows if r.get("media", "image") == media] or rows
    verdict, text = _patch_independence(subset)
    return Finding(
        "e_patch_size", paper["claim"], paper["paper"], verdict or NO_DATA,
        "holds when, among runs of equal E and different patch size, PSNR differs by less than the PSNR gained "
        "per doubling of E (the slope of the all-runs log-E fit); needs two runs that share E with different p",
        [text],
    )


def _size_fit(rows: list[dict[str, Any]], x_key: str) -> Fit | None:
    points = _measured(rows, "PSNR")
    return fit_log2([r[x_key] for r in points], [r["PSNR"] for r in points])


def encoder_scaling(rows: list[dict[str, Any]], paper: dict[str, Any]) -> Finding:
    fit = _size_fit(rows, "encoder_params")
    rule = (f"holds when PSNR vs log2(encoder params) has R² < {R2_ENCODER} or PSNR changes by less than "
            f"{ENCODER_DB} dB across the encoder sizes tried; needs >= {MIN_POINTS} runs and >= 2 encoder sizes")
    if fit is None or fit.r2 is None:
        return Finding("encoder_scaling", paper["claim"], paper["paper"], NO_DATA, rule,
                       ["PSNR vs encoder size: too few runs or a single encoder size"])
    xs = [r["encoder_params"] for r in _measured(rows, "PSNR")]
    change = fit.slope * (math.log2(max(xs)) - math.log2(min(xs)))
    ok = fit.r2 < R2_ENCODER or abs(change) < ENCODER_DB
    lines = [f"PSNR vs log2 encoder params: {fit.describe(' dB')}; {change:+.2f} dB from "
             f"{min(xs) / 1e6:.3g}M to {max(xs) / 1e6:.3g}M encoder params"]
    lines += _law(rows, "encoder_params", "encoder params")[0][1:]  # the other metrics, for the record
    return Finding("encoder_scaling", paper["claim"], paper["paper"], HOLDS if ok else FAILS, rule, lines)


def decoder_scaling(rows: list[dict[str, Any]], paper: dict[str, Any]) -> Finding:
    fit = _size_fit(rows, "decoder_params")
    rule = (f"holds when PSNR rises with log2(decoder params) with R² >= {R2_DECODER}; needs >= {MIN_POINTS} runs "
            f"and >= 2 decoder sizes")
    if fit is None or fit.r2 is None:
        return Finding("decoder_scaling", paper["claim"], paper["paper"], NO_DATA, rule,
                       ["PSNR vs decoder size: too few runs or a single decoder size"])
    ok = fit.slope > 0 and fit.r2 >= R2_DECODER
    lines = [f"PSNR vs log2 decoder params: {fit.describe(' dB')}"]
    lines += _law(rows, "decoder_params", "decoder params")[0][1:]
    return Finding("decoder_scaling", paper["claim"], paper["paper"], HOLDS if ok else FAILS, rule, lines)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def loss_tradeoff(rows: list[dict[str, Any]], paper: dict[str, Any]) -> Finding:
    rule = ("holds when the runs with an active perceptual or GAN term have lower mean PSNR and a better "
            "(lower) mean perceptual metric (rFID, else LPIPS) than the runs without; needs both kinds of run "
            "and a perceptual metric")
    on = [r for r in rows if r.get("lpips_active") or (r.get("gan_weight") or 0) > 0]
    off = [r for r in rows if r not in on]
    perceptual = next((k for k in ("rFID", "LPIPS") if _measured(rows, k)), None)
    lines = [f"runs with a perceptual/GAN term active: {len(on)}; without: {len(off)}"]
    inactive = [r["config"] for r in rows if (r.get("lpips_weight") or 0) > 0 and not r.get("lpips_active")]
    if inactive:
        lines.append(f"LPIPS weight set but LPIPS was off (no weights.lpips) in: {', '.join(inactive)}")
    if not on or not off or perceptual is None or not _measured(on, "PSNR") or not _measured(off, "PSNR"):
        if perceptual is None:
            lines.append("no perceptual metric was measured (rFID needs weights.inception, LPIPS weights.lpips)")
        return Finding("loss_tradeoff", paper["claim"], paper["paper"], NO_DATA, rule, lines)
    psnr_on, psnr_off = _mean([r["PSNR"] for r in _measured(on, "PSNR")]), _mean([r["PSNR"] for r in _measured(off, "PSNR")])
    per_on, per_off = _measured(on, perceptual), _measured(off, perceptual)
    if not per_on or not per_off:
        lines.append(f"{perceptual} missing on one side")
        return Finding("loss_tradeoff", paper["claim"], paper["paper"], NO_DATA, rule, lines)
    p_on, p_off = _mean([r[perceptual] for r in per_on]), _mean([r[perceptual] for r in per_off])
    lines.append(f"mean PSNR: {psnr_on:.2f} dB with, {psnr_off:.2f} dB without; mean {perceptual}: "
                 f"{p_on:.4g} with, {p_off:.4g} without")
    ok = psnr_on < psnr_off and p_on < p_off
    return Finding("loss_tradeoff", paper["claim"], paper["paper"], HOLDS if ok else FAILS, rule, lines)


def video_compressibility(rows: list[dict[str, Any]], paper: dict[str, Any]) -> Finding:
    video = [r for r in rows if r.get("media") == "video"]
    image = [r for r in rows if r.get("media", "image") == "image"]
    rule = (f"holds when video PSNR follows log E (rising, R² >= {R2_LAW}) and, where the sweep also has image "
            f"runs, the E that video needs for the image runs' median PSNR is less than {VIDEO_E_RATIO:g}x the "
            f"image E (paper: 4-8x)")
    lines, verdicts = _law(video, "E", "E (video)")
    vfit = _size_fit(video, "E")
    ifit = _size_fit(image, "E")
    if vfit and ifit and vfit.slope > 0 and ifit.slope > 0 and _measured(image, "PSNR"):
        values = sorted(r["PSNR"] for r in _measured(image, "PSNR"))
        target = values[len(values) // 2]
        log_ratio = (target - vfit.intercept) / vfit.slope - (target - ifit.intercept) / ifit.slope
        ratio = 2.0 ** log_ratio
        lines.append(f"at PSNR {target:.2f} dB video needs {ratio:.3g}x the image E (from the two log-E fits)")
        verdicts.append(HOLDS if ratio < VIDEO_E_RATIO else FAILS)
    else:
        lines.append("no image runs with a rising PSNR fit to compare against: the E ratio is not measured")
    return Finding("video_compressibility", paper["claim"], paper["paper"], _combine(verdicts), rule, lines)


def judge_findings(rows: list[dict[str, Any]], study: str = "", paper: dict[str, Any] | None = None) -> list[Finding]:
    paper = paper or load_paper()
    rows = _ok(rows)
    out = []
    for fid in covered(rows, study):
        media = "video" if study == "video_e_sweep" else "image"
        if fid == "e_reconstruction":
            out.append(e_reconstruction(rows, paper[fid], media))
        elif fid == "e_patch_size":
            out.append(e_patch_size(rows, paper[fid], media))
        elif fid == "encoder_scaling":
            out.append(encoder_scaling(rows, paper[fid]))
        elif fid == "decoder_scaling":
            out.append(decoder_scaling(rows, paper[fid]))
        elif fid == "loss_tradeoff":
            out.append(loss_tradeoff(rows, paper[fid]))
        elif fid == "video_compressibility":
            out.append(video_compressibility(rows, paper[fid]))
    return out


def findings_markdown(findings: list[Finding], sweep: str, study: str = "", n_runs: int = 0, n_ok: int = 0) -> str:
    head = [f"# Findings: sweep `{sweep}`" + (f" (study `{study}`)" if study else ""), ""]
    head.append(f"{n_ok} of {n_runs} configs finished and are used below. Fits are least squares of the metric "
                f"against log2 of the x quantity; R² is reported only with >= {MIN_POINTS} points.")
    head.append("")
    if findings:
        head.append("| finding | verdict |")
        head.append("|---|---|")
        head += [f"| {f.id} | **{f.verdict}** |" for f in findings]
        head.append("")
    else:
        head += ["This sweep covers none of the paper's findings (nothing it varies matches one).", ""]
    body = []
    for f in findings:
        body += [f"## {f.id}: {f.verdict}", "", f"- Paper: {f.claim.rstrip('.')} (paper: {f.paper})."]
        body += ["- Measured:"] + [f"  - {line}" for line in f.measured]
        body += [f"- Verdict: **{f.verdict}**. Rule: {f.rule.rstrip('.')}.", ""]
    body += ["Not covered by any sweep here: e_generation (generation quality needs a generator trained on the "
             "latents; this workflow measures reconstruction).", ""]
    return "\n".join(head + body)

"""The reconstruction findings' verdicts (holds / does not hold / inconclusive) on known rows, their report,
and the plots with their error bars. Pure and fast."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from scipy import stats

from tests.report_rows import E_ROWS, row, with_ci
from workflows.reports.findings import (
    FAILS, HOLDS, INCONCLUSIVE, NO_DATA, covered, findings_markdown, judge_findings, load_paper,
)
from workflows.reports.fits import Z95, fit_rows
from workflows.reports.plots import _scatter_with_fit, family_label, make_plots


def test_e_sweep_holds_when_psnr_and_ssim_rise_with_log_e():
    law, patch = judge_findings([with_ci(r, 0.3) for r in E_ROWS], "e_sweep")
    assert (law.id, law.verdict) == ("e_reconstruction", HOLDS)
    text = "\n".join(law.measured)
    assert "p = 8: PSNR vs log2 E" in text and "R² = 1.00" in text  # within p = 8: c4, c16, c64
    assert "[95% CI +0.8" in text  # slope 0.975 dB per doubling, +-0.17 from the runs' +-0.3 dB
    assert "all runs (2 tokenisations together" in text
    assert (patch.id, patch.verdict) == ("e_patch_size", HOLDS)
    gap = "E = 1024: p = 8 20.70 dB vs p = 16 20.20 dB: gap 0.50 dB [95% CI 0.08, 0.92 dB]"
    assert gap in "\n".join(patch.measured)


def test_patch_size_gap_compares_the_means_of_seed_replicates():
    # two seeds per (p, E): picking the single best and worst run would make the p = 8 / p = 16 gap at E = 1024
    # 1.0 dB; the means are 0.5 dB apart, with the seeds' spread (sd 0.35 dB, 4 dof) in the interval
    rows = []
    for r in E_ROWS:
        design = f"{r.p}-{r.E}"
        rows += [with_ci(replace(r, config=f"{r.config}s{s}", PSNR=r.PSNR + d, seed=s, design=design), 0.2)
                 for s, d in ((0, 0.25), (1, -0.25))]
    patch = judge_findings(rows, "e_sweep")[1]
    (line,) = [m for m in patch.measured if m.startswith("E = 1024")]
    assert "p = 8 20.70 dB (mean of 2 runs) vs p = 16 20.20 dB (mean of 2 runs): gap 0.50 dB" in line
    low, high = (float(v) for v in line.split("[95% CI ")[1].split(" dB]")[0].split(", "))
    # each mean: its runs' evaluation noise (their intervals already carry their small-sample widening, so the
    # normal quantile) + the seeds' noise (Student's t on the replicates' 4 dof): each widened once
    evaluation, seeds = 2 * (2 * (0.2 / Z95) ** 2 / 4), 2 * (0.125 / 2)
    half = math.sqrt(Z95**2 * evaluation + stats.t.ppf(0.975, 4) ** 2 * seeds)
    assert (high - low) / 2 == pytest.approx(half, abs=0.01)


def test_e_reconstruction_is_inconclusive_when_the_slope_interval_includes_zero():
    noisy = [with_ci(r, 3.0) for r in E_ROWS]  # +-3 dB per run: the 0.975 dB/doubling slope is not sure
    law = judge_findings(noisy, "e_sweep")[0]
    assert law.verdict == INCONCLUSIVE and "the slope's interval includes 0" in "\n".join(law.measured)
    bent = [replace(r, PSNR=v, SSIM=None) for r, v in zip(E_ROWS[:3], (18.0, 21.9, 22.0))]  # surely rising, R² 0.78
    law = judge_findings([with_ci(r, 0.1) for r in bent], "e_sweep")[0]
    assert law.verdict == FAILS and "R² is surely below 0.9" in law.measured[0]
    # R² 0.88 with +-0.6 dB runs: R²'s interval straddles 0.9
    law = judge_findings([with_ci(replace(r, PSNR=v, SSIM=None), 0.6) for r, v in zip(E_ROWS[:3], (18.0, 21.2, 22.0))],
                         "e_sweep")[0]
    assert law.verdict == INCONCLUSIVE and "R²'s interval straddles 0.9" in law.measured[0], law.measured


def test_patch_size_matters_is_reported_apart_from_the_log_e_law():
    rows = [with_ci(replace(r, PSNR=r.PSNR - 4.0) if r.p == 16 else r, 0.3) for r in E_ROWS]
    law, patch = judge_findings(rows, "e_sweep")
    assert law.verdict == HOLDS and patch.verdict == FAILS
    assert judge_findings(E_ROWS[:3], "e_sweep")[1].verdict == NO_DATA  # no two p share an E
    # a 0.5 dB gap against ~1 dB per doubling, each run +-0.8 dB: the gap's interval straddles the threshold
    assert judge_findings([with_ci(r, 0.8) for r in E_ROWS], "e_sweep")[1].verdict == INCONCLUSIVE


def test_e_sweep_fails_when_psnr_falls_and_needs_three_points():
    falling = [with_ci(r, 0.2) for r in (row("a", 256, 22.0), row("b", 1024, 21.0), row("c", 4096, 20.1))]
    assert judge_findings(falling, "e_sweep")[0].verdict == FAILS
    assert judge_findings([replace(r, p=p) for r, p in zip(falling, (8, 16, 32))], "e_sweep")[0].verdict == FAILS
    assert judge_findings(falling[:2], "e_sweep")[0].verdict == NO_DATA
    failed = [replace(r, status="failed: boom") for r in falling[1:]]
    assert judge_findings([falling[0], *failed], "e_sweep")[0].verdict == NO_DATA  # failed runs are not data


def test_encoder_and_decoder_scaling():
    # two seeds per size: rows of one size share a design, so their spread is the run-to-run noise
    enc = [row("n0", 1024, 20.70, enc="N", enc_p=1e5, design="N"),
           row("n1", 1024, 20.60, enc="N", enc_p=1e5, design="N"),
           row("t0", 1024, 20.72, enc="T", enc_p=4e5, design="T"),
           row("t1", 1024, 20.58, enc="T", enc_p=4e5, design="T")]
    (finding,) = judge_findings([with_ci(r, 0.1) for r in enc], "encoder_scaling")
    assert finding.verdict == HOLDS
    (change,) = [line for line in finding.measured if line.startswith("PSNR change")]
    measured, low, high = (float(v) for v in re.findall(r"[-+]?\d+\.\d+", change.split("params: ")[1]))
    # the change is the difference of the two sizes' means: the runs' +-0.1 dB (normal quantile: already widened)
    # and the seeds' pooled variance (Student's t on 2 dof), each widened once
    seeds = (np.var([20.70, 20.60], ddof=1) + np.var([20.72, 20.58], ddof=1)) / 2
    half = math.sqrt(Z95**2 * 4 * (0.1 / Z95) ** 2 / 4 + stats.t.ppf(0.975, 2) ** 2 * seeds)
    assert measured == pytest.approx(0.0, abs=0.005)  # the value, not how a rounded zero prints
    assert (low, high) == (pytest.approx(-half, abs=0.006), pytest.approx(half, abs=0.006))
    assert judge_findings([with_ci(r, 0.6) for r in enc], "encoder_scaling")[0].verdict == INCONCLUSIVE
    dec = [row("n0", 1024, 20.7, dec="N", dec_p=1e5, design="N"), row("n1", 1024, 20.6, dec="N", dec_p=1e5, design="N"),
           row("t0", 1024, 21.6, dec="T", dec_p=4e5, design="T"), row("t1", 1024, 21.5, dec="T", dec_p=4e5, design="T")]
    assert judge_findings([with_ci(r, 0.1) for r in dec], "decoder_scaling")[0].verdict == HOLDS
    assert judge_findings([replace(r, PSNR=42 - r.PSNR) for r in dec], "decoder_scaling")[0].verdict == FAILS
    seeds_disagree = [replace(r, PSNR=r.PSNR + (1.5 if r.config.endswith("0") else -1.5)) for r in dec]
    assert judge_findings(seeds_disagree, "decoder_scaling")[0].verdict == INCONCLUSIVE
    big_encoder_effect = [replace(r, encoder_params=r.decoder_params, enc=r.dec) for r in dec]
    assert judge_findings(big_encoder_effect, "encoder_scaling")[0].verdict == FAILS


def test_loss_tradeoff_needs_an_active_term_and_a_perceptual_metric():
    off = row("mse", 1024, 21.0, LPIPS=0.30)
    lpips_unset = row("lpips1", 1024, 20.9, LPIPS=None, lpips_weight=1.0, lpips_active=False)
    (finding,) = judge_findings([off, lpips_unset], "loss_tradeoff")
    assert finding.verdict == NO_DATA
    assert any("LPIPS was off" in line for line in finding.measured)
    on = row("lpips1", 1024, 20.5, LPIPS=0.20, lpips_weight=1.0, lpips_active=True)
    gan = row("gan", 1024, 20.1, LPIPS=0.15, lpips_weight=1.0, lpips_active=True, gan_weight=0.05)
    measured = [with_ci(replace(r, LPIPS_lo=r.LPIPS - 0.01, LPIPS_hi=r.LPIPS + 0.01), 0.1) for r in (off, on, gan)]
    assert judge_findings(measured, "loss_tradeoff")[0].verdict == HOLDS
    assert judge_findings([measured[0], with_ci(replace(measured[1], PSNR=21.5), 0.1)],
                          "loss_tradeoff")[0].verdict == FAILS
    # the same runs without intervals (and one seed each): nothing measured how sure the differences are
    (unsure,) = judge_findings([off, on, gan], "loss_tradeoff")
    assert unsure.verdict == INCONCLUSIVE and "[no interval" in "\n".join(unsure.measured)


def test_video_e_ratio_from_the_two_fits():
    # image: PSNR = 2 log2 E; video: PSNR = 2 log2 E - 4 -> video needs 2^2 = 4x the image E, against 8 frames
    image = [with_ci(row(f"i{e}", e, 2 * math.log2(e)), 0.2) for e in (256, 1024, 4096)]
    video = [with_ci(row(f"v{e}", e, 2 * math.log2(e) - 4, media="video", frames=8, q=2), 0.2)
             for e in (512, 2048, 8192)]
    findings = judge_findings(image + video, "video_e_sweep")
    assert [f.id for f in findings] == ["e_reconstruction", "e_patch_size", "video_compressibility"]
    findings = [f for f in findings if f.id != "e_patch_size"]
    assert all(f.verdict == HOLDS for f in findings)
    (ratio,) = [line for line in findings[1].measured if "needs" in line]
    assert "needs 4x the image E [95% CI 3." in ratio and "against 8x — holds" in ratio
    # video 2.6 doublings of E behind: 6x, and with +-1.5 dB per run the ratio's interval straddles 8x
    behind = [with_ci(replace(r, PSNR=r.PSNR - 1.2), 1.5) for r in video]
    verdict = judge_findings(image + behind, "video_e_sweep")[2]
    assert verdict.verdict == INCONCLUSIVE


def test_video_e_ratio_is_unbounded_when_the_video_line_may_not_rise():
    # video gains 0.3 dB per doubling, +-1.5 dB per run: in more than 2.5% of the redrawn fits its line does not
    # rise, so no E reaches the PSNR and the interval is open above (interpolating two such draws gave nan)
    image = [with_ci(row(f"i{e}", e, 2 * math.log2(e)), 0.2) for e in (256, 1024, 4096)]
    video = [with_ci(row(f"v{e}", e, 0.3 * math.log2(e) + 14.5, media="video", frames=8, q=2), 1.5)
             for e in (512, 2048, 8192)]
    finding = judge_findings(image + video, "video_e_sweep")[2]
    (ratio,) = [line for line in finding.measured if "needs" in line]
    assert "unbounded] against 8x" in ratio and "nan" not in ratio
    assert finding.verdict == INCONCLUSIVE  # 4.3x, and the interval reaches from below 8x to unbounded


def test_video_e_ratio_is_not_extrapolated_beyond_the_measured_psnr():
    image = [with_ci(row(f"i{e}", e, 2 * math.log2(e) + 12), 0.2) for e in (256, 1024, 4096)]  # 28-36 dB
    video = [with_ci(row(f"v{e}", e, math.log2(e) + 10, media="video", frames=8, q=2), 0.2)
             for e in (512, 2048, 8192)]  # 19-23 dB: no PSNR both reach
    finding = judge_findings(image + video, "video_e_sweep")[2]
    assert any("would be an extrapolation; not measured" in line for line in finding.measured)
    assert not any("needs" in line for line in finding.measured)
    assert finding.verdict == INCONCLUSIVE  # the video law holds here, but the ratio is the claim


def test_patch_size_across_tubelets_for_video():
    video = [with_ci(row(f"q{q}c{c}", 2048, v, media="video", frames=8, q=q), 0.2)
             for q, c, v in ((1, 4, 25.0), (2, 8, 25.3), (4, 16, 24.9))]
    video += [with_ci(row(f"q2e{e}", e, v, media="video", frames=8, q=2), 0.2) for e, v in ((512, 22.0), (8192, 28.6))]
    patch = judge_findings(video, "video_e_sweep")[1]
    assert patch.id == "e_patch_size" and patch.verdict == HOLDS
    assert "E = 2048: q x p = 2x8 25.30 dB vs q x p = 4x8 24.90 dB: gap 0.40 dB" in "\n".join(patch.measured)


def test_coverage_is_inferred_without_a_study():
    assert covered(E_ROWS) == ["e_reconstruction", "e_patch_size"]
    assert covered([row("a", 1024, 1, dec="N"), row("b", 1024, 1, dec="T")]) == ["decoder_scaling"]


def test_findings_markdown_quotes_paper_measurement_rule_n_and_intervals():
    rows = [with_ci(replace(r, seed=0, c=4, units=6), 0.3) for r in E_ROWS]
    findings = judge_findings(rows, "e_sweep")
    text = findings_markdown(findings, "e-sweep-tiny", "e_sweep", 4, 4, rows)
    paper = load_paper()["e_reconstruction"]
    assert "## e_reconstruction: holds (1 seed: training noise not measured)" in text
    assert paper["paper"] in text and "Rule:" in text and "interval lies above 0.9" in text
    assert "inconclusive when the slope's interval includes 0" in text
    assert "## e_patch_size: holds" in text
    assert "| e_reconstruction | **holds (1 seed: training noise not measured)** |" in text
    assert "| config | E | tokens | c | enc-dec | seed | n (units) | PSNR [95% CI] | SSIM [95% CI] |" in text
    assert "| c4 | 256 | p = 8 | 4 | N-N | 0 | 96 (6) | 18.60 [18.30, 18.90] | 0.5000 [0.4940, 0.5060] |" in text
    assert "Not covered by any sweep here: e_generation" in text and "`generation:` block" in text


def test_plots_are_png_files(tmp_path):
    rows = E_ROWS + [replace(E_ROWS[0], config="x", LPIPS=0.3, PSNR=17.0),
                     replace(E_ROWS[1], config="bad", status="failed: x")]
    paths = make_plots(rows, tmp_path / "plots")
    names = sorted(p.name for p in paths)
    assert names == ["metrics_vs_E.png", "psnr_vs_lpips.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_plots_and_fit_metrics_only_for_what_the_sweep_varies(tmp_path):
    from workflows.reports.publish import fit_metrics

    # an e_sweep at one encoder/decoder size: the p = 16 run's pixel head gives it other parameter counts, but
    # no size varies, so no metric-vs-encoder/decoder plot or fit
    e_sweep = [replace(r, encoder_params=1e5 * r.p, decoder_params=2e5 * r.p) for r in E_ROWS]
    assert [p.name for p in make_plots(e_sweep, tmp_path / "e")] == ["metrics_vs_E.png"]
    assert any("vs_log2_E" in key for key in fit_metrics(e_sweep))
    assert not any("enc_params" in key or "dec_params" in key for key in fit_metrics(e_sweep))
    # an encoder study at a single E: no E plot or fit
    encoders = [row(f"e{k}", 1024, 20.0 + k / 10, enc=enc, enc_p=p) for k, (enc, p) in
                enumerate((("N", 1e5), ("S", 2e5), ("B", 4e5)))]
    assert [p.name for p in make_plots(encoders, tmp_path / "enc")] == ["metrics_vs_encoder.png"]
    assert not any("vs_log2_E" in key for key in fit_metrics(encoders))


def test_plot_points_carry_their_intervals_as_error_bars():
    rows = [with_ci(r, 0.3) for r in E_ROWS]
    fig, ax = plt.subplots()
    _scatter_with_fit(ax, rows, "E", "PSNR", "E", family_label)
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    spans = sorted(tuple(np.round(seg[:, 1], 3)) for c in bars for seg in c.lines[2][0].get_segments())
    assert spans == sorted((round(r.PSNR_lo, 3), round(r.PSNR_hi, 3)) for r in rows)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("p=8: +0.975 [+0.8") and "R²=1.00" in t for t in legend)
    assert any(t.startswith("all runs:") for t in legend)
    plt.close(fig)


def test_fit_rows_reads_intervals_and_designs():
    rows = [with_ci(r, 0.3) for r in E_ROWS[:3]]
    assert fit_rows(rows, "E", "PSNR").slope_low is not None
    assert fit_rows(E_ROWS[:3], "E", "PSNR").slope_low is None


def test_summary_rows_carry_n_intervals_and_the_design_seed_replicates_share():
    from workflows.config import TrainConfig
    from workflows.sweeps.planning import plan_from_input
    from workflows.sweeps.summary import summary_row
    from workflows.tracking import RunResult

    def plan(name, seed, channels=4):
        config = TrainConfig.from_dict({"name": name, "model": {"variant": "T-T/4", "channels": channels},
                                        "train": {"seed": seed}})
        return plan_from_input(config, 1, 64)

    metrics = {"eval_samples": 96.0, "eval_psnr": 24.0, "eval_psnr_ci_low": 23.6, "eval_psnr_ci_high": 24.5,
               "eval_ssim": 0.72, "eval_ssim_ci_low": 0.70, "eval_ssim_ci_high": 0.74}
    row = summary_row(plan("a", 0), RunResult("r1", metrics, 60.0))
    assert (row.n, row.PSNR, row.PSNR_lo, row.PSNR_hi) == (96, 24.0, 23.6, 24.5)
    assert (row.SSIM_lo, row.SSIM_hi, row.LPIPS, row.LPIPS_lo) == (0.70, 0.74, None, None)
    assert (row.frames, row.seed, row.E) == (1, 0, 1024)
    assert summary_row(plan("b", 1), None, "boom").design == row.design  # another seed: a replicate
    assert summary_row(plan("c", 0, channels=16), None, "boom").design != row.design
    assert summary_row(plan("d", 0), None, "boom").n is None
    assert "SWD" not in row.columns()  # no probe in the sweep: no generation columns

    generation = RunResult("g1", {"gen_swd": 31.0, "gen_swd_ci_low": 29.0, "gen_swd_ci_high": 33.5,
                                  "gen_samples": 64.0, "gen_fid": 12.0})
    probed = summary_row(plan("a", 0), RunResult("r1", metrics, 60.0), probed=True, generation=generation,
                         generator="DiT-N/1")
    assert (probed.generator, probed.gen_n, probed.SWD, probed.SWD_lo, probed.SWD_hi) == (
        "DiT-N/1", 64, 31.0, 29.0, 33.5)
    assert (probed.gFID, probed.gFVD, probed.gen_status, probed.gen_run_id) == (12.0, None, "finished", "g1")
    failed = summary_row(plan("a", 0), RunResult("r1", metrics, 60.0), probed=True, generation_error="disk full",
                         generator="DiT-N/1")
    assert (failed.gen_status, failed.SWD, failed.generator) == ("failed: disk full", None, None)
    assert list(failed.columns()) == list(probed.columns())  # one set of columns, so the CSV has one header
    # the table's columns, in the order summary.csv has always had them
    assert list(probed.columns()) == [
        "config", "variant", "enc", "dec", "media", "p", "q", "L", "c", "E", "params_M", "encoder_params",
        "decoder_params", "GMACs", "stage", "lpips_weight", "lpips_active", "gan_weight", "frames", "seed", "design",
        "n", "units", "PSNR", "PSNR_lo", "PSNR_hi", "SSIM", "SSIM_lo", "SSIM_hi", "LPIPS", "LPIPS_lo", "LPIPS_hi",
        "rFID", "rFVD", "wall_s", "status", "note", "run_id", "generator", "gen_n", "SWD", "SWD_lo", "SWD_hi",
        "gFID", "gFVD", "gen_status", "gen_run_id"]


def test_no_metrics_no_plots(tmp_path):
    assert make_plots([row("a", 256, None)], tmp_path) == []


def test_zero_width_intervals_are_never_sure():
    """Three runs whose intervals have zero width (one validation unit each, no seed replicates) measured no
    uncertainty: every rule says inconclusive with the reason, and the report says "surely" nowhere."""
    flat = [with_ci(r, 0.0, n=1) for r in E_ROWS[:3]]
    law = judge_findings(flat, "e_sweep")[0]
    assert law.verdict == INCONCLUSIVE and "no interval was measured" in law.measured[0]
    dec = [with_ci(row(f"d{k}", 1024, 20.0 + k, dec=d, dec_p=p), 0.0, n=1)
           for k, (d, p) in enumerate((("N", 1e5), ("S", 2e5), ("B", 4e5)))]
    (decoder,) = judge_findings(dec, "decoder_scaling")
    assert decoder.verdict == INCONCLUSIVE
    enc = [replace(r, encoder_params=r.decoder_params, enc=r.dec, PSNR=20.0 + k / 20) for k, r in enumerate(dec)]
    assert judge_findings(enc, "encoder_scaling")[0].verdict == INCONCLUSIVE
    text = findings_markdown([law, decoder], "flat", "", 3, 3, flat)
    assert "surely improves" not in text and "R² surely above" not in text and "**holds" not in text


def test_a_rounded_zero_prints_without_a_sign():
    from workflows.reports.numbers import signed

    assert [signed(v, "+.2f") for v in (-0.001, 0.001, 0.0, -0.0)] == ["0.00"] * 4
    assert signed(-0.0) == "0" and signed(0.3, "+.2f") == "+0.30" and signed(-0.3, "+.1%") == "-30.0%"
    assert signed(-0.0004, "+.1%") == "0.0%"
    assert "per doubling" in fit_rows(E_ROWS[:3], "E", "PSNR").describe() and not fit_rows(
        [replace(r, PSNR=20.0) for r in E_ROWS[:3]], "E", "PSNR").describe().startswith(("-0", "+0"))

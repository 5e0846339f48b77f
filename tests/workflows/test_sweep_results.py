"""Fits (exact on synthetic data), the findings' verdicts, and the plots as PNG files. Pure and fast."""

from __future__ import annotations

import math

import pytest

from workflows.reports.findings import FAILS, HOLDS, NO_DATA, covered, judge_findings, findings_markdown, load_paper
from workflows.reports.fits import fit_log2
from workflows.reports.plots import make_plots


def test_fit_is_exact_on_a_log_law():
    es = [256, 1024, 4096, 16384]
    fit = fit_log2(es, [1.5 * math.log2(e) + 7.0 for e in es])
    assert fit.slope == pytest.approx(1.5) and fit.intercept == pytest.approx(7.0)
    assert fit.r2 == pytest.approx(1.0) and fit.n == 4
    assert fit.predict(2048) == pytest.approx(1.5 * 11 + 7)


def test_fit_r2_on_known_residuals():
    # x = 2, 4, 8 (log2: 1, 2, 3), y = 1, 3, 2: slope 0.5, intercept 1, residuals (-.5, 1, -.5) -> SSR 1.5, SST 2
    fit = fit_log2([2, 4, 8], [1, 3, 2])
    assert (fit.slope, fit.intercept) == (pytest.approx(0.5), pytest.approx(1.0))
    assert fit.r2 == pytest.approx(1 - 1.5 / 2)


def test_fit_with_too_few_points_reports_no_r2():
    assert fit_log2([2, 4], [1.0, 2.0]).r2 is None
    assert fit_log2([4], [1.0]) is None
    assert fit_log2([4, 4, 4], [1.0, 2.0, 3.0]) is None  # x does not vary
    fit = fit_log2([2, 4, None, 8], [1.0, 2.0, 5.0, None])  # missing values are dropped
    assert fit.n == 2 and fit.r2 is None


def row(name, E, psnr, ssim=None, p=8, enc="N", dec="N", enc_p=1e5, dec_p=1e5, media="image", **extra):
    return {"config": name, "E": E, "PSNR": psnr, "SSIM": ssim, "p": p, "enc": enc, "dec": dec,
            "encoder_params": enc_p, "decoder_params": dec_p, "media": media, "status": "finished",
            "lpips_weight": 0.0, "lpips_active": False, "gan_weight": 0.0, **extra}


E_ROWS = [row("c4", 256, 18.6, 0.50), row("c16", 1024, 20.7, 0.62), row("c64", 4096, 22.5, 0.72),
          row("p16", 1024, 20.2, 0.60, p=16)]


def test_e_sweep_holds_when_psnr_and_ssim_rise_with_log_e():
    law, patch = judge_findings(E_ROWS, "e_sweep")
    assert (law.id, law.verdict) == ("e_reconstruction", HOLDS)
    text = "\n".join(law.measured)
    assert "p = 8: PSNR vs log2 E" in text and "R² = 1.00" in text  # within p = 8: c4, c16, c64
    assert "all runs (2 tokenisations together" in text
    assert (patch.id, patch.verdict) == ("e_patch_size", HOLDS)
    assert "at equal E, PSNR differs by at most 0.50 dB" in patch.measured[0]


def test_patch_size_matters_is_reported_apart_from_the_log_e_law():
    rows = [dict(r, PSNR=r["PSNR"] - 4.0) if r["p"] == 16 else r for r in E_ROWS]
    law, patch = judge_findings(rows, "e_sweep")
    assert law.verdict == HOLDS and patch.verdict == FAILS
    assert judge_findings(E_ROWS[:3], "e_sweep")[1].verdict == NO_DATA  # no two p share an E


def test_e_sweep_fails_when_psnr_falls_and_needs_three_points():
    falling = [row("a", 256, 22.0), row("b", 1024, 21.0), row("c", 4096, 20.1)]
    assert judge_findings(falling, "e_sweep")[0].verdict == FAILS
    assert judge_findings([dict(r, p=p) for r, p in zip(falling, (8, 16, 32))], "e_sweep")[0].verdict == FAILS
    assert judge_findings(falling[:2], "e_sweep")[0].verdict == NO_DATA
    failed = [dict(r, status="failed: boom") for r in falling[1:]]
    assert judge_findings([falling[0], *failed], "e_sweep")[0].verdict == NO_DATA  # failed runs are not data


def test_encoder_and_decoder_scaling():
    enc = [row("n0", 1024, 20.70, enc="N", enc_p=1e5), row("n1", 1024, 20.60, enc="N", enc_p=1e5),
           row("t0", 1024, 20.72, enc="T", enc_p=4e5), row("t1", 1024, 20.58, enc="T", enc_p=4e5)]
    (finding,) = judge_findings(enc, "encoder_scaling")
    assert finding.verdict == HOLDS
    dec = [row("n0", 1024, 20.7, dec="N", dec_p=1e5), row("n1", 1024, 20.6, dec="N", dec_p=1e5),
           row("t0", 1024, 21.6, dec="T", dec_p=4e5), row("t1", 1024, 21.5, dec="T", dec_p=4e5)]
    assert judge_findings(dec, "decoder_scaling")[0].verdict == HOLDS
    assert judge_findings([dict(r, PSNR=42 - r["PSNR"]) for r in dec], "decoder_scaling")[0].verdict == FAILS
    big_encoder_effect = [dict(r, encoder_params=r["decoder_params"], enc=r["dec"]) for r in dec]
    assert judge_findings(big_encoder_effect, "encoder_scaling")[0].verdict == FAILS


def test_loss_tradeoff_needs_an_active_term_and_a_perceptual_metric():
    off = row("mse", 1024, 21.0, LPIPS=0.30)
    lpips_unset = row("lpips1", 1024, 20.9, LPIPS=None, lpips_weight=1.0, lpips_active=False)
    (finding,) = judge_findings([off, lpips_unset], "loss_tradeoff")
    assert finding.verdict == NO_DATA
    assert any("LPIPS was off" in line for line in finding.measured)
    on = row("lpips1", 1024, 20.5, LPIPS=0.20, lpips_weight=1.0, lpips_active=True)
    gan = row("gan", 1024, 20.1, LPIPS=0.15, lpips_weight=1.0, lpips_active=True, gan_weight=0.05)
    assert judge_findings([off, on, gan], "loss_tradeoff")[0].verdict == HOLDS
    assert judge_findings([off, dict(on, PSNR=21.5)], "loss_tradeoff")[0].verdict == FAILS


def test_video_e_ratio_from_the_two_fits():
    # image: PSNR = 2 log2 E; video: PSNR = 2 log2 E - 4 -> video needs 2^2 = 4x the image E
    image = [row(f"i{e}", e, 2 * math.log2(e)) for e in (256, 1024, 4096)]
    video = [row(f"v{e}", e, 2 * math.log2(e) - 4, media="video") for e in (512, 2048, 8192)]
    findings = judge_findings(image + video, "video_e_sweep")
    assert [f.id for f in findings] == ["e_reconstruction", "e_patch_size", "video_compressibility"]
    findings = [f for f in findings if f.id != "e_patch_size"]
    assert all(f.verdict == HOLDS for f in findings)
    assert any("needs 4x the image E" in line for line in findings[1].measured)


def test_coverage_is_inferred_without_a_study():
    assert covered(E_ROWS) == ["e_reconstruction", "e_patch_size"]
    assert covered([row("a", 1024, 1, dec="N"), row("b", 1024, 1, dec="T")]) == ["decoder_scaling"]


def test_findings_markdown_quotes_paper_measurement_and_rule():
    findings = judge_findings(E_ROWS, "e_sweep")
    text = findings_markdown(findings, "e-sweep-tiny", "e_sweep", 4, 4)
    paper = load_paper()["e_reconstruction"]
    assert "## e_reconstruction: holds" in text
    assert paper["paper"] in text and "Rule:" in text and "R² >= 0.7" in text
    assert "## e_patch_size: holds" in text
    assert "| e_reconstruction | **holds** |" in text


def test_plots_are_png_files(tmp_path):
    rows = E_ROWS + [dict(E_ROWS[0], config="x", LPIPS=0.3, PSNR=17.0), dict(E_ROWS[1], config="bad", status="failed: x")]
    paths = make_plots(rows, tmp_path / "plots")
    names = sorted(p.name for p in paths)
    assert names == ["metrics_vs_E.png", "metrics_vs_decoder.png", "metrics_vs_encoder.png", "psnr_vs_lpips.png"]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000


def test_no_metrics_no_plots(tmp_path):
    assert make_plots([row("a", 256, None)], tmp_path) == []

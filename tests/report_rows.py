"""Summary rows of a sweep, as the findings and plots read them, for the report tests: one run's row, the row
with symmetric 95% intervals, and a small e_sweep (p = 8 at three E, one p = 16 run at E = 1024)."""

from __future__ import annotations

from dataclasses import replace

from workflows.sweeps.summary import SummaryRow


def row(name, E, psnr, ssim=None, p=8, enc="N", dec="N", enc_p=1e5, dec_p=1e5, media="image", **extra):
    return SummaryRow(config=name, E=E, PSNR=psnr, SSIM=ssim, p=p, enc=enc, dec=dec, encoder_params=enc_p,
                      decoder_params=dec_p, media=media, **extra)


def with_ci(r, half, n=96):
    """The row with its PSNR (and SSIM) carrying a symmetric 95% interval of +-half (SSIM: +-half/50)."""
    out = replace(r, n=n, PSNR_lo=r.PSNR - half, PSNR_hi=r.PSNR + half)
    if r.SSIM is not None:
        out = replace(out, SSIM_lo=r.SSIM - half / 50, SSIM_hi=r.SSIM + half / 50)
    return out


E_ROWS = [row("c4", 256, 18.6, 0.50), row("c16", 1024, 20.7, 0.62), row("c64", 4096, 22.5, 0.72),
          row("p16", 1024, 20.2, 0.60, p=16)]

"""The sweep's plots as PNG files (matplotlib, Agg backend: no display needed).

- `metrics_vs_E.png`: each measured reconstruction metric against log2 E, points marked by patch size,
  with the least-squares line and its R².
- `metrics_vs_encoder.png`, `metrics_vs_decoder.png`: the same against encoder / decoder parameters.
- `psnr_vs_rfid.png` (or `psnr_vs_lpips.png` when rFID is off): the distortion-perception trade-off.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from workflows.reports.findings import METRICS  # noqa: E402
from workflows.reports.fits import fit_log2  # noqa: E402


def _finished(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if str(r.get("status", "finished")) == "finished"]


def _measured_metrics(rows: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
    return [m for m in METRICS if any(r.get(m[0]) is not None for r in rows)]


def _scatter_with_fit(ax, rows: list[dict[str, Any]], x_key: str, metric: str, xlabel: str, group_key: str) -> None:
    points = [r for r in rows if r.get(metric) is not None and r.get(x_key)]
    groups = sorted({str(r.get(group_key)) for r in points})
    for group in groups:
        sub = [r for r in points if str(r.get(group_key)) == group]
        ax.scatter([r[x_key] for r in sub], [r[metric] for r in sub], label=f"{group_key}={group}", zorder=3)
    for r in points:
        ax.annotate(str(r.get("config", "")), (r[x_key], r[metric]), fontsize=6, alpha=0.7,
                    xytext=(3, 3), textcoords="offset points")
    fit = fit_log2([r[x_key] for r in points], [r[metric] for r in points])
    title = metric
    if fit is not None:
        xs = np.geomspace(min(r[x_key] for r in points), max(r[x_key] for r in points), 50)
        r2 = f"R²={fit.r2:.2f}" if fit.r2 is not None else "R² n/a (<3 pts)"
        ax.plot(xs, fit.predict(xs), "--", color="gray", label=f"fit: {fit.slope:+.3g}/doubling, {r2}")
        title = f"{metric}  ({r2})"
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    if points:
        ax.legend(fontsize=6)


def plot_metrics_vs(rows: list[dict[str, Any]], x_key: str, xlabel: str, path: Path, group_key: str = "p") -> bool:
    """One panel per measured metric; False (and no file) when nothing was measured."""
    rows = _finished(rows)
    metrics = _measured_metrics(rows)
    if not metrics:
        return False
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, (metric, _, _) in zip(axes[0], metrics):
        _scatter_with_fit(ax, rows, x_key, metric, xlabel, group_key)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_tradeoff(rows: list[dict[str, Any]], folder: Path) -> Path | None:
    """PSNR vs rFID, or vs LPIPS when rFID is off; None when neither was measured."""
    rows = [r for r in _finished(rows) if r.get("PSNR") is not None]
    perceptual = next((k for k in ("rFID", "LPIPS") if any(r.get(k) is not None for r in rows)), None)
    if perceptual is None:
        return None
    points = [r for r in rows if r.get(perceptual) is not None]
    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    ax.scatter([r[perceptual] for r in points], [r["PSNR"] for r in points], zorder=3)
    for r in points:
        ax.annotate(str(r.get("config", "")), (r[perceptual], r["PSNR"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    ax.set_xlabel(f"{perceptual} (lower is better)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"PSNR vs {perceptual}", fontsize=9)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path = folder / f"psnr_vs_{perceptual.lower()}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_plots(rows: list[dict[str, Any]], folder: str | Path) -> list[Path]:
    """Writes every plot the rows support into `folder`; returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for x_key, xlabel, stem, group in (
        ("E", "E = L x c (log2)", "metrics_vs_E", "p"),
        ("encoder_params", "encoder parameters (log2)", "metrics_vs_encoder", "E"),
        ("decoder_params", "decoder parameters (log2)", "metrics_vs_decoder", "E"),
    ):
        path = folder / f"{stem}.png"
        if plot_metrics_vs(rows, x_key, xlabel, path, group):
            out.append(path)
    tradeoff = plot_tradeoff(rows, folder)
    if tradeoff is not None:
        out.append(tradeoff)
    return out

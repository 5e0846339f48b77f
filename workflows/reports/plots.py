"""The sweep's plots as PNG files (matplotlib, Agg backend: no display needed).

- `metrics_vs_E.png`: each measured reconstruction metric against log2 E, one colour and one least-squares
  line per patch size (per tubelet q x p for video), and the all-runs line, each with its slope, the slope's
  95% interval and R² in the legend: the findings judge the law within each patch size, and the picture
  shows the same fits. Every point carries its run's 95% interval (bootstrap over validation samples) as an
  error bar.
- `metrics_vs_encoder.png`, `metrics_vs_decoder.png`: the same against encoder / decoder parameters.
Each of these three only when the finished runs vary what it is about (`AXES`): two or more values of E, two or
more encoder (decoder) sizes. Parameter counts also move with the patch size (the pixel head), so an e_sweep at
one size has encoder params that "vary": a line through them would credit the size with what p and E did.
- `psnr_vs_rfid.png` (or `psnr_vs_lpips.png` when rFID is off): the distortion-perception trade-off.
- `recon_gen_vs_E.png`, with a generation probe: PSNR (left axis) and the generation metric (right axis: gFID,
  else gFVD, else SWD, as the findings pick it) against log2 E, each with its runs' 95% intervals and its
  all-runs least-squares line, so a turn in generation while reconstruction still improves shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from workflows.reports.findings import METRICS  # noqa: E402
from workflows.reports.generation_findings import generation_metric, generation_rows  # noqa: E402
from workflows.reports.fits import Fit, fit_rows  # noqa: E402
from workflows.reports.numbers import signed  # noqa: E402

if TYPE_CHECKING:  # the rows' type only: the report reads their attributes
    from workflows.sweeps.summary import SummaryRow


# plot stem -> (x column, the column whose distinct values say the sweep varies it, x label)
AXES = {
    "metrics_vs_E": ("E", "E", "E = L x c (log2)"),
    "metrics_vs_encoder": ("encoder_params", "enc", "encoder parameters (log2)"),
    "metrics_vs_decoder": ("decoder_params", "dec", "decoder parameters (log2)"),
}


def varies(rows: list[SummaryRow], key: str) -> bool:
    """Whether the finished runs take two or more values of `key`."""
    return len({r.metric(key) for r in _finished(rows)}) >= 2


def _finished(rows: list[SummaryRow]) -> list[SummaryRow]:
    return [r for r in rows if r.finished]


def _measured_metrics(rows: list[SummaryRow]) -> list[tuple[str, int, str]]:
    return [m for m in METRICS if any(r.metric(m[0]) is not None for r in rows)]


def family_label(row: SummaryRow) -> str:
    """The tokenisation a run belongs to: `p=8` for images, `q x p=4x8` for video tubelets."""
    q = row.q or 1
    return f"p={row.p}" if q == 1 else f"q x p={q}x{row.p}"


def _fit_label(fit: Fit) -> str:
    r2 = f"R²={fit.r2:.2f}" if fit.r2 is not None else "R² n/a (<3 pts)"
    ci = f" [{signed(fit.slope_low, '+.2g')}, {signed(fit.slope_high, '+.2g')}]" if fit.slope_low is not None else ""
    return f"{signed(round(fit.slope, 9))}{ci}/doubling, {r2}"


def _error_bars(rows: list[SummaryRow], metric: str) -> np.ndarray:
    """(2, n) distances from each value down to its interval's low end and up to its high end (0: none)."""
    def gap(r, end, sign):
        bound = r.interval(metric)[end]
        return max(0.0, sign * (bound - r.metric(metric))) if bound is not None else 0.0

    return np.array([[gap(r, 0, -1) for r in rows], [gap(r, 1, 1) for r in rows]])


def _scatter_with_fit(ax, rows: list[SummaryRow], x_key: str, metric: str, xlabel: str, group) -> None:
    """Points coloured by `group(row)`, each group's own least-squares line, and the all-runs line."""
    points = [r for r in rows if r.metric(metric) is not None and r.metric(x_key)]
    groups = sorted({group(r) for r in points})
    for i, name in enumerate(groups):
        sub = [r for r in points if group(r) == name]
        colour = f"C{i}"
        xs = [r.metric(x_key) for r in sub]
        ax.errorbar(xs, [r.metric(metric) for r in sub], yerr=_error_bars(sub, metric), fmt="o", color=colour,
                    capsize=2, markersize=4, zorder=3)
        fit = fit_rows(sub, x_key, metric)
        if fit is not None and len(groups) > 1:
            line = np.geomspace(min(xs), max(xs), 50)
            ax.plot(line, fit.predict(line), "-", color=colour, alpha=0.8, label=f"{name}: {_fit_label(fit)}")
        else:
            ax.plot([], [], "o", color=colour, label=name)
    for r in points:
        ax.annotate(str(r.config), (r.metric(x_key), r.metric(metric)), fontsize=6, alpha=0.7,
                    xytext=(3, 3), textcoords="offset points")
    fit = fit_rows(points, x_key, metric)
    if fit is not None:
        xs = np.geomspace(min(r.metric(x_key) for r in points), max(r.metric(x_key) for r in points), 50)
        ax.plot(xs, fit.predict(xs), "--", color="gray", label=f"all runs: {_fit_label(fit)}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(metric)
    ax.set_title(metric, fontsize=9)
    ax.grid(True, alpha=0.3)
    if points:
        ax.legend(fontsize=6)


def plot_metrics_vs(rows: list[SummaryRow], x_key: str, xlabel: str, path: Path, group=family_label) -> bool:
    """One panel per measured metric; False (and no file) when nothing was measured."""
    rows = _finished(rows)
    metrics = _measured_metrics(rows)
    if not metrics:
        return False
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, (metric, _, _) in zip(axes[0], metrics):
        _scatter_with_fit(ax, rows, x_key, metric, xlabel, group)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_tradeoff(rows: list[SummaryRow], folder: Path) -> Path | None:
    """PSNR vs rFID, or vs LPIPS when rFID is off; None when neither was measured."""
    rows = [r for r in _finished(rows) if r.PSNR is not None]
    perceptual = next((k for k in ("rFID", "LPIPS") if any(r.metric(k) is not None for r in rows)), None)
    if perceptual is None:
        return None
    points = [r for r in rows if r.metric(perceptual) is not None]
    fig, ax = plt.subplots(figsize=(4.5, 3.8))
    ax.errorbar([r.metric(perceptual) for r in points], [r.PSNR for r in points], xerr=_error_bars(points, perceptual),
                yerr=_error_bars(points, "PSNR"), fmt="o", capsize=2, markersize=4, zorder=3)
    for r in points:
        ax.annotate(str(r.config), (r.metric(perceptual), r.PSNR), fontsize=6, xytext=(3, 3),
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


def _series_vs_e(ax, rows: list[SummaryRow], metric: str, colour: str, label: str) -> None:
    """One metric against E on `ax`: points (error bars where the runs logged an interval), config names and
    the all-runs least-squares line."""
    points = [r for r in rows if r.metric(metric) is not None and r.E]
    if not points:
        return
    xs = [r.E for r in points]
    has_interval = any(r.interval(metric)[0] is not None for r in points)
    ax.errorbar(xs, [r.metric(metric) for r in points], yerr=_error_bars(points, metric) if has_interval else None,
                fmt="o", color=colour, capsize=2, markersize=4, zorder=3, label=label)
    for r in points:
        ax.annotate(str(r.config), (r.E, r.metric(metric)), fontsize=6, alpha=0.7, color=colour,
                    xytext=(3, 3), textcoords="offset points")
    fit = fit_rows(points, "E", metric)
    if fit is not None:
        line = np.geomspace(min(xs), max(xs), 50)
        ax.plot(line, fit.predict(line), "--", color=colour, alpha=0.8, label=f"{metric} all runs: {_fit_label(fit)}")
    ax.set_ylabel(label, color=colour)


def recon_gen_figure(rows: list[SummaryRow]):
    """PSNR (left axis) and the generation metric (right axis) against log2 E in one figure; None without a
    finished generation probe."""
    rows = _finished(rows)
    metric = generation_metric(rows)
    generated = generation_rows(rows, metric)
    if not generated:
        return None
    fig, left = plt.subplots(figsize=(6.0, 4.2))
    right = left.twinx()
    _series_vs_e(left, rows, "PSNR", "C0", "PSNR (dB)")
    _series_vs_e(right, generated, metric, "C3", f"{metric} (lower is better)")
    left.set_xscale("log", base=2)
    left.set_xlabel("E = L x c (log2)")
    left.set_title("reconstruction and generation vs E", fontsize=9)
    left.grid(True, alpha=0.3)
    (left_handles, left_labels), (right_handles, right_labels) = (left.get_legend_handles_labels(),
                                                                  right.get_legend_handles_labels())
    left.legend(left_handles + right_handles, left_labels + right_labels, fontsize=6)
    fig.tight_layout()
    return fig


def plot_recon_gen(rows: list[SummaryRow], folder: Path) -> Path | None:
    """`recon_gen_vs_E.png`; None without a finished generation probe."""
    fig = recon_gen_figure(rows)
    if fig is None:
        return None
    path = folder / "recon_gen_vs_E.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def make_plots(rows: list[SummaryRow], folder: str | Path) -> list[Path]:
    """Writes every plot the rows support into `folder`; returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    by_e = lambda row: f"E={row.E}"  # noqa: E731
    for stem, (x_key, varied, xlabel) in AXES.items():
        path = folder / f"{stem}.png"
        group = family_label if x_key == "E" else by_e
        if varies(rows, varied) and plot_metrics_vs(rows, x_key, xlabel, path, group):
            out.append(path)
    tradeoff = plot_tradeoff(rows, folder)
    if tradeoff is not None:
        out.append(tradeoff)
    recon_gen = plot_recon_gen(rows, folder)
    if recon_gen is not None:
        out.append(recon_gen)
    return out

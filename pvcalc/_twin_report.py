"""Figures and files of the scanner twin: MTF and NPS plots, twin.csv, twin.png, report.md."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["OUTPUT_FILES", "curves_of", "markdown", "plot_mtf", "plot_nps", "protocol_json",
           "twin_figure", "write_outputs"]


def curves_of(report, name="report"):
    """The :class:`MeasuredCurves` of a measure_protocol report (or the curves themselves)."""
    from pvcalc._twin_measure import MeasuredCurves

    if isinstance(report, MeasuredCurves):
        return report
    curves = getattr(report, "attrs", {}).get("curves") if isinstance(report, pd.DataFrame) \
        else None
    if not isinstance(curves, MeasuredCurves):
        raise TypeError(f"{name} must be the report DataFrame of pvcalc.twin.measure_protocol "
                        f"(its attrs['curves'] hold the MTF and NPS), got "
                        f"{type(report).__name__}")
    return curves


def _axes(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.6), layout="constrained")
        return fig, ax
    return ax.figure, ax


def plot_mtf(report, ax=None, *, label="measured"):
    """The MTF from the rod edge beside the fitted Gaussian's; returns the figure."""
    curves = curves_of(report)
    fig, ax = _axes(ax)
    m = curves.mtf
    nyq = 0.5 / curves.noise.pixel_mm
    keep = m["frequency_per_mm"] <= nyq * 1.2
    f, v, se = (m[c][keep].to_numpy() for c in ("frequency_per_mm", "mtf", "se"))
    if np.isfinite(se).any():
        ax.fill_between(f, v - 2 * se, v + 2 * se, alpha=0.25, lw=0)
    ax.plot(f, v, "-", lw=1.6, label=f"{label} (rod edge, +- 2 SE)"
            if np.isfinite(se).any() else f"{label} (rod edge)")
    ax.plot(m["frequency_per_mm"][keep], m["mtf_gaussian"][keep], "--", lw=1.0,
            label="Gaussian fit of the edge")
    e = curves.edge
    for level, f in ((0.5, e.mtf50_per_mm), (0.1, e.mtf10_per_mm)):
        if math.isfinite(f):
            ax.plot([f], [level], "o", ms=4, color="k")
            ax.annotate(f"MTF{int(level * 100)} {f:.3f}/mm", (f, level), xytext=(6, 4),
                        textcoords="offset points", fontsize=8)
    ax.axvline(nyq, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("spatial frequency (cycles/mm)")
    ax.set_ylabel("MTF")
    ax.set_ylim(-0.02, 1.05)
    ax.set_xlim(0, None)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("In-plane MTF (HA rod edge)", fontsize=10)
    return fig


def plot_nps(report, ax=None, *, label="measured"):
    """The radial NPS (with its standard error) and its peak; returns the figure."""
    curves = curves_of(report)
    fig, ax = _axes(ax)
    n = curves.nps
    nyq = float(n["frequency_per_mm"].iloc[curves.noise.side_px // 2])
    keep = n["frequency_per_mm"] <= nyq + 1e-9
    f, v, se = (n[c][keep].to_numpy() for c in ("frequency_per_mm", "nps_hu2_mm2", "se_hu2_mm2"))
    ax.fill_between(f, v - 2 * se, v + 2 * se, alpha=0.25, lw=0)
    ax.plot(f, v, "-", lw=1.6, label=f"{label} (+- 2 SE)")
    peak = curves.noise.peak_per_mm
    ax.axvline(peak, color="k", lw=0.8, ls="--")
    ax.annotate(f"peak {peak:.3f}/mm", (peak, float(v.max())), xytext=(6, -12),
                textcoords="offset points", fontsize=8)
    ax.set_xlabel("spatial frequency (cycles/mm)")
    ax.set_ylabel("NPS (HU$^2$ mm$^2$)")
    ax.set_xlim(0, nyq)
    ax.set_ylim(0, None)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title(f"Radial NPS (noise SD {curves.noise.sd_hu:.1f} HU)", fontsize=10)
    return fig


def twin_figure(result):
    """Four panels: MTF and NPS of both, clinical Agatston per insert, z-scores of all."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11.0, 8.0), layout="constrained")
    real_curves = curves_of(result.report)
    plot_mtf(result.report, axes[0, 0], label="real")
    plot_nps(result.report, axes[0, 1], label="real")
    twins = [curves_of(t) for t in result.twin_reports]
    if twins:
        f = real_curves.mtf["frequency_per_mm"].to_numpy()
        mtf = np.nanmean([np.interp(f, t.mtf["frequency_per_mm"], t.mtf["mtf"]) for t in twins],
                         axis=0)
        axes[0, 0].plot(f, mtf, "-", color="C3", lw=1.2, label="twin (mean of repeats)")
        axes[0, 0].legend(fontsize=8, frameon=False)
        fn = real_curves.nps["frequency_per_mm"].to_numpy()
        nps = np.nanmean([np.interp(fn, t.nps["frequency_per_mm"], t.nps["nps_hu2_mm2"])
                          for t in twins], axis=0)
        axes[0, 1].plot(fn, nps, "-", color="C3", lw=1.2, label="twin (mean of repeats)")
        axes[0, 1].legend(fontsize=8, frameon=False)
    comp = result.comparison
    ag = comp[(comp["method"] == "clinical") & (comp["quantity"] == "agatston")]
    ax = axes[1, 0]
    if len(ag):
        pos = np.arange(len(ag))
        ax.bar(pos - 0.2, ag["real"], width=0.4, label="real", color="C0")
        ax.bar(pos + 0.2, ag["twin_mean"], width=0.4, yerr=result.tolerance_sd * ag["twin_sd"],
               label=f"twin mean +- {result.tolerance_sd:g} SD", color="C3", capsize=3)
        ax.set_xticks(pos, ag["insert"], rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("Agatston score")
        ax.legend(fontsize=8, frameon=False)
    ax.set_title("Clinical Agatston score per insert", fontsize=10)
    ax = axes[1, 1]
    finite = comp[np.isfinite(comp["z"].astype(float))]
    if len(finite):
        keys = list(dict.fromkeys(zip(finite["method"], finite["quantity"])))
        inserts = list(dict.fromkeys(comp["insert"]))
        grid = np.full((len(keys), len(inserts)), np.nan)
        for row in finite.itertuples(index=False):
            grid[keys.index((row.method, row.quantity)), inserts.index(row.insert)] = row.z
        lim = float(np.clip(np.nanmax(np.abs(grid)), 3.0, 8.0))   # colours saturate at 8
        im = ax.imshow(np.clip(grid, -lim, lim), cmap="RdBu_r", vmin=-lim, vmax=lim,
                       aspect="auto")
        ax.set_xticks(range(len(inserts)), inserts, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(len(keys)), [f"{m} {q}" for m, q in keys], fontsize=7)
        for (i, j), v in np.ndenumerate(grid):
            if math.isfinite(v) and abs(v) > result.tolerance_sd:
                ax.text(j, i, f"{v:.1f}", ha="center", va="center", fontsize=6)
        fig.colorbar(im, ax=ax, label="(real - twin mean) / twin SD", extend="both")
    ax.set_title(f"Real vs twin (numbers: outside +- {result.tolerance_sd:g} SD)", fontsize=10)
    return fig


def _md_table(df, digits=3):
    def cell(v):
        if isinstance(v, (float, np.floating)):
            return "" if not math.isfinite(v) else f"{v:.{digits}g}"
        if v is pd.NA or v is None:
            return ""
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _value(report, quantity):
    row = report.loc[report["quantity"] == quantity, "value"]
    return float(row.iloc[0]) if len(row) else float("nan")


def markdown(result, scan_label):
    """The text of report.md."""
    p = result.protocol
    rep = result.report[["quantity", "value", "unit", "se", "method"]]
    lines = [f"# Scanner twin of {scan_label}", "",
             f"Measured protocol (`phantoms.Protocol`): pixel {p.pixel_mm:.3g} mm, matrix "
             f"{p.matrix}, slices {p.slice_thickness_mm:.3g} mm every {p.increment_mm:.3g} mm, "
             f"{p.kvp:g} kVp, PSF FWHM {p.psf_fwhm_mm:.3g} mm, noise SD {p.noise_sd_hu:.3g} HU, "
             f"NPS shape measured (peak {_value(result.report, 'nps_peak_freq_per_mm'):.3g} "
             f"cycles/mm), {p.ha_hu_per_mg:.4g} HU per mg HA/cm3, insert body "
             f"{_value(result.report, 'insert_body_hu'):.1f} HU.",
             "", f"Twin repeats: {int(result.twin['repeat'].nunique()) if len(result.twin) else 0}"
             f" analysed, {len(result.failures)} failed. A real value is flagged when it lies "
             f"outside the twin's mean +- {result.tolerance_sd:g} SD over its repeats"
             + (" (with fewer than 5 twin repeats the SD itself is uncertain: a flag then means "
                "little)" if result.twin["repeat"].nunique() < 5 else "") + ".", ""]
    out = result.outside
    if len(out):
        lines += ["## Outside the twin's range", ""]
        for row in out.itertuples(index=False):
            what = (f"{row.insert} {row.method} {row.quantity}" if row.table == "twin.csv"
                    else f"{row.quantity}")
            lines.append(f"- {what}: real {row.real:.4g}, twin {row.twin_mean:.4g} +- "
                         f"{row.twin_sd:.3g} (z = {row.z:+.2f})")
        lines.append("")
    else:
        lines += ["Every compared value of the real scan lies within the twin's range.", ""]
    lines += ["![real vs twin](twin.png)", "", "## Measured on the real scan", "",
              _md_table(rep), "", "## Image quality: real vs twin (twin_noise.csv)", "",
              _md_table(result.noise), "", "## Inserts: real vs twin (twin.csv)", "",
              _md_table(result.comparison), ""]
    if len(result.failures):
        lines += ["## Twin repeats that failed", "", _md_table(result.failures), ""]
    lines += ["## Notes", "", *[f"- {n}" for n in result.notes], ""]
    return "\n".join(lines)


#: Files written by :func:`write_outputs`.
OUTPUT_FILES = ("twin.csv", "twin_noise.csv", "twin.png", "report.md", "measured.csv",
                "protocol.json")


def protocol_json(protocol):
    """The protocol's fields as JSON text (``phantoms.Protocol(**json.loads(text))``)."""
    import dataclasses
    import json

    fields = {f.name: getattr(protocol, f.name) for f in dataclasses.fields(protocol)}
    if fields.get("nps_radial") is not None:
        fields["nps_radial"] = [list(pair) for pair in fields["nps_radial"]]
    return json.dumps(fields, indent=2)


def write_outputs(result, out, scan_label="the scan"):
    """Write :data:`OUTPUT_FILES` to the folder ``out``; returns {name: path}."""
    import matplotlib.pyplot as plt

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / name for name in OUTPUT_FILES}
    result.comparison.to_csv(paths["twin.csv"], index=False)
    result.noise.to_csv(paths["twin_noise.csv"], index=False)
    fig = twin_figure(result)
    fig.savefig(paths["twin.png"], dpi=110, metadata={"Software": None})
    plt.close(fig)
    paths["report.md"].write_text(markdown(result, scan_label))
    result.report.to_csv(paths["measured.csv"], index=False)
    paths["protocol.json"].write_text(protocol_json(result.protocol) + "\n")
    return paths

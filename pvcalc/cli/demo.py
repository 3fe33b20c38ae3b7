"""The README's main job: the calcification-insert phantom, simulated and scored.

Simulates the replica of the QRM cardiac calcification insert (nine HA
cylinders, d = L = 1 / 3 / 5 mm at 200 / 400 / 800 mg HA/cm3) a few times with
the chosen protocol (new noise, repositioning and cardiac phase per repeat),
scores every scan clinically (standard preset, mass calibrated on the
phantom's water and HA rods), and prints per insert the true volume and mass
beside the clinical Agatston, volume and mass scores, plus what real scanners
measured on the physical phantom (the reference table shipped in
``pvcalc/data``). Then every partial-volume method of :func:`pvcalc.quantify`
measures the same scans, regions of interest and calibration, and a second
table gives each method's mean mass per insert beside the true mass.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def run_demo(*, repeats=3, seed=0, protocol="calcium_scoring", extension_ring=False,
             out=None, echo=print):
    """Simulate, score and report; returns the per-insert summary DataFrame."""
    import phantoms
    from pvcalc import stats
    from pvcalc.evaluation import evaluate_repeats, quantify_repeats

    phantom = phantoms.cci_phantom(extension_ring=extension_ring)
    proto = phantoms.get_protocol(protocol)
    body = "large" if extension_ring else "small"
    echo(f"pvcalc demo: replica of the QRM cardiac calcification insert, {body} body "
         f"({'400 x 300' if extension_ring else '300 x 200'} mm)")
    echo(f"protocol {proto.name}: {proto.kvp:.0f} kVp, {proto.slice_thickness_mm:g} mm slices every "
         f"{proto.increment_mm:g} mm, in-plane PSF FWHM {proto.psf_fwhm_mm:g} mm, "
         f"{proto.pixel_mm:g} mm pixels, noise SD {proto.noise_sd_hu:g} HU, "
         f"{'ECG-gated' if proto.gated else 'non-gated'}")
    echo(f"{repeats} repeated scan(s), seed {seed}: each with new noise, a random repositioning "
         "and a new cardiac phase\n")

    per_scan = evaluate_repeats(phantom, proto, seed=seed, n_repeats=repeats)
    t_sim, t_score = per_scan.attrs["simulation_s"], per_scan.attrs["scoring_s"]
    per_scan = per_scan.rename(columns={"lesion": "insert"})
    per_scan["diameter_mm"] = 2.0 * per_scan["radius_mm"]
    calibrations = per_scan.groupby("repeat")["c_ha"].first().to_numpy()
    summary = _summarise(per_scan, body)
    per_method = quantify_repeats(phantom, proto, seed=seed, n_repeats=repeats)
    t_sim += per_method.attrs["simulation_s"]
    t_methods = per_method.attrs["quantify_s"]
    masses, no_mass = _summarise_methods(per_method, summary["insert"])

    echo("Per insert: truth and clinical scores (standard preset: >= 130 HU, 8-connected, "
         ">= 1 mm2), mean (SD) over repeats;")
    echo("'real' = mean Agatston on the physical phantom, four vendors' 120 kVp scans, five "
         f"repeats each ({body} body; 3 mm slices, GE 2.5 mm; scored by van Praagh et al. 2021)\n")
    echo(_format_summary(summary))
    totals = per_scan.groupby("repeat")[["agatston", "volume_score_mm3", "mass_score_mg"]].sum()
    echo("\nTotals per scan")
    echo(totals.rename(columns={"agatston": "Agatston", "volume_score_mm3": "volume mm3",
                                "mass_score_mg": "mass mg"}).to_string(float_format="{:.1f}".format))
    true_mass = per_scan.loc[per_scan["repeat"] == 1, "true_mass_mg"].sum()
    true_volume = per_scan.loc[per_scan["repeat"] == 1, "true_volume_mm3"].sum()
    echo(f"truth: volume {true_volume:.1f} mm3, mass {true_mass:.1f} mg; "
         f"c_HA from the rods {np.mean(calibrations):.3f} mg HA cm^-3 HU^-1 (mean over scans)")
    interscan = None
    if repeats >= 2:
        first, second = totals.loc[1], totals.loc[2]
        diff = stats.interscan_difference(first.to_numpy(), second.to_numpy())
        interscan = diff["relative_difference_pct"].tolist()
        echo("relative interscan difference of the totals, scan 1 vs 2: " + ", ".join(
            f"{name} {value:.1f}%" for name, value in
            zip(("Agatston", "volume", "mass"), diff["relative_difference_pct"])))
    missed = summary.loc[summary["detected_share"] < 1, "insert"].tolist()
    echo(f"\ninserts missed in at least one scan: {', '.join(missed) if missed else 'none'}")
    echo("\nMass by every method (pvcalc.quantify, docs/methods/index.md), mg HA, on the same "
         f"scans, ROIs\nand calibration, mean over the {repeats} scan(s); 'error %' = "
         "(total - true total) / true total\n")
    echo(_format_methods(masses))
    if no_mass:
        echo(f"not in the table, since they define no mass: {', '.join(no_mass)}")
    echo(f"\nsimulation {t_sim:.1f} s, scoring {t_score:.2f} s, partial-volume methods "
         f"{t_methods:.2f} s")
    if out is not None:
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        per_scan.to_csv(folder / "per_scan.csv", index=False)
        per_method.rename(columns={"lesion": "insert"}).to_csv(folder / "per_scan_methods.csv",
                                                               index=False)
        summary.to_csv(folder / "per_insert.csv", index=False)
        _plot_mass_vs_truth(per_scan, summary, body).savefig(folder / FIGURE, dpi=110)
        setup = {"body": body, "protocol": proto, "repeats": repeats, "seed": seed,
                 "simulation_s": t_sim, "scoring_s": t_score, "methods_s": t_methods,
                 "masses": masses, "no_mass": no_mass,
                 "c_ha": float(np.mean(calibrations)), "true_volume_mm3": true_volume,
                 "true_mass_mg": true_mass, "interscan_pct": interscan}
        (folder / "report.md").write_text(_report_markdown(summary, totals, setup))
        echo(f"report written to {folder / 'report.md'} (figure {FIGURE}, tables per_insert.csv, "
             "per_scan.csv and per_scan_methods.csv)")
    return summary


def _summarise(per_scan: pd.DataFrame, body: str) -> pd.DataFrame:
    from pvcalc.reference import qrm_reference_scores

    grouped = per_scan.groupby("insert", sort=False)
    summary = grouped[["diameter_mm", "density_mg_cm3", "true_volume_mm3", "true_mass_mg"]].first()
    for column in ("agatston", "volume_score_mm3", "mass_score_mg"):
        summary[f"{column}_mean"] = grouped[column].mean()
        summary[f"{column}_sd"] = grouped[column].std(ddof=1)
    summary["detected_share"] = grouped["agatston"].apply(lambda s: float(np.mean(s > 0)))
    summary["volume_ratio"] = summary["volume_score_mm3_mean"] / summary["true_volume_mm3"]
    summary["mass_ratio"] = summary["mass_score_mg_mean"] / summary["true_mass_mg"]
    real = qrm_reference_scores(body)
    real = real.groupby("insert")[["agatston", "mass_ratio"]].mean()
    summary["real_agatston_mean"] = real.reindex(summary.index)["agatston"]
    summary["real_mass_ratio"] = real.reindex(summary.index)["mass_ratio"]
    return summary.reset_index()


def _format_summary(summary: pd.DataFrame) -> str:
    mean_sd = _mean_sd
    lines = [(f"{'insert':10s} {'d mm':>4s} {'mg/cm3':>6s} | {'true mm3':>8s} {'volume score':>15s} "
              f"{'ratio':>5s} | {'true mg':>7s} {'mass score':>13s} {'ratio':>5s} | "
              f"{'Agatston':>13s} {'found':>5s} | {'real Agatston':>13s}")]
    lines.append("-" * len(lines[0]))
    for _, r in summary.iterrows():
        lines.append(
            f"{r['insert']:10s} {r['diameter_mm']:4.0f} {r['density_mg_cm3']:6.0f} | "
            f"{r['true_volume_mm3']:8.2f} "
            f"{mean_sd(r['volume_score_mm3_mean'], r['volume_score_mm3_sd'], 1):>15s} "
            f"{r['volume_ratio']:5.2f} | {r['true_mass_mg']:7.2f} "
            f"{mean_sd(r['mass_score_mg_mean'], r['mass_score_mg_sd'], 2):>13s} {r['mass_ratio']:5.2f} | "
            f"{mean_sd(r['agatston_mean'], r['agatston_sd'], 1):>13s} {r['detected_share']:5.0%} | "
            f"{r['real_agatston_mean']:13.1f}")
    return "\n".join(lines)


def _summarise_methods(per_method: pd.DataFrame, inserts) -> tuple[pd.DataFrame, list]:
    """Mean mass (mg) per insert and method, with the true mass; methods without a mass.

    Rows: the inserts in the order given, then ``total`` (sums) and ``error %``
    (of the total against the true total). A method's mean is NaN when one of
    its scans has no mass for the insert (its ``reason`` in the CSV says why).
    """
    from pvcalc.methods import get_method

    grouped = per_method.groupby(["lesion", "method"], sort=False)["mass_mg"]
    mean = grouped.mean().where(grouped.count() == grouped.size())
    masses = mean.unstack("method").reindex(list(inserts))
    order = list(dict.fromkeys(per_method["method"]))
    no_mass = [m for m in order if "mass_mg" not in get_method(m).defines]
    masses = masses[[m for m in order if m not in no_mass]]
    true = per_method.groupby("lesion", sort=False)["true_mass_mg"].first()
    masses.insert(0, "true", true.reindex(masses.index))
    total = masses.sum(skipna=False)
    masses.loc["total"] = total
    masses.loc["error %"] = 100.0 * (total - total["true"]) / total["true"]
    masses.loc["error %", "true"] = np.nan
    return masses, no_mass


def _method_header(name) -> tuple[str, str]:
    """A method name on two header lines, split at its last underscore."""
    first, _, last = name.rpartition("_")
    return (first, last) if first else ("", name)


def _format_methods(masses: pd.DataFrame) -> str:
    heads = [("", "true mg")] + [_method_header(m) for m in masses.columns[1:]]
    widths = [max(8, len(a), len(b)) for a, b in heads]
    lines = [" ".join([f"{'':10s}", *(f"{a:>{w}s}" for (a, _), w in zip(heads, widths))]).rstrip(),
             " ".join([f"{'insert':10s}", *(f"{b:>{w}s}" for (_, b), w in zip(heads, widths))])]
    lines.append("-" * len(lines[1]))
    for name, row in masses.iterrows():
        if name == "total":
            lines.append("-" * len(lines[1]))
        digits = 1 if name == "error %" else 2
        cells = ["" if (name == "error %" and i == 0) else
                 ("-" if not np.isfinite(v) else f"{v:.{digits}f}") for i, v in enumerate(row)]
        lines.append(" ".join([f"{name:10s}", *(f"{c:>{w}s}" for c, w in zip(cells, widths))]))
    return "\n".join(lines)


#: The report's figure, written beside report.md.
FIGURE = "mass_vs_truth.png"


def _mean_sd(mean, sd, digits) -> str:
    sd_text = "" if not np.isfinite(sd) else f" ({sd:.{digits}f})"
    return f"{mean:.{digits}f}{sd_text}"


def _markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _report_markdown(summary: pd.DataFrame, totals: pd.DataFrame, setup: dict) -> str:
    """report.md: what was simulated, the per-insert table, totals, timing, the figure."""
    from pvcalc import __version__

    proto, n = setup["protocol"], setup["repeats"]
    size = "400 x 300" if setup["body"] == "large" else "300 x 200"
    header = ["insert", "d (mm)", "density (mg HA/cm3)", "true volume (mm3)",
              "volume score (mm3)", "volume ratio", "true mass (mg)", "mass score (mg)",
              "mass ratio", "Agatston", "found", "real Agatston", "real mass ratio"]
    rows = [[r["insert"], f"{r['diameter_mm']:.0f}", f"{r['density_mg_cm3']:.0f}",
             f"{r['true_volume_mm3']:.2f}",
             _mean_sd(r["volume_score_mm3_mean"], r["volume_score_mm3_sd"], 1),
             f"{r['volume_ratio']:.2f}", f"{r['true_mass_mg']:.2f}",
             _mean_sd(r["mass_score_mg_mean"], r["mass_score_mg_sd"], 2), f"{r['mass_ratio']:.2f}",
             _mean_sd(r["agatston_mean"], r["agatston_sd"], 1), f"{r['detected_share']:.0%}",
             f"{r['real_agatston_mean']:.1f}", f"{r['real_mass_ratio']:.2f}"]
            for _, r in summary.iterrows()]
    total_rows = [[str(index), f"{t['agatston']:.1f}", f"{t['volume_score_mm3']:.1f}",
                   f"{t['mass_score_mg']:.1f}"] for index, t in totals.iterrows()]
    total_rows.append(["truth", "", f"{setup['true_volume_mm3']:.1f}", f"{setup['true_mass_mg']:.1f}"])
    missed = summary.loc[summary["detected_share"] < 1, "insert"].tolist()
    parts = [
        "# pvcalc demo report",
        "",
        (f"**What was simulated.** The replica of the QRM cardiac calcification insert (nine "
        f"hydroxyapatite cylinders, diameter = length = 1, 3 and 5 mm at 200, 400 and 800 mg "
        f"HA/cm3, plus a water and a 200 mg HA/cm3 calibration rod) in the {setup['body']} body "
        f"({size} mm), scanned {n} time(s) with seed {setup['seed']}; each scan has new noise, a "
        f"random repositioning and a new cardiac phase. Protocol `{proto.name}`: "
        f"{proto.kvp:.0f} kVp, {proto.slice_thickness_mm:g} mm slices every "
        f"{proto.increment_mm:g} mm, in-plane PSF FWHM {proto.psf_fwhm_mm:g} mm, "
        f"{proto.pixel_mm:g} mm pixels, noise SD {proto.noise_sd_hu:g} HU, "
        f"{'ECG-gated' if proto.gated else 'non-gated'}."),
        "",
        ("**How it was scored.** Standard clinical preset (>= 130 HU, 8-connected, >= 1 mm2), "
        "in a region of interest around each insert (its true footprint grown by 2 mm, "
        "pvcalc.rois.truth_roi_labels); mass calibrated on each "
        f"scan from the two rods (mean c_HA {setup['c_ha']:.3f} mg HA cm^-3 HU^-1)."),
        "",
        "## Per insert",
        "",
        (f"Mean (SD) over the {n} scan(s); ratio = score / truth; found = share of the scans in "
        "which the insert was scored; real = mean over the physical phantom scanned by four "
        f"vendors' scanners at 120 kVp, five times each ({setup['body']} body; scored by van "
        "Praagh et al., Med Phys 2021). All digits: `per_insert.csv`; one row per scan and "
        "insert: `per_scan.csv`."),
        "",
        _markdown_table(header, rows),
        "",
        f"Inserts missed in at least one scan: {', '.join(missed) if missed else 'none'}.",
        "",
        f"![Mass score / true mass per insert, simulated scans and real scanners]({FIGURE})",
        "",
        ("The figure shows the mass score divided by the true mass of each insert: every "
        "simulated scan (dots), their mean (diamond) and, in grey, the range and mean of the "
        "real scanners on the physical phantom. 1 = the true mass."),
        "",
        "## Totals per scan",
        "",
        _markdown_table(["scan", "Agatston", "volume score (mm3)", "mass score (mg)"], total_rows),
    ]
    if setup["interscan_pct"] is not None:
        agatston, volume, mass = setup["interscan_pct"]
        parts += ["", (f"Relative interscan difference of the totals, scan 1 vs 2: Agatston "
                       f"{agatston:.1f}%, volume {volume:.1f}%, mass {mass:.1f}%.")]
    parts += ["", "## Every method", "", _methods_markdown(setup), "", "## Timing", "",
              (f"Simulation {setup['simulation_s']:.1f} s, scoring {setup['scoring_s']:.2f} s, "
               f"partial-volume methods {setup['methods_s']:.2f} s (pvcalc {__version__}; a "
               "first run includes compiling the numerical kernels)."),
              ""]
    return "\n".join(parts)


def _methods_markdown(setup: dict) -> str:
    """The report's section of every method's mean mass per insert."""
    masses, n = setup["masses"], setup["repeats"]
    header = ["insert", "true mass (mg)", *masses.columns[1:]]
    rows = []
    for name, row in masses.iterrows():
        digits = 1 if name == "error %" else 2
        cells = [("" if name == "error %" else f"{row['true']:.2f}")]
        cells += ["-" if not np.isfinite(v) else f"{v:.{digits}f}" for v in row.iloc[1:]]
        rows.append([str(name), *cells])
    text = [("Mass (mg HA) of each insert by every partial-volume method of "
             "`pvcalc.quantify` (docs/methods/index.md), on the same scans, regions of interest "
             f"and calibration as the clinical scores, mean over the {n} scan(s) (`clinical` is "
             "the mass score above). total = sum over the inserts; error % = (total - true "
             "total) / true total. Every column of every scan, insert and method: "
             "`per_scan_methods.csv`."), "", _markdown_table(header, rows)]
    if setup["no_mass"]:
        text += ["", f"Not in the table, since they define no mass: {', '.join(setup['no_mass'])}."]
    return "\n".join(text)


def _plot_mass_vs_truth(per_scan: pd.DataFrame, summary: pd.DataFrame, body: str):
    """Mass score / true mass per insert: simulated scans beside the real scanners' range."""
    from pvcalc.reference import qrm_reference_scores
    from pvcalc.stats._plots import _new_axes

    fig, ax = _new_axes(None, figsize=(8.0, 4.5))
    order = summary["insert"].tolist()
    x = np.arange(len(order), dtype=float)
    real = (qrm_reference_scores(body).groupby("insert")["mass_ratio"]
            .agg(["min", "max", "mean"]).reindex(order))
    ax.vlines(x, real["min"], real["max"], color="0.65", lw=7, alpha=0.7,
              label="real scanners: range (4 vendors x 5 scans)")
    ax.scatter(x, real["mean"], marker="_", s=250, color="0.25", label="real scanners: mean")
    n = int(per_scan["repeat"].max())
    position = per_scan["insert"].map({name: i for i, name in enumerate(order)})
    offset = (per_scan["repeat"] - (n + 1) / 2) * (0.25 / max(n, 1))
    ax.scatter(position + offset, per_scan["mass_score_mg"] / per_scan["true_mass_mg"], s=16,
               color="C0", alpha=0.8, label="simulated scans", zorder=3)
    ax.scatter(x, summary["mass_ratio"], marker="D", s=36, color="C1",
               label="simulated: mean", zorder=4)
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="true mass")
    ax.set_xticks(x, [f"{d:.0f} mm\n{rho:.0f}" for d, rho in
                      zip(summary["diameter_mm"], summary["density_mg_cm3"])])
    ax.set_xlabel("insert: diameter = length (mm) and density (mg HA/cm3)")
    ax.set_ylabel("mass score / true mass")
    ax.set_title(f"Clinical mass score against the truth, {body} body ({n} simulated scan(s))")
    ax.legend(fontsize="small", loc="upper center")
    return fig


def run(args) -> int:
    """``pvcalc demo``: the calcification-insert phantom, simulated and scored."""
    report = run_demo(repeats=args.repeats, seed=args.seed, protocol=args.protocol,
                      extension_ring=args.extension_ring, out=args.out, echo=print)
    return 0 if report is not None else 1

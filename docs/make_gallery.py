"""Gallery figure and realism table of the named phantoms.

    python docs/make_gallery.py              # docs/img/gallery_cci.png (+ patient figure)
    python docs/make_gallery.py --realism    # CCI replica vs real scanners, printed table
    python docs/make_gallery.py --realism --repeats 2   # quicker
    python docs/make_gallery.py --motion constant --repeats 10   # motion phantom table

The gallery renders the insert plane of the CCI replica three times: static
(calcium-scoring CT), with in-plane motion, and with the low-dose chest protocol,
cropped to the insert, at a calcium window (W 1500 / L 300), with the 130 HU
threshold overlay in a second row, insert labels and a 10 mm scale bar.

The realism mode simulates repeated scans of the replica (small body and with the
extension ring), scores each insert clinically (``pvcalc.score``, preset
"standard", calibration from the rods) inside a label mask around the insert, and
prints the mean over repeats beside the mean over real scans of the same insert
from ``pvcalc/data/qrm_cci_clinical_scores.csv`` (rows with body "small"/"large").
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from importlib import resources
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
IMG = HERE / "img"
WINDOW_LEVEL = (1500.0, 300.0)
CROP_MM = 52.0


def _nearest_slice(scan, z_mm):
    return int(np.argmin(np.abs(scan.z.values - z_mm)))


def _moving_cci(velocity_mm_s):
    """The CCI replica whose inserts all move along x at a constant speed."""
    from phantoms.library import cci_phantom
    from phantoms.motion import ConstantVelocity

    p = cci_phantom()
    lesions = tuple(dataclasses.replace(les, motion=ConstantVelocity((0.0, 0.0, velocity_mm_s)))
                    for les in p.lesions)
    return dataclasses.replace(p, lesions=lesions, name=f"cci_moving_{velocity_mm_s:g}")


def render_gallery(out_dir=IMG, *, seed=7, velocity_mm_s=40.0):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from phantoms.library import cci_phantom
    from phantoms.scanner import get_protocol
    from phantoms.simulate import simulate

    cs = get_protocol("calcium_scoring")
    ld = get_protocol("low_dose_chest")
    static = cci_phantom()
    panels = [
        ("Calcium-scoring CT, static\n120 kVp, 3 mm, soft kernel, 20 HU noise",
         simulate(static, cs, seed=seed)),
        (f"Same, inserts moving {velocity_mm_s:g} mm/s along x\n"
         f"{cs.temporal_resolution_ms:g} ms window: {velocity_mm_s * cs.temporal_resolution_ms / 1000:g}"
         " mm smear",
         simulate(_moving_cci(velocity_mm_s), cs, seed=seed)),
        ("Low-dose chest CT, static\n1.25 mm, sharp kernel, 40 HU noise",
         simulate(static, ld, seed=seed)),
    ]
    w, lvl = WINDOW_LEVEL
    vmin, vmax = lvl - w / 2, lvl + w / 2
    fig, axes = plt.subplots(2, 3, figsize=(13.5, 9.4), constrained_layout=True)
    for col, (title, (scan, truth)) in enumerate(panels):
        k = _nearest_slice(scan, 0.0)
        img = scan.isel(z=k)
        img = img.sel(y=slice(-CROP_MM, CROP_MM), x=slice(-CROP_MM, CROP_MM))
        ext = (float(img.x[0]), float(img.x[-1]), float(img.y[-1]), float(img.y[0]))
        for row in range(2):
            ax = axes[row, col]
            ax.imshow(img.values, cmap="gray", vmin=vmin, vmax=vmax, extent=ext,
                      interpolation="nearest")
            if row == 1:
                over = np.ma.masked_less(img.values, 130.0)
                ax.imshow(over, cmap="autumn", vmin=130, vmax=1000, alpha=0.85, extent=ext,
                          interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{title}\nslice z = {float(scan.z[k]):.2f} mm", fontsize=10)
                for les in static.lesions:
                    _, y, x = les.shape.centre_mm
                    ax.annotate(les.name, (x, y), xytext=(0, 9), textcoords="offset points",
                                color="#7fd7ff", fontsize=7, ha="center")
                for rod, label in zip(static.rods, ("HA 200", "water")):
                    ry, rx = rod.centre_yx_mm
                    ax.add_patch(plt.Circle((rx, ry), rod.radius_mm + 1.0, fill=False,
                                            ls="--", lw=0.8, color="#ffe27f"))
                    ax.annotate(label, (rx, ry), xytext=(0, -16), textcoords="offset points",
                                color="#ffe27f", fontsize=7, ha="center")
            else:
                ax.set_title(">= 130 HU (what clinical scoring keeps)", fontsize=10)
            x0, y0 = ext[0] + 5, ext[2] - 6
            ax.plot([x0, x0 + 10], [y0, y0], color="white", lw=3)
            ax.text(x0 + 5, y0 - 2, "10 mm", color="white", ha="center", va="bottom",
                    fontsize=8)
    fig.suptitle(f"CCI replica (phantoms.library.cci_phantom), insert plane; "
                 f"window W {w:g} / L {lvl:g} HU; seed {seed}", fontsize=12)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "gallery_cci.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def render_patient(out_dir=IMG, *, seed=5):
    """Maximum-intensity projection of one virtual patient (risk category > 400)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from phantoms.library import coronary_centrelines, virtual_patient
    from phantoms.scanner import get_protocol
    from phantoms.simulate import simulate

    p = virtual_patient(seed, risk_category=4)
    scan, _ = simulate(p, get_protocol("calcium_scoring"), seed=seed)
    crop = scan.sel(y=slice(-85, 45), x=slice(-60, 60))
    mip = crop.max("z").values
    ext = (float(crop.x[0]), float(crop.x[-1]), float(crop.y[-1]), float(crop.y[0]))
    fig, ax = plt.subplots(figsize=(6.4, 6.4), constrained_layout=True)
    w, lvl = WINDOW_LEVEL
    ax.imshow(mip, cmap="gray", vmin=lvl - w / 2, vmax=lvl + w / 2, extent=ext)
    colours = {"lm": "#ffe27f", "lad": "#7fd7ff", "lcx": "#b3ff7f", "rca": "#ff9f7f"}
    for artery, pts in coronary_centrelines().items():
        ax.plot(pts[:, 2], pts[:, 1], color=colours[artery], lw=1, alpha=0.8, label=artery.upper())
    ax.legend(loc="lower right", fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
    x0, y0 = ext[0] + 5, ext[2] - 6
    ax.plot([x0, x0 + 10], [y0, y0], color="white", lw=3)
    ax.text(x0 + 5, y0 - 2, "10 mm", color="white", ha="center", va="bottom", fontsize=8)
    ax.set_title(f"virtual_patient({seed}, risk_category=4): {len(p.lesions)} lesions\n"
                 "maximum-intensity projection along z, calcium-scoring CT", fontsize=10)
    path = out_dir / "gallery_patient.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def _labels_for(scan, truth, margin_mm=2.5, z_margin_mm=4.5):
    """Label image: a cylinder of radius d/2 + margin around each insert (truth centres)."""
    z = scan.z.values[:, None, None]
    y = scan.y.values[None, :, None]
    x = scan.x.values[None, None, :]
    lab = np.zeros(scan.shape, np.int32)
    names = {}
    for i in range(truth.sizes["lesion"]):
        name = str(truth["name"].values[i])
        d = float(np.cbrt(4.0 * float(truth["volume_mm3"].values[i]) / np.pi))  # d = L
        cz, cy, cx = (float(truth[f"centre_{a}_mm"].values[i]) for a in "zyx")
        inside = (((y - cy) ** 2 + (x - cx) ** 2) <= (d / 2 + margin_mm) ** 2) \
            & (np.abs(z - cz) <= d / 2 + z_margin_mm)
        lab[inside] = i + 1
        names[i + 1] = name
    return lab, names


def realism_table(*, repeats=5, seed=2021, echo=print):
    import pandas as pd

    import pvcalc
    from phantoms.library import CCI_REFERENCE_NAMES, cci_phantom
    from phantoms.scanner import get_protocol
    from phantoms.simulate import repeat

    protocol = get_protocol("calcium_scoring")
    rows = []
    for body, ring in (("small", False), ("large", True)):
        phantom = cci_phantom(extension_ring=ring)
        for r, (scan, truth) in enumerate(repeat(phantom, protocol, seed=seed + ring,
                                                 n_repeats=repeats)):
            ty, tx = scan.attrs.get("translation_y_mm", 0.0), scan.attrs.get("translation_x_mm", 0.0)
            rois = [((rod.centre_yx_mm[0] + ty, rod.centre_yx_mm[1] + tx), rod.radius_mm - 2.0)
                    for rod in phantom.rods]
            cal = pvcalc.Calibration.from_rods(scan, water_roi=rois[1], ha_roi=rois[0],
                                               ha_density_mg_cm3=200.0)
            lab, names = _labels_for(scan, truth)
            res = pvcalc.score(scan, labels=lab, preset="standard", calibration=cal)
            by = res.by_label
            for i in range(truth.sizes["lesion"]):
                name = str(truth["name"].values[i])
                hit = by[by["label"] == i + 1] if "label" in by.columns else by.iloc[0:0]
                get = (lambda c: float(hit[c].sum()) if len(hit) else 0.0)
                rows.append(dict(body=body, repeat=r, insert=CCI_REFERENCE_NAMES[name],
                                 agatston=get("agatston"), volume_score_mm3=get("volume_mm3"),
                                 mass_score_mg=get("mass_mg"), c_ha=cal.c_ha_mg_cm3_per_hu,
                                 true_volume_mm3=float(truth["volume_mm3"].values[i]),
                                 true_mass_mg=float(truth["mass_mg"].values[i])))
    sim = pd.DataFrame(rows)
    ref = pd.read_csv(str(resources.files("pvcalc") / "data" / "qrm_cci_clinical_scores.csv"))
    ref = ref[ref["body"].isin(["small", "large"])]
    cols = ["agatston", "volume_score_mm3", "mass_score_mg"]
    s = sim.groupby(["body", "insert"])[cols + ["true_volume_mm3", "true_mass_mg"]].mean()
    s["detected"] = sim.assign(d=sim.agatston > 0).groupby(["body", "insert"])["d"].mean()
    rf = ref.groupby(["body", "insert"])[cols].mean()
    rf["detected"] = ref.assign(d=ref.agatston > 0).groupby(["body", "insert"])["d"].mean()
    table = s.join(rf.add_suffix("_real"))
    order = [CCI_REFERENCE_NAMES[n] for n in CCI_REFERENCE_NAMES]
    table = table.reindex(pd.MultiIndex.from_product([["small", "large"], order],
                                                     names=["body", "insert"]))
    echo(f"c_HA from the simulated rods: mean {sim.c_ha.mean():.4f} mg cm^-3 HU^-1; "
         f"real scanners (these rows): {ref.c_ha.mean():.4f}")
    # spread of the phantom totals between repeats (coefficient of variation, ddof=1)
    tot = sim.groupby(["body", "repeat"])[["agatston", "mass_score_mg"]].sum()
    cv = tot.groupby("body").agg(lambda v: 100 * v.std(ddof=1) / v.mean())
    rtot = ref.groupby(["scanner", "body", "scan"])[["agatston", "mass_score_mg"]].sum()
    rcv = rtot.groupby(["scanner", "body"]).agg(lambda v: 100 * v.std(ddof=1) / v.mean())
    for body in ("small", "large"):
        echo(f"{body} body: CV of total Agatston over {repeats} simulated repeats "
             f"{cv.loc[body, 'agatston']:.1f}%, of total mass {cv.loc[body, 'mass_score_mg']:.1f}%; "
             f"real scanners (5 repeats each): Agatston "
             f"{rcv.xs(body, level='body')['agatston'].min():.1f}-"
             f"{rcv.xs(body, level='body')['agatston'].max():.1f}%, mass "
             f"{rcv.xs(body, level='body')['mass_score_mg'].min():.1f}-"
             f"{rcv.xs(body, level='body')['mass_score_mg'].max():.1f}%")
    return table


def motion_table(*, repeats=10, seed=2018, profile="constant", echo=print):
    """Clinical scores of the motion phantom's inserts by speed (mean over repeats)."""
    import pandas as pd

    import pvcalc
    from phantoms.library import motion_phantom
    from phantoms.scanner import get_protocol
    from phantoms.simulate import repeat

    protocol = get_protocol("calcium_scoring")
    window_s = protocol.temporal_resolution_ms / 1000.0
    phantom = motion_phantom(profile=profile)
    rows = []
    for r, (scan, truth) in enumerate(repeat(phantom, protocol, seed=seed, n_repeats=repeats)):
        z = scan.z.values[:, None, None]
        y = scan.y.values[None, :, None]
        x = scan.x.values[None, None, :]
        lab = np.zeros(scan.shape, np.int32)
        for i, les in enumerate(phantom.lesions):
            v = float(les.name[1:])
            d = 2 * les.shape.radius_mm
            cz, cy, cx = (float(truth[f"centre_{a}_mm"].values[i]) for a in "zyx")
            half_x = d / 2 + 2.5 + v * window_s / 2
            if profile == "cardiac":
                half_x += v * 0.15              # cardiac displacement of a few mm
            inside = ((np.abs(y - cy) <= d / 2 + 2.5) & (np.abs(x - cx) <= half_x)
                      & (np.abs(z - cz) <= d / 2 + 4.5))
            lab[inside] = i + 1
        res = pvcalc.score(scan, labels=lab, preset="standard")
        by = res.by_label.set_index("label")
        for i, les in enumerate(phantom.lesions):
            hit = by.loc[i + 1] if (i + 1) in by.index else None
            rows.append(dict(speed_mm_s=float(les.name[1:]), repeat=r,
                             agatston=float(hit["agatston"]) if hit is not None else 0.0,
                             volume_score_mm3=float(hit["volume_mm3"]) if hit is not None else 0.0,
                             true_volume_mm3=les.volume_mm3))
    df = pd.DataFrame(rows)
    out = df.groupby("speed_mm_s")[["agatston", "volume_score_mm3", "true_volume_mm3"]].agg(
        ["mean", "std"])
    echo(f"motion phantom ({profile}), {repeats} repeats, calcium_scoring preset "
         f"({protocol.temporal_resolution_ms:g} ms window), 5 mm 400 mg HA/cm3 inserts")
    speed = "speed (mm/s)" if profile == "constant" else "peak speed (mm/s)"
    smear = "smear v x window (mm)" if profile == "constant" else "v x window if constant (mm)"
    lines = [f"| {speed} | {smear} | Agatston mean | Agatston SD | volume score mean (mm3) "
             "| volume score SD (mm3) |", "|---|---|---|---|---|---|"]
    for v, r in out.iterrows():
        lines.append(f"| {v:g} | {v * window_s:.1f} | {r[('agatston', 'mean')]:.1f} | "
                     f"{r[('agatston', 'std')]:.1f} | {r[('volume_score_mm3', 'mean')]:.1f} | "
                     f"{r[('volume_score_mm3', 'std')]:.1f} |")
    echo("\n".join(lines))
    return out


def _markdown(table):
    head = ("| body | insert | true V mm3 | sim Agatston | real Agatston | sim volume mm3 | "
            "real volume mm3 | true mass mg | sim mass mg | real mass mg | sim detected | "
            "real detected |")
    lines = [head, "|" + "---|" * 12]
    for (body, ins), r in table.iterrows():
        lines.append(
            f"| {body} | {ins} | {r.true_volume_mm3:.2f} | {r.agatston:.1f} | "
            f"{r.agatston_real:.1f} | {r.volume_score_mm3:.1f} | {r.volume_score_mm3_real:.1f} | "
            f"{r.true_mass_mg:.2f} | {r.mass_score_mg:.2f} | {r.mass_score_mg_real:.2f} | "
            f"{r.detected:.0%} | {r.detected_real:.0%} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realism", action="store_true", help="print the realism table")
    ap.add_argument("--repeats", type=int, default=5, help="scans per body size (realism)")
    ap.add_argument("--seed", type=int, default=2021, help="seed of the realism scans")
    ap.add_argument("--motion", choices=("constant", "cardiac"), default=None,
                    help="print the motion phantom's scores by speed")
    args = ap.parse_args(argv)
    if args.motion:
        motion_table(repeats=args.repeats, profile=args.motion)
        return 0
    if args.realism:
        table = realism_table(repeats=args.repeats, seed=args.seed)
        print(_markdown(table))
        return 0
    for path in (render_gallery(), render_patient()):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

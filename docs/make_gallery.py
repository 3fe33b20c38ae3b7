"""Gallery figures of the named phantoms.

    python docs/make_gallery.py              # docs/img/gallery_cci.png (+ patient figure)

(The realism and motion tables are validation studies: ``validation/cci_realism.py``
and ``validation/motion_phantom.py``.)

The gallery renders the insert plane of the CCI replica three times: static
(calcium-scoring CT), with in-plane motion, and with the low-dose chest protocol,
cropped to the insert, at a calcium window (W 1500 / L 300), with the 130 HU
threshold overlay in a second row, insert labels and a 10 mm scale bar.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
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
    from phantoms.protocol import get_protocol
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
    for col, (title, (scan, _truth)) in enumerate(panels):
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
    from phantoms.protocol import get_protocol
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.parse_args(argv)
    for path in (render_gallery(), render_patient()):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Overlay of a located QRM calcification insert layout (:meth:`pvcalc.qrm.CCILayout.plot`)."""

from __future__ import annotations

import numpy as np

#: Display window of the overlay (HU): soft tissue to the 800 mg/cm3 inserts.
WINDOW_HU = (-150.0, 450.0)
#: Half-width of the displayed field around the insert axis (mm).
FIELD_MM = 62.0
_COLOURS = {800.0: "tab:red", 400.0: "tab:orange", 200.0: "gold"}


def _panel(ax, scan, k, centre, title):
    z = float(scan.z.values[k])
    y, x = scan.y.values, scan.x.values
    dy = float(y[1] - y[0]) if y.size > 1 else 1.0
    dx = float(x[1] - x[0]) if x.size > 1 else 1.0
    extent = (x[0] - dx / 2, x[-1] + dx / 2, y[-1] + dy / 2, y[0] - dy / 2)
    ax.imshow(np.asarray(scan.values[k]), cmap="gray", vmin=WINDOW_HU[0], vmax=WINDOW_HU[1],
              extent=extent, interpolation="nearest")
    ax.set_xlim(centre[1] - FIELD_MM, centre[1] + FIELD_MM)
    ax.set_ylim(centre[0] + FIELD_MM, centre[0] - FIELD_MM)   # y downwards, as displayed
    ax.plot([centre[1]], [centre[0]], "+", color="cyan", markersize=8)
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
    ax.set_title(f"{title}, z = {z:.1f} mm", fontsize=9)


def plot_layout(layout, scan, ax=None):
    """Draw ``layout`` on ``scan``; see :meth:`pvcalc.qrm.CCILayout.plot`."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    from pvcalc.scan import validate_scan

    validate_scan(scan)
    z = np.asarray(scan.z.values)
    k_ins = int(np.argmin(np.abs(z - layout.insert_z_mm)))
    rods = layout.rods
    k_rod = None
    if len(rods):
        k_rod = int(np.argmin(np.abs(z - float(np.mean(rods["centre_z_mm"])))))
    separate = k_rod is not None and k_rod != k_ins
    if ax is None:
        fig = Figure(figsize=(10.0 if separate else 5.2, 5.0), dpi=100, layout="constrained")
        axes = list(np.atleast_1d(fig.subplots(1, 2 if separate else 1)))
    else:
        axes = list(np.ravel(ax)) if isinstance(ax, (list, tuple, np.ndarray)) else [ax]
        fig = axes[0].figure
        if separate and len(axes) < 2:
            k_rod = None    # one axes: the insert plane only
    centre = layout.centre_yx_mm
    _panel(axes[0], scan, k_ins, centre,
           f"inserts (rotation {layout.rotation_deg:.0f} deg)")
    rois = layout.rois()
    for row, roi in zip(layout.inserts.itertuples(), rois.itertuples()):
        colour = _COLOURS.get(float(row.density_mg_cm3), "white")
        axes[0].add_patch(Circle((row.centre_x_mm, row.centre_y_mm), roi.radius_mm, fill=False,
                                 edgecolor=colour, linewidth=1.0,
                                 linestyle="-" if row.found else "--"))
        axes[0].annotate(row.lesion, (row.centre_x_mm, row.centre_y_mm - roi.radius_mm),
                         color=colour, fontsize=6, ha="center", va="bottom")
    axes[0].plot([], [], "-", color="white", label="found")
    axes[0].plot([], [], "--", color="white", label="placed from the layout")
    axes[0].legend(loc="lower right", fontsize=6, facecolor="0.2", labelcolor="white")
    if k_rod is not None:
        target = axes[1] if separate else axes[0]
        if separate:
            _panel(target, scan, k_rod, centre, "calibration rods")
        try:
            rois_rod = dict(zip(("water", "ha200"), layout.rod_rois()))
        except ValueError:
            rois_rod = {}
        for row in rods.itertuples():
            target.add_patch(Circle((row.centre_x_mm, row.centre_y_mm), row.radius_mm, fill=False,
                                    edgecolor="deepskyblue", linewidth=1.0))
            if row.rod in rois_rod:
                target.add_patch(Circle((row.centre_x_mm, row.centre_y_mm), rois_rod[row.rod][1],
                                        fill=False, edgecolor="deepskyblue", linestyle=":",
                                        linewidth=1.0))
            target.annotate(f"{row.rod}\n{row.mean_hu:.0f} HU",
                            (row.centre_x_mm, row.centre_y_mm + row.radius_mm), color="deepskyblue",
                            fontsize=6, ha="center", va="top")
    return fig

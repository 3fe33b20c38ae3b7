"""Round trip of the scanner measurement: does measure_protocol give back the protocol a scan was
simulated with?

Question: on simulated scans of the physical CCI replica, over a grid of protocols (PSF FWHM
0.8 / 1.3 / 2.0 mm x noise 10 / 20 / 40 HU x NPS peak tied to the PSF / 0.12 / 0.30
cycles/mm x 1.1 / 1.5 HU per mg HA/cm3, 54 scans, each with its own spoke rotation and
in-plane offset), how close are the PSF FWHM, the noise SD, the NPS peak and the HU per mg
HA measured by :func:`pvcalc.twin.measure_protocol` (which sees only the image and the
layout :func:`pvcalc.qrm.locate_cci` finds in it) to the values set in the protocol, and
are its standard errors honest (error / SE about 1 in RMS)?

Tolerances: PSF FWHM 10%, noise SD 5%, NPS peak 10%, HU per mg HA 2%.

Command::

    python validation/measure_protocol.py            # 54 scans, about 3 min on 2 cores
    python validation/measure_protocol.py --twin 10  # the twin of one repeated scan
    python validation/measure_protocol.py --pixels   # PSF FWHM against the pixel size

With ``--twin N`` it checks the twin instead: a "real" scan that is itself a repeated
(repositioned) simulated scan, and its twin of N repeats (:func:`pvcalc.twin.simulate_twin`);
the real values should fall outside the twin's mean +- 2 SD about as often as chance
allows (about 5%, more with few repeats, whose SD is uncertain).

Writes ``validation/results/measure_protocol.csv`` (one row per scan and quantity) and
prints the summary table of ``validation/measure_protocol.md``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import phantoms
from pvcalc.qrm import locate_cci
from pvcalc.twin import measure_protocol

FWHM_MM = (0.8, 1.3, 2.0)
NOISE_HU = (10.0, 20.0, 40.0)
NPS_PEAK = (None, 0.12, 0.30)
HU_PER_MG = (1.1, 1.5)
#: quantity -> relative tolerance
TOLERANCE = {"psf_fwhm_mm": 0.10, "noise_sd_hu": 0.05, "nps_peak_freq_per_mm": 0.10,
             "hu_per_mg_ha": 0.02}
OUT = Path(__file__).resolve().parent / "results" / "measure_protocol.csv"


def one_scan(index, fwhm, noise, peak, k, seed, matrix):
    rng = np.random.default_rng([seed, index])
    rotation = float(rng.uniform(0.0, 360.0))
    centre = tuple(float(v) for v in rng.uniform(-10.0, 10.0, 2))
    phantom = phantoms.cci_phantom(rotation_deg=rotation, centre_yx_mm=centre,
                                   z_extent_mm=(-4.5, 49.5))
    protocol = phantoms.get_protocol("calcium_scoring", matrix=matrix, psf_fwhm_mm=fwhm,
                                     noise_sd_hu=noise, nps_peak_freq_per_mm=peak,
                                     hu_per_mg_ha=k)
    scan, _ = phantoms.simulate(phantom, protocol, seed=seed * 1000 + index, fraction_maps=False)
    _, report = measure_protocol(scan, locate_cci(scan), n_boot=50, seed=index)
    values = report.set_index("quantity")
    truth = {"psf_fwhm_mm": fwhm, "noise_sd_hu": noise,
             "nps_peak_freq_per_mm": protocol.nps_peak_per_mm, "hu_per_mg_ha": k}
    rows = []
    for quantity, true in truth.items():
        measured, se = float(values.loc[quantity, "value"]), float(values.loc[quantity, "se"])
        rel = measured / true - 1.0
        rows.append(dict(scan=index, psf_fwhm_mm_set=fwhm, noise_sd_hu_set=noise,
                         nps_peak_set=("tied" if peak is None else peak), hu_per_mg_ha_set=k,
                         rotation_deg=rotation, centre_y_mm=centre[0], centre_x_mm=centre[1],
                         quantity=quantity, true=true, measured=measured, se=se,
                         rel_error=rel, error_over_se=(measured - true) / se if se > 0 else
                         float("nan"), tolerance=TOLERANCE[quantity],
                         within=abs(rel) <= TOLERANCE[quantity],
                         psf_non_gaussian=bool(values.loc["psf_non_gaussian", "value"])))
    return rows


def summary(table):
    out = []
    for (quantity, noise), g in table.groupby(["quantity", "noise_sd_hu_set"], sort=False):
        out.append(dict(quantity=quantity, noise_sd_hu=noise, scans=len(g),
                        within_tolerance=f"{int(g['within'].sum())}/{len(g)}",
                        mean_rel_error=g["rel_error"].mean(),
                        max_abs_rel_error=g["rel_error"].abs().max(),
                        rms_error_over_se=math.sqrt(float((g["error_over_se"] ** 2).mean()))))
    return pd.DataFrame(out)


def markdown(df):
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns)
    rows = []
    for r in df.itertuples(index=False):
        cells = []
        for v in r:
            if isinstance(v, float):
                cells.append(f"{v:+.4f}" if abs(v) < 1 else f"{v:.3g}")
            else:
                cells.append(str(v))
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join([head, *rows])


def pixel_check(seed):
    print("| pixel (mm) | PSF FWHM set (mm) | FWHM / pixel | measured (mm) | error |\n"
          "|---|---|---|---|---|")
    for pixel, fwhm in ((0.3, 0.5), (0.49, 0.6), (0.49, 0.8), (0.49, 2.0), (0.68, 0.6),
                        (0.68, 0.8), (0.68, 1.0), (0.8, 1.0), (0.8, 1.3)):
        protocol = phantoms.get_protocol("calcium_scoring", matrix=int(130 / pixel),
                                         pixel_mm=pixel, psf_fwhm_mm=fwhm, noise_sd_hu=0.5)
        scan, _ = phantoms.simulate(phantoms.cci_phantom(), protocol, seed=seed,
                                    fraction_maps=False)
        _, report = measure_protocol(scan, n_boot=0)
        got = float(report.set_index("quantity").loc["psf_fwhm_mm", "value"])
        print(f"| {pixel:g} | {fwhm:g} | {fwhm / pixel:.2f} | {got:.3f} | "
              f"{100 * (got / fwhm - 1):+.1f}% |")
    return 0


def twin_check(repeats, seed, matrix):
    from pvcalc.twin import simulate_twin

    phantom = phantoms.cci_phantom(rotation_deg=70.0, centre_yx_mm=(4.0, -6.0))
    protocol = phantoms.get_protocol("calcium_scoring", matrix=matrix, psf_fwhm_mm=1.1,
                                     noise_sd_hu=25.0, hu_per_mg_ha=1.38)
    t0 = time.perf_counter()
    real, _ = phantoms.simulate_repeat(phantom, protocol, seed=seed, index=999,
                                       fraction_maps=False)
    twin = simulate_twin(real, repeats=repeats, seed=seed + 1, n_boot=50)
    seconds = time.perf_counter() - t0
    comp = twin.comparison[twin.comparison["outside"].notna()]
    noise = twin.noise[twin.noise["outside"].notna()]
    print(f"twin of one repeated scan, {repeats} twin repeats, {seconds:.0f} s; failures: "
          f"{len(twin.failures)}")
    print(f"inserts: {int(comp['outside'].sum())} of {len(comp)} values outside mean +- 2 SD")
    by = comp.groupby("method")["outside"].agg(["sum", "count"])
    print("  by method: " + ", ".join(f"{m} {int(r['sum'])}/{int(r['count'])}"
                                      for m, r in by.iterrows()))
    print(f"image quality: {int(noise['outside'].sum())} of {len(noise)} outside: "
          + ", ".join(noise.loc[noise["outside"].astype(bool), "quantity"]))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--matrix", type=int, default=256,
                        help="in-plane matrix at 0.49 mm (256: a 125 mm field holds the insert)")
    parser.add_argument("--quick", action="store_true", help="the 8 corners only")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--pixels", action="store_true",
                        help="check the PSF FWHM of nearly noise-free scans (0.5 HU) against "
                             "the pixel size instead")
    parser.add_argument("--twin", type=int, default=0, metavar="N",
                        help="check the twin of one repeated scan with N twin repeats instead")
    args = parser.parse_args(argv)
    if args.twin:
        return twin_check(args.twin, args.seed, args.matrix)
    if args.pixels:
        return pixel_check(args.seed)
    grid = list(itertools.product(FWHM_MM, NOISE_HU, NPS_PEAK, HU_PER_MG))
    if args.quick:
        grid = [g for g in grid if g[0] != 1.3 and g[1] != 20.0 and g[2] == 0.30]
    t0 = time.perf_counter()
    rows = []
    for index, (fwhm, noise, peak, k) in enumerate(grid):
        rows += one_scan(index, fwhm, noise, peak, k, args.seed, args.matrix)
    table = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    seconds = time.perf_counter() - t0
    print(f"{len(grid)} scans in {seconds:.0f} s; per quantity and noise level:\n")
    print(markdown(summary(table)))
    flagged = table.groupby("scan")["psf_non_gaussian"].first().sum()
    print(f"\nscans whose (Gaussian) PSF was flagged non-Gaussian: {int(flagged)} of {len(grid)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

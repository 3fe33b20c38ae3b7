"""The MTF and NPS figures of docs/real_phantom.md ("Measure the scanner").

    python docs/make_twin_figures.py          # docs/img/twin_mtf.png, docs/img/twin_nps.png

A simulated calcium-scoring scan of the physical insert geometry
(:func:`phantoms.cci_phantom`, spokes turned by 30 degrees) whose protocol differs from
the preset (PSF FWHM 1.1 mm, noise SD 25 HU, 1.38 HU per mg HA/cm3), measured by
:func:`pvcalc.twin.measure_protocol` and drawn by :func:`pvcalc.twin.plot_mtf` and
:func:`pvcalc.twin.plot_nps`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def render(folder=HERE / "img", *, seed=7):
    import matplotlib.pyplot as plt

    import phantoms
    from pvcalc.twin import measure_protocol, plot_mtf, plot_nps

    phantom = phantoms.cci_phantom(rotation_deg=30.0)
    protocol = phantoms.get_protocol("calcium_scoring", matrix=320, psf_fwhm_mm=1.1,
                                     noise_sd_hu=25.0, hu_per_mg_ha=1.38)
    scan, _ = phantoms.simulate(phantom, protocol, seed=seed, fraction_maps=False)
    measured, report = measure_protocol(scan)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, plot in (("twin_mtf.png", plot_mtf), ("twin_nps.png", plot_nps)):
        fig = plot(report)
        fig.set_size_inches(5.0, 3.4)
        fig.savefig(folder / name, dpi=90, metadata={"Software": None})
        plt.close(fig)
        paths.append(folder / name)
    return paths, measured


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE / "img"), help="folder of the two PNG files")
    args = parser.parse_args(argv)
    paths, measured = render(args.out)
    print(f"wrote {', '.join(map(str, paths))}: PSF FWHM {measured.psf_fwhm_mm:.3f} mm, noise "
          f"SD {measured.noise_sd_hu:.2f} HU, {measured.hu_per_mg_ha:.4f} HU per mg HA/cm3")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

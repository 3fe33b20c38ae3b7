"""The overlay figure of docs/real_phantom.md ("Locate the phantom").

    python docs/make_cci_overlay.py          # docs/img/cci_overlay.png

A simulated calcium-scoring scan of the physical insert geometry
(:func:`phantoms.cci_phantom`), spokes turned by 50 degrees (the 800 mg/cm3 spoke at
140 degrees) and 12 mm off-centre, located by :func:`pvcalc.qrm.locate_cci` and drawn
by :meth:`pvcalc.qrm.CCILayout.plot`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent


def render(out=HERE / "img" / "cci_overlay.png", *, seed=11):
    import phantoms
    from pvcalc.qrm import locate_cci

    phantom = phantoms.cci_phantom(rotation_deg=50.0, centre_yx_mm=(8.0, -9.0))
    protocol = phantoms.get_protocol("calcium_scoring", matrix=320, pixel_mm=0.6)
    scan, _ = phantoms.simulate(phantom, protocol, seed=seed, fraction_maps=False)
    layout = locate_cci(scan)
    fig = layout.plot(scan)
    fig.set_size_inches(8.0, 4.0)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, metadata={"Software": None})
    return out, layout


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(HERE / "img" / "cci_overlay.png"))
    args = parser.parse_args(argv)
    out, layout = render(args.out)
    print(f"wrote {out}: {layout!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

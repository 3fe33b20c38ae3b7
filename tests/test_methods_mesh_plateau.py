"""``mesh``: the plateau test never casts an unresolved edge, and a lesion whose profiles
cross no half-maximum level gets a "no plateau" reason instead of a RuntimeWarning."""

import warnings

import numpy as np
import pandas as pd

import phantoms
import pvcalc
from phantoms import Lesion, Phantom, Sphere, ThoraxBody, get_protocol
from pvcalc.methods import MeshParams, _mesh, quantify

CAL = pvcalc.Calibration(1.0 / phantoms.hu_per_mg_cm3(120.0))


def _edge_profiles(n, m=46, h=0.1, edge=15):
    """n noise-free step profiles (0 outside, 100 HU inside) with their edge at sample ``edge``."""
    s = (np.arange(m) - 15) * h
    prof = np.where(np.arange(m)[None, :] >= edge, 100.0, 0.0).repeat(n, axis=0)
    return prof, s, np.zeros(n), np.full(n, s[edge] - 0.5 * h)


def test_plateau_ratio_ignores_unresolved_edges_without_a_warning():
    prof, s, b, s50 = _edge_profiles(6)
    params = MeshParams()
    clean = _mesh._plateau_ratio(prof[:3], s, b[:3], s50[:3], [np.arange(3)], params)
    bad = s50.copy()
    bad[3:] = (np.nan, np.inf, 1e300)      # unresolved, infinite and absurd edges
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mixed = _mesh._plateau_ratio(prof, s, b, bad, [np.arange(6)], params)
        none = _mesh._plateau_ratio(prof, s, b, np.full(6, np.nan), [np.arange(6)], params)
    # the absurd finite edge is clipped to the profile's end, where the mean has no top
    assert clean > 2.0 and mixed <= clean
    assert np.isnan(none)     # no bin with a resolved edge: nothing to test


def test_a_lesion_whose_profiles_cross_nothing_gets_a_no_plateau_reason(monkeypatch):
    ph = Phantom(ThoraxBody(), [Lesion(Sphere((0.0, 0.0, 0.0), 2.5), 400.0, name="s5")],
                 z_extent_mm=(-9.0, 9.0))
    scan, truth = phantoms.simulate(ph, get_protocol("thin_slice_cscT", matrix=128), seed=1,
                                    noise=False)
    table = pd.DataFrame({"lesion": ["s5"], "centre_z_mm": truth["centre_z_mm"].values,
                          "centre_y_mm": truth["centre_y_mm"].values,
                          "centre_x_mm": truth["centre_x_mm"].values, "radius_mm": [5.0]})
    reached = quantify(scan, table, calibration=CAL, methods=["mesh"]).iloc[0]
    assert reached["reason"] == "" and reached["plateau_ratio"] >= 2.0
    profiles = _mesh._profiles

    def unresolved(*args):
        prof, s, b, s50, sigma = profiles(*args)
        return prof, s, b, np.full_like(s50, np.nan), sigma

    monkeypatch.setattr(_mesh, "_profiles", unresolved)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        row = quantify(scan, table, calibration=CAL, methods=["mesh"]).iloc[0]
    assert "no plateau: no vertex profile crosses its half-maximum level" in row["reason"]
    assert row["reason"].startswith("unresolved edges: 100%")
    assert np.isnan(row["plateau_ratio"]) and row["volume_mm3"] == row["volume_half_max_mm3"]

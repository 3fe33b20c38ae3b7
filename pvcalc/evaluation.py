"""Estimates beside the truth: scores of simulated lesions next to their true values.

Simulation studies judge a scoring convention or a partial-volume method by
comparing what it measures in each lesion's region of interest with the
lesion's exact volume and mass from the simulator's truth. This module is the
one place that puts the two side by side:

- :func:`score_lesions`: clinical scores of every true lesion of one scan (a
  wide table, one row per lesion);
- :func:`evaluate_repeat` / :func:`evaluate_repeats`: simulate repeated scans
  of a phantom one at a time, calibrate and score each (the wide table of
  every scan, with a ``repeat`` column);
- :func:`quantify_repeats`: the same scans measured by every partial-volume
  method (:func:`pvcalc.quantify`), one row per scan, lesion and method;
- :func:`beside_truth`: any wide per-lesion result table beside the truth in
  long form, ``lesion | method | quantity | estimate | truth``, the input of
  :mod:`pvcalc.stats`.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from pvcalc.calibration import Calibration, rod_calibration
from pvcalc.rois import truth_roi_labels
from pvcalc.scoring import score

__all__ = ["DESCRIPTORS", "QUANTITIES", "TRUTH_COLUMNS", "beside_truth", "evaluate_repeat",
           "evaluate_repeats", "quantify_repeats", "score_lesions"]

#: Truth variables copied into the per-lesion table.
TRUTH_COLUMNS = ("volume_mm3", "mass_mg", "density_mg_cm3", "shape", "radius_mm", "length_mm",
                 "peak_velocity_mm_s")


def score_lesions(scan, truth, *, calibration, preset="standard", margin_mm=2.0,
                  **score_options) -> pd.DataFrame:
    """Clinical scores of every true lesion, inside its own region of interest.

    Parameters
    ----------
    scan : xarray.DataArray
        A simulated scan.
    truth : xarray.Dataset
        Its truth (from the same :func:`phantoms.simulate` call).
    calibration : Calibration
        Mass calibration (e.g. :func:`rod_calibration`).
    preset : str or ScoringPreset, optional
        Scoring convention. Default "standard".
    margin_mm : float, optional
        ROI = the lesion's footprint grown by this margin (see
        :func:`pvcalc.rois.truth_roi_labels`). Default 2 mm.
    **score_options
        Passed to :func:`pvcalc.score`.

    Returns
    -------
    pandas.DataFrame
        One row per true lesion: ``lesion`` (name), the truth columns
        ``true_volume_mm3``, ``true_mass_mg``, ``density_mg_cm3``, shape
        parameters where present, then ``agatston``, ``volume_score_mm3``,
        ``mass_score_mg`` (0 for a missed lesion), ``detected`` (bool) and
        ``c_ha`` (mg HA cm^-3 HU^-1).
    """
    from phantoms.truth import lesion_table

    lesions = lesion_table(truth)
    labels = truth_roi_labels(scan, truth, margin_mm=margin_mm)
    result = score(scan, labels=labels, preset=preset, calibration=calibration, **score_options)
    measured = result.by_label.set_index("label")
    n = len(lesions)
    table = lesions[["lesion"]].copy()
    for column in TRUTH_COLUMNS:
        if column in lesions:
            name = f"true_{column}" if column in ("volume_mm3", "mass_mg") else column
            table[name] = lesions[column].to_numpy()
    label_ids = np.arange(1, n + 1)
    for source, target in (("agatston", "agatston"), ("volume_mm3", "volume_score_mm3"),
                           ("mass_mg", "mass_score_mg")):
        table[target] = measured[source].reindex(label_ids).fillna(0.0).to_numpy(dtype=float)
    table["detected"] = table["agatston"] > 0
    table["c_ha"] = calibration.c_ha_mg_cm3_per_hu
    return table


# --- repeated scans: simulate -> calibrate -> score, one scan at a time ---------------------

def _calibrator(calibration):
    if isinstance(calibration, str) and calibration == "rods":
        return rod_calibration
    if isinstance(calibration, Calibration):
        return lambda scan, phantom: calibration
    raise TypeError(
        f"calibration must be 'rods' (calibrate each scan on the phantom's water and HA rods, "
        f"pvcalc.calibration.rod_calibration) or a pvcalc.Calibration used for every scan, "
        f"got {type(calibration).__name__} {calibration!r}; e.g. calibration=pvcalc.Calibration("
        f"c_ha_mg_cm3_per_hu=0.8) for a phantom without rods")


def _check_simulate_options(simulate_options):
    if simulate_options is None:
        return {}
    if not isinstance(simulate_options, dict):
        raise TypeError(f"simulate_options must be a dict of phantoms.simulate_repeat keyword "
                        f"arguments or None, got {type(simulate_options).__name__}; pass e.g. "
                        f"simulate_options={{'n_time_samples': 8}}")
    if "fraction_maps" in simulate_options:
        raise ValueError("simulate_options must not set fraction_maps: each lesion's region "
                         "of interest is grown from its fraction map "
                         "(pvcalc.rois.truth_roi_labels); remove the key")
    return dict(simulate_options)


def evaluate_repeat(phantom, protocol, *, seed, index, preset="standard", calibration="rods",
                    margin_mm=2.0, reposition=True, noise=True, simulate_options=None,
                    **score_options) -> pd.DataFrame:
    """Simulate one repeated scan of a phantom, calibrate it and score every true lesion.

    The scan is repeat ``index`` of :func:`phantoms.repeat` with the same
    ``seed`` (computed alone by :func:`phantoms.simulate_repeat`), so a study
    can compute, skip or resume repeats one by one.

    Parameters
    ----------
    phantom : phantoms.Phantom
        The phantom (for ``calibration="rods"``, with a water and an HA rod).
    protocol : phantoms.Protocol
        The scanner protocol.
    seed : int
        Seed of the series of repeats.
    index : int
        0-based number of the repeat in the series.
    preset : str or ScoringPreset, optional
        Scoring convention (see :func:`pvcalc.score`). Default "standard".
    calibration : "rods" or Calibration, optional
        ``"rods"`` (default): each scan calibrated on the phantom's own rods
        (:func:`pvcalc.calibration.rod_calibration`); a
        :class:`pvcalc.Calibration`: the same factor for every scan.
    margin_mm : float, optional
        ROI margin around each lesion's footprint (see :func:`score_lesions`).
        Default 2 mm.
    reposition, noise : bool, optional
        As :func:`phantoms.repeat` (default True: a new random repositioning
        and a new noise realisation per repeat).
    simulate_options : dict, optional
        Further keyword arguments of :func:`phantoms.simulate_repeat`
        (``translation_sd_mm``, ``n_time_samples``, ...).
    **score_options
        Passed to :func:`pvcalc.score` (e.g. ``connectivity=4``).

    Returns
    -------
    pandas.DataFrame
        :func:`score_lesions`' table of the scan (one row per true lesion)
        with a last column ``repeat`` = ``index + 1`` (1-based: scan 1, 2, ...).
        ``attrs`` holds ``simulation_s`` and ``scoring_s`` (wall-clock seconds
        spent simulating, and calibrating plus scoring).

    Examples
    --------
    >>> import phantoms
    >>> from pvcalc.evaluation import evaluate_repeat
    >>> table = evaluate_repeat(phantoms.cci_phantom(), phantoms.get_protocol("calcium_scoring"),
    ...                         seed=0, index=1, noise=False)
    >>> table["repeat"].unique().tolist(), table.loc[~table["detected"], "lesion"].tolist()
    ([2], ['small_md', 'small_ld'])
    """
    import phantoms

    calibrate = _calibrator(calibration)
    options = _check_simulate_options(simulate_options)
    t0 = time.perf_counter()
    scan, truth = phantoms.simulate_repeat(phantom, protocol, seed=seed, index=index,
                                           reposition=reposition, noise=noise, **options)
    t1 = time.perf_counter()
    table = score_lesions(scan, truth, calibration=calibrate(scan, phantom), preset=preset,
                          margin_mm=margin_mm, **score_options)
    table["repeat"] = int(index) + 1
    table.attrs.update(simulation_s=t1 - t0, scoring_s=time.perf_counter() - t1)
    return table


def evaluate_repeats(phantom, protocol, *, seed, n_repeats, preset="standard",
                     calibration="rods", margin_mm=2.0, reposition=True, noise=True,
                     simulate_options=None, **score_options) -> pd.DataFrame:
    """Repeated scans of a phantom, each calibrated and scored lesion by lesion.

    Runs :func:`evaluate_repeat` for ``index = 0 .. n_repeats - 1``: one scan
    is held in memory at a time, and the scans are those of
    :func:`phantoms.repeat` with the same ``seed``.

    Parameters
    ----------
    phantom, protocol, seed, preset, calibration, margin_mm, reposition, noise, simulate_options
        As :func:`evaluate_repeat`.
    n_repeats : int
        Number of repeated scans (>= 1).
    **score_options
        Passed to :func:`pvcalc.score`.

    Returns
    -------
    pandas.DataFrame
        One row per (scan, true lesion): the columns of :func:`score_lesions`
        and ``repeat`` (1 .. ``n_repeats``). ``attrs`` holds the total
        ``simulation_s`` and ``scoring_s``. :func:`beside_truth` turns it into
        the long table of :mod:`pvcalc.stats`.

    Examples
    --------
    >>> import phantoms
    >>> from pvcalc.evaluation import evaluate_repeats
    >>> per_scan = evaluate_repeats(phantoms.cci_phantom(),
    ...                             phantoms.get_protocol("calcium_scoring"), seed=0,
    ...                             n_repeats=2)
    >>> per_scan.groupby("repeat")["lesion"].count().tolist()
    [9, 9]
    """
    _check_n_repeats(n_repeats)
    tables = [evaluate_repeat(phantom, protocol, seed=seed, index=index, preset=preset,
                              calibration=calibration, margin_mm=margin_mm,
                              reposition=reposition, noise=noise,
                              simulate_options=simulate_options, **score_options)
              for index in range(int(n_repeats))]
    out = pd.concat(tables, ignore_index=True)
    out.attrs = {key: float(sum(t.attrs[key] for t in tables))
                 for key in ("simulation_s", "scoring_s")}
    return out


def _check_n_repeats(n_repeats):
    if isinstance(n_repeats, (bool, np.bool_)) or not isinstance(n_repeats, (int, np.integer)):
        raise TypeError(f"n_repeats must be a positive integer, got {type(n_repeats).__name__} "
                        f"{n_repeats!r}; pass e.g. n_repeats=3")
    if n_repeats < 1:
        raise ValueError(f"n_repeats must be >= 1, got {n_repeats}")


def quantify_repeats(phantom, protocol, *, seed, n_repeats, methods="all", calibration="rods",
                     margin_mm=2.0, reposition=True, noise=True, simulate_options=None,
                     params=None, region_params=None) -> pd.DataFrame:
    """Repeated scans of a phantom, each calibrated and measured by every method.

    The scans of :func:`evaluate_repeats` (those of :func:`phantoms.repeat`
    with the same ``seed``, one in memory at a time), each calibrated the same
    way and passed to :func:`pvcalc.quantify` with one ROI per true lesion
    (:func:`pvcalc.rois.truth_roi_labels`, the ROIs of :func:`score_lesions`).

    Parameters
    ----------
    phantom, protocol, seed, calibration, margin_mm, reposition, noise, simulate_options
        As :func:`evaluate_repeat`.
    n_repeats : int
        Number of repeated scans (>= 1).
    methods, params, region_params
        As :func:`pvcalc.quantify` (default: every method).

    Returns
    -------
    pandas.DataFrame
        One row per (scan, true lesion, method): ``lesion``, its
        ``true_volume_mm3`` and ``true_mass_mg``, the other columns of
        :func:`pvcalc.quantify`, ``c_ha`` (mg HA cm^-3 HU^-1) and ``repeat``
        (1 .. ``n_repeats``). ``attrs`` holds the total ``simulation_s`` and
        ``quantify_s`` (calibrating plus quantifying). :func:`beside_truth`
        takes it as it is.

    Examples
    --------
    >>> import phantoms
    >>> from pvcalc.evaluation import quantify_repeats
    >>> table = quantify_repeats(phantoms.cci_phantom(), phantoms.get_protocol("calcium_scoring"),
    ...                          seed=0, n_repeats=2, methods=["clinical", "integrated"])
    >>> table.groupby(["repeat", "method"], sort=False)["lesion"].count().tolist()
    [9, 9, 9, 9]
    """
    import phantoms
    from phantoms.truth import lesion_table
    from pvcalc.methods import quantify

    _check_n_repeats(n_repeats)
    calibrate = _calibrator(calibration)
    options = _check_simulate_options(simulate_options)
    tables, seconds = [], {"simulation_s": 0.0, "quantify_s": 0.0}
    for index in range(int(n_repeats)):
        t0 = time.perf_counter()
        scan, truth = phantoms.simulate_repeat(phantom, protocol, seed=seed, index=index,
                                               reposition=reposition, noise=noise, **options)
        t1 = time.perf_counter()
        cal = calibrate(scan, phantom)
        table = quantify(scan, truth_roi_labels(scan, truth, margin_mm=margin_mm),
                         methods=methods, calibration=cal, params=params,
                         region_params=region_params)
        true = lesion_table(truth).set_index("lesion")
        table.insert(1, "true_volume_mm3", true["volume_mm3"].reindex(table["lesion"]).to_numpy())
        table.insert(2, "true_mass_mg", true["mass_mg"].reindex(table["lesion"]).to_numpy())
        tables.append(table.assign(c_ha=cal.c_ha_mg_cm3_per_hu, repeat=index + 1))
        seconds["simulation_s"] += t1 - t0
        seconds["quantify_s"] += time.perf_counter() - t1
    out = pd.concat(tables, ignore_index=True)
    out.attrs = seconds
    return out


# --- long form: lesion | method | quantity | estimate | truth -------------------------------

#: Quantities of the long table, in row order, with the true-value column of each
#: (the truth of a clinical Agatston score does not exist: NaN).
QUANTITIES = {"volume_mm3": "volume_mm3", "mass_mg": "mass_mg", "agatston": None}

#: score_lesions' column names of the quantities.
_SCORE_NAMES = {"volume_score_mm3": "volume_mm3", "mass_score_mg": "mass_mg"}
_TRUE_NAMES = {"true_volume_mm3": "volume_mm3", "true_mass_mg": "mass_mg"}

#: The lesion's truth descriptors carried into the long table (those the truth has): the
#: truth columns of score_lesions other than the true volume and mass.
DESCRIPTORS = tuple(c for c in TRUTH_COLUMNS if c not in ("volume_mm3", "mass_mg"))


def _wide_results(results):
    if not isinstance(results, pd.DataFrame):
        raise TypeError(f"results must be a pandas DataFrame with one row per (scan, lesion"
                        f"[, method]), got {type(results).__name__}; e.g. the output of "
                        "score_lesions or evaluate_repeats")
    if "lesion" not in results.columns:
        raise ValueError(f"results must have a 'lesion' column (the lesion's name), got columns "
                         f"{list(results.columns)}")
    for alias, name in _SCORE_NAMES.items():
        if alias in results.columns and name in results.columns:
            raise ValueError(f"results has both {alias!r} and {name!r}: two estimates of one "
                             "quantity; drop or rename one of them")
    table = results.rename(columns=_SCORE_NAMES)
    quantities = [q for q in QUANTITIES if q in table.columns]
    if not quantities:
        raise ValueError(f"results has none of the quantity columns {list(QUANTITIES)} (or "
                         f"score_lesions' {list(_SCORE_NAMES)}); got {list(results.columns)}")
    for q in quantities:
        if not pd.api.types.is_numeric_dtype(table[q]) or pd.api.types.is_bool_dtype(table[q]):
            raise TypeError(f"results column {q!r} must be numeric, got dtype {table[q].dtype}")
    return table, quantities


def _truth_table(truth, table, on):
    """One row per lesion (per ``on`` keys): volume_mm3, mass_mg and descriptors."""
    import xarray as xr

    if truth is None:
        missing = [c for c in _TRUE_NAMES if c not in table.columns]
        if missing:
            raise ValueError(f"truth=None takes the truth from the results' own columns "
                             f"{list(_TRUE_NAMES)}, but {missing} are missing; pass the truth "
                             "Dataset of the scans (phantoms.simulate(...)[1])")
        return None
    if isinstance(truth, xr.Dataset):
        from phantoms.truth import lesion_table

        return lesion_table(truth)
    if isinstance(truth, pd.DataFrame):
        missing = [c for c in [*on, "volume_mm3", "mass_mg"] if c not in truth.columns]
        if missing:
            raise ValueError(f"a truth DataFrame needs the columns {[*on, 'volume_mm3', 'mass_mg']}"
                             f" (e.g. phantoms.truth.lesion_table(truth)), missing {missing}")
        return truth
    raise TypeError(f"truth must be an xarray.Dataset (a scan's truth), a DataFrame with one "
                    f"row per lesion (phantoms.truth.lesion_table) or None, got "
                    f"{type(truth).__name__}")


def beside_truth(results, truth=None, *, method="clinical", on=("lesion",),
                 descriptors=DESCRIPTORS) -> pd.DataFrame:
    """Estimates beside the truth in long form: one row per (scan, lesion, method, quantity).

    Parameters
    ----------
    results : pandas.DataFrame
        A wide result table with one row per (scan, lesion[, method]): a
        ``lesion`` column, estimates in any of the columns ``volume_mm3``,
        ``mass_mg``, ``agatston`` (or :func:`score_lesions`' names
        ``volume_score_mm3``, ``mass_score_mg``), optionally ``method``, and
        any identifying columns (``repeat``, ``scan``, ``protocol``, ...). E.g.
        the output of :func:`score_lesions` or :func:`evaluate_repeats`.
    truth : xarray.Dataset or pandas.DataFrame, optional
        The scans' truth: a truth Dataset (read with
        :func:`phantoms.truth.lesion_table`), or a lesion table with the
        ``on`` columns, ``volume_mm3`` and ``mass_mg``. Default: the truth
        columns that :func:`score_lesions` copied into ``results``
        (``true_volume_mm3``, ``true_mass_mg`` and the descriptors). When both
        are there they must agree.
    method : str, optional
        Method label of results without a ``method`` column. Default
        "clinical" (the clinical scores of :func:`score_lesions`).
    on : sequence of str, optional
        Columns that match a result row to its truth row. Default
        ``("lesion",)``: volumes and masses do not change between repeated
        scans of one phantom; pass e.g. ``("repeat", "lesion")`` with a truth
        table per scan.
    descriptors : sequence of str, optional
        Truth columns copied to every row, where the truth has them. Default
        :data:`DESCRIPTORS` (density, shape, radius, length, peak speed).

    Returns
    -------
    pandas.DataFrame
        Columns ``lesion``, ``method``, ``quantity`` (``"volume_mm3"``,
        ``"mass_mg"``, ``"agatston"``, in that order per result row),
        ``estimate`` (mm3, mg or Agatston units; 0 for a missed lesion; NaN
        where a method does not define the quantity, as in
        :func:`pvcalc.quantify`, whose ``reason`` column comes along),
        ``truth`` (the true volume in mm3 or mass in mg; NaN for
        ``agatston``, which has no true value), then the results' other
        columns (``repeat``, ``detected``, ...) and the descriptors. Pivoting
        ``estimate`` on ``quantity`` gives the wide estimates back.

    Notes
    -----
    Nothing is dropped: leave out the rows without a truth or an estimate
    where a statistic needs both (``long.dropna(subset=["estimate",
    "truth"])``). The long table feeds :mod:`pvcalc.stats` without reshaping, e.g.
    ``stats.accuracy(long[long.quantity != "agatston"], groupby=["method",
    "quantity"])`` (its default columns are ``estimate`` and ``truth``) and
    ``stats.icc(long, subject="lesion", rater="repeat", value="estimate",
    groupby=["method", "quantity"])``.

    Examples
    --------
    >>> import pandas as pd
    >>> from pvcalc.evaluation import beside_truth
    >>> wide = pd.DataFrame({"lesion": ["a", "b"], "repeat": [1, 1],
    ...                      "volume_mm3": [30.0, 0.0], "agatston": [20.0, 0.0]})
    >>> truth = pd.DataFrame({"lesion": ["a", "b"], "volume_mm3": [33.5, 4.2],
    ...                       "mass_mg": [13.4, 1.7]})
    >>> beside_truth(wide, truth)[["lesion", "quantity", "estimate", "truth"]]
      lesion    quantity  estimate  truth
    0      a  volume_mm3      30.0   33.5
    1      a    agatston      20.0    NaN
    2      b  volume_mm3       0.0    4.2
    3      b    agatston       0.0    NaN
    """
    table, quantities = _wide_results(results)
    on = [on] if isinstance(on, str) else list(on)
    if "lesion" not in on or any(c not in table.columns for c in on):
        raise ValueError(f"on must name columns of results that include 'lesion', got {on!r}")
    if "method" not in table.columns:
        if not isinstance(method, str) or not method:
            raise TypeError(f"method must be a non-empty str (label of results without a "
                            f"'method' column), got {method!r}")
        table = table.assign(method=method)
    truth_rows = _truth_table(truth, table, on)
    descriptors = [descriptors] if isinstance(descriptors, str) else list(descriptors)
    if truth_rows is None:  # the results' own truth columns, row by row
        true = pd.DataFrame({name: table[column].to_numpy(dtype=float)
                             for column, name in _TRUE_NAMES.items()})
        keep = [c for c in descriptors if c in table.columns]
        described = table[keep].reset_index(drop=True)
    else:
        keep = [c for c in descriptors if c in truth_rows.columns]
        right = truth_rows[[*on, "volume_mm3", "mass_mg", *keep]].rename(
            columns={"volume_mm3": "_true_volume_mm3", "mass_mg": "_true_mass_mg"})
        if right.duplicated(on).any():
            first = right.loc[right.duplicated(on), on].iloc[0].tolist()
            raise ValueError(f"truth has several rows for {dict(zip(on, first))}; pass one row "
                             f"per lesion, or on=[...] with the column that tells the scans "
                             "apart (e.g. on=('repeat', 'lesion'))")
        merged = table[on].reset_index(drop=True).merge(right, on=on, how="left",
                                                        indicator=True)
        lost = merged["_merge"] != "both"
        if lost.any():
            raise ValueError(f"{int(lost.sum())} result row(s) have no truth (first: "
                             f"{merged.loc[lost, on].iloc[0].to_dict()}); pass the truth of "
                             "the scans the results come from")
        true = merged[["_true_volume_mm3", "_true_mass_mg"]].set_axis(
            ["volume_mm3", "mass_mg"], axis=1)
        for column, name in _TRUE_NAMES.items():
            if column in table.columns and not np.allclose(
                    table[column].to_numpy(dtype=float), true[name].to_numpy(dtype=float),
                    rtol=1e-9, atol=0.0, equal_nan=True):
                raise ValueError(f"results' {column} disagrees with the truth given; pass the "
                                 "truth of the phantom the results were scored on")
        described = merged[keep]
    dropped = {"lesion", "method", *quantities, *_TRUE_NAMES, *keep}
    carried = [c for c in table.columns if c not in dropped]
    n, k = len(table), len(quantities)
    rows = np.repeat(np.arange(n), k)
    estimate = table[quantities].to_numpy(dtype=float).ravel()
    truth_values = np.column_stack([
        true[QUANTITIES[q]].to_numpy(dtype=float) if QUANTITIES[q] else np.full(n, np.nan)
        for q in quantities]).ravel()
    long = pd.DataFrame({"lesion": table["lesion"].to_numpy()[rows],
                         "method": table["method"].to_numpy()[rows],
                         "quantity": np.tile(np.array(quantities, dtype=object), n),
                         "estimate": estimate, "truth": truth_values})
    extra = pd.concat([table[carried].reset_index(drop=True), described], axis=1)
    return pd.concat([long, extra.iloc[rows].reset_index(drop=True)], axis=1)

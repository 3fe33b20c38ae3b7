"""Input validation and reshaping shared by the statistics functions.

Every public statistic accepts either a tidy (long) DataFrame plus column
names, or plain arrays. The helpers here turn both into validated numpy arrays
and raise ``TypeError`` / ``ValueError`` messages that name the parameter, the
expectation, what was received and how to fix it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__: list[str] = []


def _lab(x):
    """A label for messages: numpy scalars shown as plain Python values."""
    return x.item() if isinstance(x, np.generic) else x


def _where(key: dict) -> str:
    """Group description for messages, e.g. "method='em'" or "all"."""
    if not key:
        return "all"
    return ", ".join(f"{k}={_lab(v)!r}" for k, v in key.items())


def _check_alpha(alpha):
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)):
        raise TypeError(
            f"alpha must be a float in (0, 1), got {type(alpha).__name__} {alpha!r}; "
            "pass e.g. alpha=0.05 for 95% confidence intervals.")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(
            f"alpha must be in (0, 1), got {alpha!r}; pass e.g. alpha=0.05 for 95% "
            "confidence intervals.")
    return float(alpha)


def _as_groupby(groupby) -> list:
    if groupby is None:
        return []
    if isinstance(groupby, str):
        return [groupby]
    if isinstance(groupby, Sequence):
        return list(groupby)
    raise TypeError(
        f"groupby must be None, a column name or a list of column names, got "
        f"{type(groupby).__name__}; pass e.g. groupby=['method'].")


def _check_frame(data, columns: dict, *, func: str):
    """Check that ``data`` is a DataFrame holding every named column.

    ``columns`` maps parameter name -> column name (or list of names).
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"{func}: data must be a pandas DataFrame in long (tidy) format, got "
            f"{type(data).__name__}; build one with pandas.DataFrame(...).")
    for param, cols in columns.items():
        if cols is None:
            continue
        for col in ([cols] if isinstance(cols, str) else cols):
            if col not in data.columns:
                raise ValueError(
                    f"{func}: column {col!r} given as {param}= is not in data; available "
                    f"columns are {list(data.columns)}. Pass the name of an existing "
                    "column.")
    return data


def _first_bad(bad: np.ndarray, labels) -> str:
    """Where the first bad value is, for messages: its subject label or position."""
    i = int(np.flatnonzero(bad)[0])
    return f"subject {_lab(labels[i])!r}" if labels is not None else f"position {i}"


def _finite_values(values, *, name: str, func: str, nonnegative: bool = False,
                   positive: bool = False, positive_fix: str | None = None,
                   labels=None) -> np.ndarray:
    """Convert to a 1-D float64 array; reject NaN/inf and (optionally) negatives.

    ``positive_fix`` says, for the caller's statistic, how to handle values
    <= 0; ``labels`` (one per value) name the offending subject in messages.
    """
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{func}: {name} must be numeric, got values that cannot be converted to "
            f"float ({exc}); convert the column to numbers first.") from None
    if arr.ndim != 1:
        arr = arr.reshape(-1) if arr.ndim == 0 else arr
    if arr.ndim != 1:
        raise ValueError(f"{func}: {name} must be one-dimensional, got shape {arr.shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(
            f"{func}: {name} contains {int(bad.sum())} NaN or infinite value(s) "
            f"(first at position {int(np.flatnonzero(bad)[0])}); remove or impute them "
            "before computing the statistic.")
    if positive and (arr <= 0).any():
        bad = arr <= 0
        raise ValueError(
            f"{func}: {name} must be strictly positive here, got {int(bad.sum())} value(s) "
            f"<= 0 (minimum {float(arr.min())!r}, first at {_first_bad(bad, labels)}); "
            + (positive_fix or "remove those rows or correct the values."))
    if nonnegative and (arr < 0).any():
        raise ValueError(
            f"{func}: {name} must be non-negative (calcium scores, volumes and masses "
            f"cannot be negative), got minimum {float(arr.min())!r}; check the sign of the "
            "input or clip estimates at 0 before calling.")
    return arr


def _two_arrays(a, b, *, func: str, names=("a", "b"), **kw):
    """Validate two paired 1-D arrays of equal length (at least 2 pairs)."""
    a = _finite_values(a, name=names[0], func=func, **kw)
    b = _finite_values(b, name=names[1], func=func, **kw)
    if a.shape != b.shape:
        raise ValueError(
            f"{func}: a and b must have the same length (one pair per subject), got "
            f"{a.size} and {b.size}; pass paired measurements of the same subjects.")
    if a.size < 2:
        raise ValueError(
            f"{func}: at least 2 subjects are needed, got {a.size}; a single subject "
            "gives no estimate of variability.")
    return a, b


def _matrix_to_long(data, *, func: str, columns: str) -> pd.DataFrame:
    """A (n_subjects, n_columns) numeric array as a long table (subject, rater, value)."""
    try:
        y = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(
            f"{func}: data must be a long DataFrame or a numeric (n_subjects, {columns}) "
            f"array, got {type(data).__name__}.") from None
    if y.ndim != 2:
        raise ValueError(
            f"{func}: an array input must be 2-D (n_subjects, {columns}), got shape "
            f"{y.shape}; reshape or pass a long DataFrame.")
    n, k = y.shape
    return pd.DataFrame({"subject": np.repeat(np.arange(n), k),
                         "rater": np.tile(np.arange(k), n), "value": y.ravel()})


def _groups(data: pd.DataFrame, groupby: list):
    """Yield (key_dict, sub_frame) for each group (one group if groupby empty)."""
    if not groupby:
        yield {}, data
        return
    for key, sub in data.groupby(groupby, sort=True, observed=True, dropna=False):
        if not isinstance(key, tuple):
            key = (key,)
        yield dict(zip(groupby, key)), sub


def _factorize_few(col: pd.Series, max_labels: int = 32):
    """Factorize a column expected to hold few distinct labels (raters, scans).

    For string / object columns, hashing every Python string (pandas
    factorize) costs ~0.2 s per 2 x 10^5 rows; comparing against each label in
    turn costs ~0.03 s per label, so that is used while there are at most
    ``max_labels`` labels. Missing labels get code -1. Labels are in order of
    first appearance (like ``pandas.factorize(sort=False)``).
    """
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype) or not (
            pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
        codes, uniq = pd.factorize(col, sort=False)
        return codes, list(uniq)
    arr = col.to_numpy(dtype=object)
    codes = np.full(arr.size, -1, dtype=np.int64)
    remaining = np.arange(arr.size)
    labels = []
    while remaining.size:
        if len(labels) >= max_labels:
            codes, uniq = pd.factorize(col, sort=False)
            return codes, list(uniq)
        label = arr[remaining[0]]
        if label is None or label is pd.NA or label != label:  # missing: code -1
            remaining = remaining[~pd.isna(arr[remaining])]
            continue
        hit = np.asarray(arr[remaining] == label, dtype=bool)
        codes[remaining[hit]] = len(labels)
        labels.append(label)
        remaining = remaining[~hit]
    return codes, labels


def _pivot_wide(sub: pd.DataFrame, *, subject: str, rater: str, value: str,
                func: str, raters=None):
    """Long -> (n_subjects, n_raters) float array with NaN for missing cells.

    Returns ``(matrix, subject_labels, rater_labels)``; subjects sorted,
    raters sorted (as strings) or in the order of ``raters``, which may
    select a subset (rows of other raters are ignored). Duplicated
    (subject, rater) pairs are an error. Uses factorize + fancy indexing
    (much faster than ``DataFrame.pivot`` for 10^5 subjects): the rater
    column is factorized once without sorting, and only its few labels are
    sorted / looked up.
    """
    r_codes, r_uniq = _factorize_few(sub[rater])
    r_uniq = [_lab(x) for x in r_uniq]
    if raters is not None:
        missing = [r for r in raters if r not in r_uniq]
        if missing:
            raise ValueError(
                f"{func}: raters {missing!r} do not occur in column {rater!r}; "
                f"available: {r_uniq[:10]!r}.")
        order = [r_uniq.index(r) for r in raters]
    else:
        order = sorted(range(len(r_uniq)), key=lambda i: str(r_uniq[i]))
    remap = np.full(len(r_uniq) + 1, -1, dtype=np.int64)
    remap[np.asarray(order, dtype=np.int64)] = np.arange(len(order))
    r_new = remap[r_codes]  # code -1 (missing label) maps to remap[-1] = -1
    vals_all = sub[value].to_numpy()
    s_all = sub[subject]
    if raters is not None:
        keep = r_new >= 0
        if (r_codes < 0).any():
            keep |= r_codes < 0  # keep missing labels so that they raise below
        if not keep.all():
            r_new, vals_all, s_all = r_new[keep], vals_all[keep], s_all[keep]
    r_labels = pd.Index([r_uniq[i] for i in order])
    s_codes, s_labels = pd.factorize(s_all, sort=True)
    if (s_codes < 0).any() or (r_new < 0).any():
        raise ValueError(
            f"{func}: the {subject!r} and {rater!r} columns must not contain missing "
            "labels; drop rows with NaN identifiers.")
    vals = _finite_values(vals_all, name=f"column {value!r}", func=func)
    n, k = len(s_labels), len(r_labels)
    flat = s_codes.astype(np.int64) * k + r_new
    counts = np.bincount(flat, minlength=n * k)
    if (counts > 1).any():
        i = int(np.flatnonzero(counts > 1)[0])
        raise ValueError(
            f"{func}: subject {_lab(s_labels[i // k])!r} has {int(counts[i])} rows for "
            f"{rater}={_lab(r_labels[i % k])!r}; each (subject, rater) pair must appear "
            "at most once. Aggregate duplicates or add the distinguishing column to "
            "groupby.")
    mat = np.full(n * k, np.nan)
    mat[flat] = vals
    return mat.reshape(n, k), s_labels, r_labels


def _two_raters_msg(func, rater, labels, key):
    return (f"{func}: column {rater!r} must hold exactly 2 distinct values per group for "
            f"a paired statistic, got {len(labels)} ({list(labels)[:5]}) in group "
            f"{_where(key)}; pass raters=(first, second) to choose the pair.")


def _pairs(data, b, *, subject, rater, value, groupby, raters, func,
           value_kw=None, categorical=False):
    """Normalise the two input styles of the paired statistics.

    Returns a list of ``(group_key_dict, a, b, subject_labels, rater_labels)``.
    Arrays style: ``data`` and ``b`` are 1-D arrays of equal length.
    Frame style: ``data`` is a long DataFrame and ``b`` is None.
    """
    value_kw = value_kw or {}
    if not isinstance(data, pd.DataFrame):
        if b is None:
            raise TypeError(
                f"{func}: pass either a long DataFrame plus subject=, rater=, value= "
                f"column names, or two arrays a and b; got {type(data).__name__} and "
                "b=None.")
        if categorical:
            a_arr, b_arr = np.asarray(data, dtype=object), np.asarray(b, dtype=object)
            if a_arr.shape != b_arr.shape or a_arr.ndim != 1:
                raise ValueError(
                    f"{func}: a and b must be 1-D with the same length, got shapes "
                    f"{a_arr.shape} and {b_arr.shape}; pass paired ratings.")
            if a_arr.size < 2:
                raise ValueError(f"{func}: at least 2 subjects are needed, got {a_arr.size}.")
            for name, arr in (("a", a_arr), ("b", b_arr)):
                if pd.isna(arr).any():
                    raise ValueError(
                        f"{func}: {name} contains {int(pd.isna(arr).sum())} missing "
                        "rating(s); every subject needs a category from both raters.")
            return [({}, a_arr, b_arr, np.arange(a_arr.size), pd.Index(["a", "b"]))]
        a_arr, b_arr = _two_arrays(data, b, func=func, **value_kw)
        return [({}, a_arr, b_arr, np.arange(a_arr.size), pd.Index(["a", "b"]))]
    if b is not None:
        raise TypeError(
            f"{func}: when data is a DataFrame, b must be None (the two measurements "
            "are rows distinguished by the rater= column).")
    groupby = _as_groupby(groupby)
    _check_frame(data, {"subject": subject, "rater": rater, "value": value,
                        "groupby": groupby}, func=func)
    out = []
    for key, sub in _groups(data, groupby):
        if raters is not None and len(raters) != 2:
            raise ValueError(f"{func}: raters must name exactly 2 values, got {raters!r}.")
        if categorical:
            labels = [_lab(x) for x in pd.unique(sub[rater])] if raters is None else raters
            if len(labels) != 2:
                raise ValueError(_two_raters_msg(func, rater, labels, key))
            pair = tuple(sorted(labels, key=str)) if raters is None else tuple(raters)
            sub = sub[sub[rater].isin(pair)]
            dup = sub.duplicated([subject, rater])
            if dup.any():
                first = sub.loc[dup].iloc[0]
                raise ValueError(
                    f"{func}: subject {_lab(first[subject])!r} has several rows for "
                    f"{rater}={_lab(first[rater])!r}; each (subject, rater) pair must appear "
                    "at most once. Aggregate duplicates or add the distinguishing column "
                    "to groupby.")
            wide = sub.pivot(index=subject, columns=rater, values=value)
            if wide.shape[1] != 2 or wide.isna().to_numpy().any():
                raise ValueError(
                    f"{func}: every subject needs one rating for each of {pair} in group "
                    f"{_where(key)}; found incomplete or missing ratings. Drop subjects "
                    "without both ratings.")
            a_arr = wide[pair[0]].to_numpy(dtype=object)
            b_arr = wide[pair[1]].to_numpy(dtype=object)
            s_labels = wide.index
        else:
            mat, s_labels, r_labels = _pivot_wide(sub, subject=subject, rater=rater,
                                                  value=value, func=func, raters=raters)
            if mat.shape[1] != 2:
                raise ValueError(_two_raters_msg(func, rater, list(r_labels), key))
            pair = tuple(r_labels)
            nan = np.isnan(mat)
            if raters is not None and nan.all(axis=1).any():
                # subjects measured only by raters outside the chosen pair
                keep = ~nan.all(axis=1)
                mat, s_labels, nan = mat[keep], s_labels[keep], nan[keep]
            miss = nan.any(axis=1)
            if miss.any():
                first = _lab(s_labels[np.argmax(miss)])
                raise ValueError(
                    f"{func}: {int(miss.sum())} subject(s) in group {_where(key)} lack a "
                    f"measurement for one of {pair} (first: {first!r}); every subject "
                    "needs both. Drop incomplete subjects first.")
            names = tuple(f"column {value!r} ({rater}={_lab(r)!r})" for r in pair)
            a_arr, b_arr = _two_arrays(mat[:, 0], mat[:, 1], func=func, names=names,
                                       labels=s_labels, **value_kw)
        if len(a_arr) < 2:
            raise ValueError(
                f"{func}: at least 2 subjects are needed in group {_where(key)}, got "
                f"{len(a_arr)}; a single subject gives no estimate of variability.")
        out.append((key, a_arr, b_arr, s_labels, pd.Index(pair)))
    return out

"""Benchmark: ICC and Bland-Altman on 100,000 subjects x 2 repeats.

Times pvcalc.stats.icc / bland_altman (long DataFrame in, tidy DataFrame out)
against a plain-pandas baseline written the way common pure-pandas ICC
implementations work (``pivot_table`` to wide, then ``groupby`` means for the
two-way ANOVA sums of squares, then the six forms and their F-based CIs in a
Python loop), and a pandas pivot + Series Bland-Altman. Both paths start
from the same long DataFrame, and their results are checked to agree.

If pingouin is importable it is timed too (it is not a dependency).

Run: ``python benchmarks/bench_stats.py`` (``--quick`` for 10,000 subjects,
``--repeats N`` for the number of timed runs).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
from _timing import median_time
from scipy import stats as st

from pvcalc.stats import bland_altman, icc


def median_seconds(fn, repeats):
    return median_time(fn, repeats)[0]


def make_data(n_subjects: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    true = rng.lognormal(3.0, 1.0, n_subjects)
    a = true * rng.lognormal(0, 0.1, n_subjects)
    b = true * rng.lognormal(0.02, 0.1, n_subjects)
    df = pd.DataFrame({"lesion": np.concatenate([np.arange(n_subjects)] * 2),
                       "repeat": np.repeat(["scan1", "scan2"], n_subjects),
                       "mass_mg": np.concatenate([a, b])})
    return df.sample(frac=1.0, random_state=1, ignore_index=True)  # realistic row order


def pandas_icc(df: pd.DataFrame, subject: str, rater: str, value: str, alpha=0.05):
    """Plain-pandas baseline: pivot_table + groupby sums of squares + loop."""
    wide = df.pivot_table(index=subject, columns=rater, values=value, observed=True).dropna()
    long = wide.reset_index().melt(id_vars=subject, var_name=rater, value_name=value)
    n, k = wide.shape
    grand = long[value].mean()
    ss_r = ((long.groupby(subject)[value].mean() - grand) ** 2).sum() * k
    ss_c = ((long.groupby(rater)[value].mean() - grand) ** 2).sum() * n
    ss_t = ((long[value] - grand) ** 2).sum()
    msr, msc = ss_r / (n - 1), ss_c / (k - 1)
    mse = (ss_t - ss_r - ss_c) / ((n - 1) * (k - 1))
    msw = (ss_t - ss_r) / (n * (k - 1))
    rows = []
    for name in ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"):
        if name == "ICC1":
            v = (msr - msw) / (msr + (k - 1) * msw)
            f, d2 = msr / msw, n * (k - 1)
        elif name == "ICC1k":
            v = (msr - msw) / msr
            f, d2 = msr / msw, n * (k - 1)
        elif name == "ICC2":
            v = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
            f, d2 = msr / mse, (n - 1) * (k - 1)
        elif name == "ICC2k":
            v = (msr - mse) / (msr + (msc - mse) / n)
            f, d2 = msr / mse, (n - 1) * (k - 1)
        elif name == "ICC3":
            v = (msr - mse) / (msr + (k - 1) * mse)
            f, d2 = msr / mse, (n - 1) * (k - 1)
        else:
            v = (msr - mse) / msr
            f, d2 = msr / mse, (n - 1) * (k - 1)
        fl = f / st.f.ppf(1 - alpha / 2, n - 1, d2)
        fu = f * st.f.ppf(1 - alpha / 2, d2, n - 1)
        rows.append({"type": name, "icc": v, "f": f, "p_value": st.f.sf(f, n - 1, d2),
                     "f_low": fl, "f_up": fu})
    return pd.DataFrame(rows)


def pandas_bland_altman(df: pd.DataFrame, subject: str, rater: str, value: str):
    wide = df.pivot(index=subject, columns=rater, values=value)
    d = wide.iloc[:, 0] - wide.iloc[:, 1]
    n, bias, sd = d.count(), d.mean(), d.std(ddof=1)
    t = st.t.ppf(0.975, n - 1)
    se = np.sqrt(3 * sd ** 2 / n)
    return pd.DataFrame([{"bias": bias, "sd_difference": sd,
                          "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd,
                          "loa_high_ci_low": bias + 1.96 * sd - t * se}])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 subjects")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    n = 10_000 if args.quick else 100_000
    df = make_data(n)
    kw = dict(subject="lesion", rater="repeat", value="mass_mg")

    ours_icc = icc(df, **kw)
    base_icc = pandas_icc(df, **kw)
    np.testing.assert_allclose(ours_icc["icc"], base_icc["icc"], rtol=1e-9)
    np.testing.assert_allclose(ours_icc["p_value"], base_icc["p_value"], rtol=1e-6, atol=1e-300)
    ours_ba = bland_altman(df, **kw)
    base_ba = pandas_bland_altman(df, **kw)
    np.testing.assert_allclose(ours_ba["bias"], base_ba["bias"], rtol=1e-9)
    np.testing.assert_allclose(ours_ba["sd_difference"], base_ba["sd_difference"], rtol=1e-9)

    print(f"ICC and Bland-Altman, {n:,} subjects x 2 repeats ({len(df):,} rows, long "
          f"DataFrame in random row order); median of {args.repeats} runs")
    print(f"{'statistic':<20}{'pvcalc [s]':>12}{'baseline [s]':>14}{'baseline / pvcalc':>19}")
    for name, ours, base in (
            ("icc vs pandas", lambda: icc(df, **kw), lambda: pandas_icc(df, **kw)),
            ("bland_altman vs pd", lambda: bland_altman(df, **kw),
             lambda: pandas_bland_altman(df, **kw))):
        t_ours = median_seconds(ours, args.repeats)
        t_base = median_seconds(base, args.repeats)
        print(f"{name:<20}{t_ours:>12.4f}{t_base:>14.4f}{t_base / t_ours:>19.2f}")
    try:  # optional: pingouin itself, if the user has it (not a dependency)
        import pingouin
    except ImportError:
        pingouin = None
    if pingouin is not None:
        pg = pingouin.intraclass_corr(df, targets="lesion", raters="repeat",
                                      ratings="mass_mg")
        np.testing.assert_allclose(pg["ICC"].to_numpy(), ours_icc["icc"].to_numpy(),
                                   rtol=1e-9)
        t_ours = median_seconds(lambda: icc(df, **kw), args.repeats)
        t_pg = median_seconds(lambda: pingouin.intraclass_corr(
            df, targets="lesion", raters="repeat", ratings="mass_mg"), args.repeats)
        print(f"{'icc vs pingouin':<20}{t_ours:>12.4f}{t_pg:>14.4f}{t_pg / t_ours:>19.2f}")
    wide = df.pivot(index="lesion", columns="repeat", values="mass_mg").to_numpy()
    t_arr = median_seconds(lambda: icc(wide), args.repeats)
    print(f"{'icc (n x 2 array)':<20}{t_arr:>12.4f}")


if __name__ == "__main__":
    main()

"""Accuracy and reproducibility statistics as tidy DataFrames.

Every function takes a long (tidy) ``pandas.DataFrame`` plus column names
(and, where natural, plain arrays) and returns a DataFrame with one row per
group / method / form, snake_case columns, confidence intervals as
``ci_low`` / ``ci_high`` (or ``<statistic>_ci_low`` / ``_ci_high`` when a row
holds several statistics) and no rounding. The glossary of every column is in
``docs/stats.md``.

- against truth: :func:`accuracy`
- between repeated scans: :func:`interscan_difference`,
  :func:`interscan_summary`, :func:`repeatability`, :func:`icc`,
  :func:`bland_altman`, :func:`kappa`, :func:`weighted_kappa`,
  :func:`reclassification`, :func:`transition_table`,
  :func:`mesa_repeatability_limit`, :func:`mesa_change_exceeds_limit`
- between methods: :func:`compare_methods`, :func:`compare_methods_mixed`
- plots (return a matplotlib Figure): :func:`plot_bland_altman`,
  :func:`plot_error_vs_size`, :func:`plot_interscan_difference`,
  :func:`plot_transition_heatmap`
"""

from pvcalc.stats._accuracy import accuracy
from pvcalc.stats._bland_altman import bland_altman
from pvcalc.stats._compare import compare_methods, compare_methods_mixed
from pvcalc.stats._icc import icc
from pvcalc.stats._interscan import interscan_difference, interscan_summary, repeatability
from pvcalc.stats._kappa import kappa, reclassification, transition_table, weighted_kappa
from pvcalc.stats._mesa import mesa_change_exceeds_limit, mesa_repeatability_limit
from pvcalc.stats._plots import (
                                 plot_bland_altman,
                                 plot_error_vs_size,
                                 plot_interscan_difference,
                                 plot_transition_heatmap,
)

__all__ = [
    "accuracy", "bland_altman", "compare_methods", "compare_methods_mixed", "icc",
    "interscan_difference", "interscan_summary", "kappa", "mesa_change_exceeds_limit",
    "mesa_repeatability_limit", "plot_bland_altman", "plot_error_vs_size",
    "plot_interscan_difference", "plot_transition_heatmap", "reclassification",
    "repeatability", "transition_table", "weighted_kappa",
]

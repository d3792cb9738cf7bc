"""Scoring every model against the fine truth, torch-free.

* ``bicubic``: the interpolation baseline (rule sample_bicubic); ``references``: the
  twin's coarse-information ceiling and oracle (rule sample_references);
* ``scores``: summary.csv's rows and the diagnostics of one region and season (rules
  evaluate, summarize_metrics); ``diagnostics``: semivariograms, ACF/PACF, persistence, drift.
"""

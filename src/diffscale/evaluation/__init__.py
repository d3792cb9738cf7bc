"""Scoring every model against the fine truth, torch-free.

* ``bicubic``: the interpolation baseline (rule sample_bicubic); ``oracle``: the twin's
  ceiling (rule sample_oracle);
* ``scores``: summary.csv's rows and the diagnostics of one region and season (rules
  evaluate, summarize_metrics); ``diagnostics``: semivariograms, ACF/PACF, persistence, drift.
"""

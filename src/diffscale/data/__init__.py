"""From sources to the per-region, per-season files every model reads.

* ``sources``: the synthetic twin, NASA's MERRA-2 and G5NR over OPeNDAP, the user's own
  files (rules make_synthetic, download_*, normalise_local_*);
* ``regrid``: the coarse record onto each region's fine grid and back (xESMF or built-in);
* ``split``: cropped records, seeded day lists without leakage, the scaler;
* ``domain``: Wasserstein distances of the coarse against the fine record (POT).
"""

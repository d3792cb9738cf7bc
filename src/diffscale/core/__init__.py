"""What every stage shares, torch-free.

* ``config``: the schema-validated config; ``io``: netCDF and JSON files, atomic writes,
  validation with errors that name the file; ``runlog``: logging to the rule's log;
* ``grids``: rectilinear lat/lon grids and boxes; ``registry``: every model named once;
* ``transform``: the modelled variable (log10 with a floor) and the Scaler; ``days``: the
  split's day lists (``days.json``); ``samples``: the sample-file contract (an ensemble on a
  ``member`` dimension); ``metrics``: every score of ``summary.csv``.
"""

"""Figures of the workflow (matplotlib, Agg: no display needed), one module per stage.

* :mod:`~diffscale.plots.style`: what every figure shares (saving, labels, the backend);
* :mod:`~diffscale.plots.data`: the twin's overview, the domain-shift figures;
* :mod:`~diffscale.plots.method`: the training curves;
* :mod:`~diffscale.plots.evaluation`: metric bars, maps of test days;
* :mod:`~diffscale.plots.diagnostics`: the paper's diagnostics (spectra, variograms, ...).

Models are drawn in :mod:`diffscale.core.registry`'s order and colours. Torch-free: the
figures read files, never a network.
"""

"""diffscale: downscale a long coarse record with a frozen transfer encoder and a conditional diffusion model.

The library follows the workflow's data flow, and imports run one way:
:mod:`~diffscale.core` <- :mod:`~diffscale.data` <- :mod:`~diffscale.method` <-
:mod:`~diffscale.evaluation` <- :mod:`~diffscale.plots`. Only ``method`` imports torch,
so parsing the workflow never does.
"""

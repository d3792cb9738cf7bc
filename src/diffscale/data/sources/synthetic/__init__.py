"""The synthetic twin: a coarse and a fine daily record whose relation is known.

Two kinds (``data.synthetic.kind``), each with its equations in its module:

* ``ar1`` (:mod:`.ar1`): a persistent fine-scale anomaly, AR(1) in time and independent of
  the coarse record, on a large-scale background and a static elevation pattern;
* ``transport`` (:mod:`.transport`): dust emitted by a static fine-scale source map when
  the large-scale wind blows, advected by that wind and decaying over days.

What they share (the background, the noise, the coarse record as the area mean plus bias
and noise) is in :mod:`.base`; writing the records, their reference scores and regenerating
the references (oracle and coarse-information ceiling) from twin.json in :mod:`.records`; the
ceiling's update from the coarse cells in :mod:`.ceiling`.
"""

from diffscale.data.sources.synthetic.ar1 import Ar1Twin, TwinParameters
from diffscale.data.sources.synthetic.base import CommonParameters, RandomField, TwinGenerator, twin_grids
from diffscale.data.sources.synthetic.records import (
    KINDS,
    REFERENCES,
    TwinScores,
    bicubic,
    make_twin,
    parameters_record,
    twin_generator,
    twin_parameters,
    twin_reference_months,
    twin_references,
)
from diffscale.data.sources.synthetic.transport import TransportParameters, TransportTwin

__all__ = ["KINDS", "REFERENCES", "Ar1Twin", "CommonParameters", "RandomField", "TransportParameters", "TransportTwin",
           "TwinGenerator", "TwinParameters", "TwinScores", "bicubic", "make_twin", "parameters_record",
           "twin_generator", "twin_grids", "twin_parameters", "twin_reference_months", "twin_references"]

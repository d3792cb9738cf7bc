"""The method and the trained baselines, in the order data flows through them.

* ``conditioning``: a region and season as the models see it, and a day's inputs;
* ``networks``: the U-Net backbone and the transfer encoder; ``edm``: preconditioning,
  loss and samplers; ``tiling``: whole regions from halo tiles;
* ``residual``: the base of every trained model (spec, conditioning, tiled sampling,
  files, :func:`~diffscale.method.residual.load_model`); ``diffusion`` and
  ``regressors``: its subclasses, named by :mod:`diffscale.core.registry`;
* ``tasks``: training batches and losses; ``loop``: the training loop; ``fit``: fitting
  from the config and from files (rules pretrain_encoder, train_diffusion, train_baseline);
* ``probe``: the ridge probe of the encoder's features against the untrained control (rule pretrain_encoder);
* ``devices``: the config's device and the sampling precision, for training and sampling;
* ``sampling``: teacher-forced and autoregressive ensembles, the sampler comparison
  (rules sample, sampler_benchmark); ``beyond``: the autoregressive run in resumable
  blocks (rules sample_beyond, gather_beyond); ``sampler_table``: their pooling (rule samplers_table);
* ``product``: the continuous downscaled record (rule assemble); ``aggregates``: its monthly
  and annual means and exceedance counts per member (rule aggregate). Both torch-free.
"""

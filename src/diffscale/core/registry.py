"""Every model of the workflow, named once: its family, whether it uses the transfer encoder, colour and order.

The config schema's ``evaluation.models`` enum, the rules (which model a rule trains or
samples), the evaluation (the order of ``summary.csv``) and the figures (colours, order)
all read this table. Adding a model is one entry here and, for a trained model, one
class in :mod:`diffscale.method` named by ``cls``. Torch-free: parsing the workflow
imports this module, never the networks.

Families:

* ``diffusion``: a conditional diffusion model (:mod:`diffscale.method.diffusion`),
  trained by rule ``train_diffusion``; an ensemble. Its ``regression`` is the regressor
  whose prediction it takes its residual from (config ``diffusion.residual: regression``,
  the CorrDiff split): the method's is ``transfer_unet``, the ablation's ``unet``, so the
  ablation drops the transfer encoder from both parts. ``diffusion_from_coarse`` has none:
  the method with its residual taken from the coarse field, whatever ``diffusion.residual``
  says, so that the split is measured against the variant it replaced in the same run;
* ``regressor``: a trained baseline (:mod:`diffscale.method.regressors`), rule
  ``train_baseline``; ``ensemble`` says whether it draws members (the vae) or predicts
  one field;
* ``interpolation``: needs no training (bicubic, rule ``sample_bicubic``);
* ``oracle``: the synthetic twin's references (rule ``sample_references``), never
  configured: ``ceiling``, the best prediction from the coarse record and the static
  fields by the twin's own equations (what is reachable), and ``oracle``, every term but
  the noise (what is knowable if the unknowable were known).
"""

from __future__ import annotations

from dataclasses import dataclass

FAMILIES = ("interpolation", "regressor", "diffusion", "oracle")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    uses_encoder: bool
    ensemble: bool
    colour: str
    cls: str | None = None  # "module:Class" of a trained model, resolved by diffscale.method
    description: str = ""
    loss: str = ""  # what its training curve measures (the levels are not comparable across models)
    regression: str | None = None  # a diffusion model's regression part (a deterministic regressor)

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"model {self.name}: family '{self.family}' is not one of {FAMILIES}")
        if self.regression is not None and self.family != "diffusion":
            raise ValueError(f"model {self.name}: only diffusion models have a regression part")

    @property
    def trained(self) -> bool:
        return self.cls is not None


# In the order tables and figures show them: the baselines first, the method last but the twin's references.
MODELS: dict[str, ModelEntry] = {m.name: m for m in (
    ModelEntry("bicubic", "interpolation", False, False, "tab:gray",
               description="bicubic spline of the native coarse field"),
    ModelEntry("unet", "regressor", False, False, "tab:blue", "diffscale.method.regressors:UNetRegressor",
               "U-Net on the coarse field and the previous fine days, MSE", "MSE"),
    ModelEntry("vae", "regressor", False, True, "tab:purple", "diffscale.method.regressors:VAERegressor",
               "conditional sigma-VAE with a per-pixel latent", "negative ELBO"),
    ModelEntry("transfer_unet", "regressor", True, False, "tab:green", "diffscale.method.regressors:TransferUNetRegressor",
               "the frozen transfer encoder's features decoded by a U-Net, MSE", "MSE"),
    ModelEntry("diffusion_no_transfer", "diffusion", False, True, "tab:orange", "diffscale.method.diffusion:DiffusionDownscaler",
               "the ablation: the method without the transfer encoder's features", "EDM loss", regression="unet"),
    ModelEntry("diffusion_from_coarse", "diffusion", True, True, "tab:pink", "diffscale.method.diffusion:DiffusionDownscaler",
               "the split's ablation: the method with its residual from the coarse field, no regression part",
               "EDM loss"),
    ModelEntry("diffusion", "diffusion", True, True, "tab:red", "diffscale.method.diffusion:DiffusionDownscaler",
               "the method: frozen transfer encoder + conditional EDM diffusion", "EDM loss",
               regression="transfer_unet"),
    ModelEntry("ceiling", "oracle", False, False, "tab:cyan",
               description="twin coarse-information ceiling: its equations driven by the coarse record and static fields"),
    ModelEntry("oracle", "oracle", False, False, "tab:olive", description="twin oracle: every term but the noise"),
)}

METHOD = "diffusion"  # the model the product (rule assemble) and the sampler benchmark use


def entry(name: str) -> ModelEntry:
    if name not in MODELS:
        raise KeyError(f"unknown model '{name}' (expected one of {', '.join(MODELS)})")
    return MODELS[name]


def regression(name: str, residual: str) -> str | None:
    """The regressor whose prediction model ``name``'s residual is taken from; None: from coarse-on-fine.

    residual: the config's ``diffusion.residual`` (``regression`` or ``coarse``); only
    diffusion models have a regression part, and ``diffusion_from_coarse`` never has one.
    """
    if residual not in ("regression", "coarse"):
        raise ValueError(f"diffusion.residual '{residual}' is not one of regression, coarse")
    return entry(name).regression if residual == "regression" else None


def configurable() -> list[str]:
    """Names ``evaluation.models`` accepts (the schema's enum): every model but the twin's references."""
    return [n for n, m in MODELS.items() if m.family != "oracle"]


def of_family(family: str, among: list[str] | None = None) -> list[str]:
    """Models of ``family``, in registry order, optionally only those in ``among``."""
    return [n for n, m in MODELS.items() if m.family == family and (among is None or n in among)]


def order(names: list[str]) -> list[str]:
    """``names`` in registry order; unknown names last, in their given order."""
    rank = {n: i for i, n in enumerate(MODELS)}
    return sorted(names, key=lambda n: rank.get(n, len(rank)))


def colour(name: str) -> str:
    return MODELS[name].colour if name in MODELS else "k"

# diffscale: downscale a long coarse record to fine resolution with a frozen transfer
# encoder and a conditional diffusion model. See README.md and config/README.md.
import sys
from pathlib import Path

from snakemake.utils import min_version

min_version("9.0")

# The library ships with the workflow, so it is importable whether or not it is
# pip-installed (scripts do the same through workflow/scripts/_helpers.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

# The demo config is the default only when no --configfile is given: Snakemake merges
# config dicts recursively, so loading it under a user's file would add the demo's
# regions and seasons to their run.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


from diffscale.core.config import ConfigError, validate_config

try:
    config.update(validate_config(config))
except ConfigError as _err:
    raise WorkflowError(f"invalid configuration: {_err}") from None


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/regrid.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/domain.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/product.smk"
include: "workflow/rules/apply.smk"
include: "workflow/rules/tune.smk"


rule all:
    default_target: True
    input:
        all_targets(),

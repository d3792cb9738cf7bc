# `make tune`: the method's tuned choices selected on validation days only (config section
# tuning; diffscale.method.tuning and .selection). Not part of rule all: run the target
# rule tuning. The runs use the encoder and regression part of seed 0, which the workflow
# trains anyway; test and beyond truth are never read.
rule tune:
    input:
        unpack(tune_inputs),
    output:
        f"{TUNING}/{{region}}_{{season}}.csv",
    log:
        f"{LOGS}/tune/{{region}}_{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/tune/{{region}}_{{season}}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=job_mem_mb("tune"),
        runtime=job_runtime("tune"),
        gpu=1,
    params:
        encoder=config["encoder"],
        diffusion=config["diffusion"],
        halo=config["sampling"]["halo"],
        sampling=config["sampling"],
        transform=config["transform"],
        tuning=config["tuning"],
        variable=DATA["variable"],
        device=config["device"],
    script:
        "../scripts/tune.py"


rule tuning_selection:
    input:
        expand(f"{TUNING}/{{region}}_{{season}}.csv", region=REGIONS, season=SEASONS),
    output:
        selected=f"{TUNING}/selected.yaml",
        table=report(
            f"{TUNING}/selection.csv",
            caption="../report/tuning.rst",
            category="3. Method",
            subcategory="Tuning",
            labels={"table": "selection.csv"},
        ),
    log:
        f"{LOGS}/tuning_selection.log",
    conda:
        "../../envs/evaluate.yaml"
    params:
        diffusion=config["diffusion"],
        baselines=config["baselines"],
        tolerance=config["tuning"]["tolerance"],
    script:
        "../scripts/tuning_selection.py"


rule plot_tuning:
    input:
        table=f"{TUNING}/selection.csv",
    output:
        report(
            f"{METHOD_FIGURES}/tuning.png",
            caption="../report/tuning.rst",
            category="3. Method",
            subcategory="Tuning",
            labels={"figure": "tuning.png"},
        ),
    log:
        f"{LOGS}/plot_tuning.log",
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/plot_tuning.py"


# The target of `make tune`.
rule tuning:
    input:
        f"{TUNING}/selected.yaml",
        f"{METHOD_FIGURES}/tuning.png",

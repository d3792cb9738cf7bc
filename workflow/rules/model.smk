# The transfer encoder, the diffusion models, the trained baselines, their samples and the
# continuous product. Checkpoints (*.ckpt beside the models) are not outputs, so they
# survive a killed job and training resumes from them; scripts delete them on success.


rule pretrain_encoder:
    input:
        unpack(split_inputs),
    output:
        model=f"{MODELS}/{{region}}/{{season}}/encoder.pt",
        curve=f"{MODELS}/{{region}}/{{season}}/encoder_loss.csv",
    log:
        f"{LOGS}/pretrain_encoder/{{region}}_{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/pretrain_encoder/{{region}}_{{season}}.tsv"
    conda:
        "../../envs/train.yaml"
    params:
        encoder=config["encoder"],
        months=lambda w: config["seasons"][w.season],
        variable=DATA["variable"],
        checkpoint=lambda w, output: f"{output.model}.ckpt",
        device=config["device"],
    script:
        "../scripts/pretrain_encoder.py"


# diffusion (the method) and diffusion_no_transfer (the ablation: same config and budget,
# no transfer features, so it does not wait for pretrain_encoder).
rule train_diffusion:
    input:
        unpack(split_inputs),
        unpack(encoder_input),
    output:
        model=f"{MODELS}/{{region}}/{{season}}/{{model}}.pt",
        curve=f"{MODELS}/{{region}}/{{season}}/{{model}}_loss.csv",
    log:
        f"{LOGS}/train_diffusion/{{region}}_{{season}}_{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/train_diffusion/{{region}}_{{season}}_{{model}}.tsv"
    wildcard_constraints:
        model="|".join(registry.of_family("diffusion")),
    conda:
        "../../envs/train.yaml"
    resources:
        gpu=config["diffusion"]["gpus"],  # the count is config; profiles/default sizes the rest
    params:
        encoder=config["encoder"],
        diffusion=config["diffusion"],
        halo=config["sampling"]["halo"],
        variable=DATA["variable"],
        checkpoint=lambda w, output: f"{output.model}.ckpt",
        device=config["device"],
    script:
        "../scripts/train_diffusion.py"


rule train_baseline:
    input:
        unpack(split_inputs),
        unpack(encoder_input),
    output:
        model=f"{MODELS}/{{region}}/{{season}}/{{model}}.pt",
        curve=f"{MODELS}/{{region}}/{{season}}/{{model}}_loss.csv",
    log:
        f"{LOGS}/train_baseline/{{region}}_{{season}}_{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/train_baseline/{{region}}_{{season}}_{{model}}.tsv"
    wildcard_constraints:
        model="|".join(registry.of_family("regressor")),
    conda:
        "../../envs/train.yaml"
    params:
        encoder=config["encoder"],
        baselines=lambda w: baseline_settings(config["baselines"], config["diffusion"]),
        halo=config["sampling"]["halo"],
        variable=DATA["variable"],
        checkpoint=lambda w, output: f"{output.model}.ckpt",
        device=config["device"],
    script:
        "../scripts/train_baseline.py"


# The test days, teacher-forced: one job.
rule sample:
    input:
        unpack(split_inputs),
        model=f"{MODELS}/{{region}}/{{season}}/{{model}}.pt",
    output:
        f"{SAMPLES}/{{region}}/{{season}}/{{model}}/test.nc",
    log:
        f"{LOGS}/sample/{{region}}_{{season}}_{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/sample/{{region}}_{{season}}_{{model}}.tsv"
    wildcard_constraints:
        model=SAMPLED_MODELS,
    conda:
        "../../envs/train.yaml"
    params:
        sampling=config["sampling"],
        variable=DATA["variable"],
        device=config["device"],
    script:
        "../scripts/sample.py"


# The beyond days, autoregressive: one job per block (sampling.block), each from the
# state the block before wrote, so a killed job reruns its own block only.
rule sample_beyond:
    input:
        unpack(sample_beyond_inputs),
    output:
        samples=f"{SAMPLES}/{{region}}/{{season}}/{{model}}/beyond/{{block}}.nc",
        state=f"{SAMPLES}/{{region}}/{{season}}/{{model}}/beyond/{{block}}.state.npz",
    log:
        f"{LOGS}/sample_beyond/{{region}}_{{season}}_{{model}}_{{block}}.log",
    benchmark:
        f"{BENCHMARKS}/sample_beyond/{{region}}_{{season}}_{{model}}_{{block}}.tsv"
    wildcard_constraints:
        model=SAMPLED_MODELS,
        block=r"\d{4}(-\d{2}-\d{2})?",
    conda:
        "../../envs/train.yaml"
    params:
        sampling=config["sampling"],
        coarse_period=DATA["coarse_period"],
        variable=DATA["variable"],
        device=config["device"],
    script:
        "../scripts/sample_beyond.py"


# The blocks joined into the beyond.nc every later rule reads, and the self-check.
rule gather_beyond:
    input:
        unpack(gather_beyond_inputs),
    output:
        beyond=f"{SAMPLES}/{{region}}/{{season}}/{{model}}/beyond.nc",
        scores=f"{SAMPLES}/{{region}}/{{season}}/{{model}}/selfcheck.json",
    log:
        f"{LOGS}/gather_beyond/{{region}}_{{season}}_{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/gather_beyond/{{region}}_{{season}}_{{model}}.tsv"
    wildcard_constraints:
        model=SAMPLED_MODELS,
    conda:
        "../../envs/train.yaml"
    params:
        sampling=config["sampling"],
        transform=config["transform"],
        variable=DATA["variable"],
    script:
        "../scripts/gather_beyond.py"


rule sampler_benchmark:
    input:
        unpack(split_inputs),
        model=f"{MODELS}/{{region}}/{{season}}/{registry.METHOD}.pt",
    output:
        f"{RESULTS}/metrics/samplers/{{region}}_{{season}}.csv",
    log:
        f"{LOGS}/sampler_benchmark/{{region}}_{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/sampler_benchmark/{{region}}_{{season}}.tsv"
    conda:
        "../../envs/train.yaml"
    params:
        sampling=config["sampling"],
        transform=config["transform"],
        variable=DATA["variable"],
        device=config["device"],
    script:
        "../scripts/sampler_benchmark.py"


rule samplers_table:
    input:
        expand(
            f"{RESULTS}/metrics/samplers/{{region}}_{{season}}.csv",
            region=REGIONS,
            season=SEASONS,
        ),
    output:
        report(
            f"{RESULTS}/metrics/samplers.csv",
            caption="../report/samplers.rst",
            category="3. Method",
            subcategory="Samplers",
            labels={"table": "samplers.csv"},
        ),
    log:
        f"{LOGS}/samplers_table.log",
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/samplers_table.py"


rule members_curve:
    input:
        unpack(split_inputs),
        model=f"{MODELS}/{{region}}/{{season}}/{registry.METHOD}.pt",
    output:
        f"{RESULTS}/metrics/members/{{region}}_{{season}}.csv",
    log:
        f"{LOGS}/members_curve/{{region}}_{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/members_curve/{{region}}_{{season}}.tsv"
    conda:
        "../../envs/train.yaml"
    params:
        sampling=config["sampling"],
        transform=config["transform"],
        variable=DATA["variable"],
        device=config["device"],
    script:
        "../scripts/members_curve.py"


rule plot_members:
    input:
        expand(
            f"{RESULTS}/metrics/members/{{region}}_{{season}}.csv",
            region=REGIONS,
            season=SEASONS,
        ),
    output:
        report(
            f"{METHOD_FIGURES}/members.png",
            caption="../report/members.rst",
            category="3. Method",
            subcategory="Members",
        ),
    log:
        f"{LOGS}/plot_members.log",
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/plot_members.py"


rule assemble:
    input:
        fine=f"{SPLIT}/{{region}}/fine.nc",
        beyond=expand(
            f"{SAMPLES}/{{{{region}}}}/{{season}}/{registry.METHOD}/beyond.nc",
            season=SEASONS,
        ),
        models=expand(
            f"{MODELS}/{{{{region}}}}/{{season}}/{registry.METHOD}.pt", season=SEASONS
        ),
    output:
        product_output(),
    log:
        f"{LOGS}/assemble/{{region}}.log",
    benchmark:
        f"{BENCHMARKS}/assemble/{{region}}.tsv"
    conda:
        "../../envs/data.yaml"
    params:
        seasons=config["seasons"],
        variable=DATA["variable"],
        coarse_period=DATA["coarse_period"],
        members_saved=config["sampling"]["members_saved"],
        sampling=config["sampling"],
        config=config,
        format=PRODUCT_FORMAT,
    script:
        "../scripts/assemble.py"


rule plot_training:
    input:
        curves=lambda w: [
            f"{MODELS}/{w.region}/{w.season}/{m}_loss.csv" for m in trained_models()
        ],
    output:
        report(
            f"{METHOD_FIGURES}/{{region}}/{{season}}/training.png",
            caption="../report/training.rst",
            category="3. Method",
            subcategory="Training curves",
            labels={"region": "{region}", "season": "{season}"},
        ),
    log:
        f"{LOGS}/plot_training/{{region}}_{{season}}.log",
    conda:
        "../../envs/evaluate.yaml"
    params:
        models=lambda w: trained_models(),
    script:
        "../scripts/plot_training.py"

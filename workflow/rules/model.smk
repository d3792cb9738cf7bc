# The transfer encoder, the diffusion models, the trained baselines, their samples and the
# continuous product. Checkpoints (*.ckpt beside the models) are not outputs, so they
# survive a killed job and training resumes from them; scripts delete them on success.
# Every learned model is trained and sampled once per seed index {seed} of evaluation.seeds
# (paths and seeds: common.smk); the product, the sampler benchmark and the training
# curves use seed 0.
#
# The training rules come first among the jobs ready to run (priority): each season's
# chain of sample_beyond blocks can only start once its models are trained, and the chains
# then run side by side. Without it the paper twin's last season was trained 37 minutes in,
# behind other seasons' blocks, and its 7 blocks ran last with one core idle.


rule pretrain_encoder:
    input:
        unpack(split_inputs),
    output:
        model=model_file(".pt", model="encoder"),
        curve=model_file("_loss.csv", model="encoder"),
        probe=model_file("_probe.csv", model="encoder"),
    log:
        f"{LOGS}/pretrain_encoder/{{region}}_{{season}}_s{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/pretrain_encoder/{{region}}_{{season}}_s{{seed}}.tsv"
    priority: 10
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=job_mem_mb("pretrain_encoder"),
        runtime=job_runtime("pretrain_encoder"),
        gpu=1,
    params:
        encoder=seeded(config["encoder"]),
        months=lambda w: config["seasons"][w.season],
        variable=DATA["variable"],
        checkpoint=lambda w, output: f"{output.model}.ckpt",
        device=config["device"],
    script:
        "../scripts/pretrain_encoder.py"


# diffusion (the method) and diffusion_no_transfer (the ablation: same config and budget,
# no transfer features, so it does not wait for pretrain_encoder). With diffusion.residual:
# regression each waits for its regression part (the registry's: transfer_unet, unet).
rule train_diffusion:
    input:
        unpack(split_inputs),
        unpack(encoder_input),
        unpack(regressor_input),
    output:
        model=model_file(".pt"),
        curve=model_file("_loss.csv"),
    log:
        f"{LOGS}/train_diffusion/{{region}}_{{season}}_{{model}}_s{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train_diffusion/{{region}}_{{season}}_{{model}}_s{{seed}}.tsv"
    wildcard_constraints:
        model="|".join(registry.of_family("diffusion")),
    priority: 10
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=job_mem_mb("train_diffusion"),
        runtime=job_runtime("train_diffusion"),
        gpu=config["diffusion"]["gpus"],  # torchrun + DDP when > 1
    params:
        encoder=config["encoder"],
        diffusion=seeded(config["diffusion"]),
        halo=config["sampling"]["halo"],
        reference_tiles=reference_tiles(),
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
        model=model_file(".pt"),
        curve=model_file("_loss.csv"),
    log:
        f"{LOGS}/train_baseline/{{region}}_{{season}}_{{model}}_s{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train_baseline/{{region}}_{{season}}_{{model}}_s{{seed}}.tsv"
    wildcard_constraints:
        model="|".join(registry.of_family("regressor")),
    priority: 10
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=job_mem_mb("train_baseline"),
        runtime=job_runtime("train_baseline"),
        gpu=1,
    params:
        encoder=config["encoder"],
        baselines=seeded(baseline_settings(config["baselines"], config["diffusion"])),
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
        model=model_file(".pt"),
    output:
        sample_path("test"),
    log:
        f"{LOGS}/sample/{{region}}_{{season}}_{{model}}_s{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/sample/{{region}}_{{season}}_{{model}}_s{{seed}}.tsv"
    wildcard_constraints:
        model=SAMPLED_MODELS,
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=job_mem_mb("sample"),
        runtime=job_runtime("sample"),
        gpu=1,
    params:
        sampling=seeded(config["sampling"]),
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
        samples=f"{sample_dir()}/beyond/{{block}}.nc",
        state=f"{sample_dir()}/beyond/{{block}}.state.npz",
    log:
        f"{LOGS}/sample_beyond/{{region}}_{{season}}_{{model}}_s{{seed}}_{{block}}.log",
    benchmark:
        f"{BENCHMARKS}/sample_beyond/{{region}}_{{season}}_{{model}}_s{{seed}}_{{block}}.tsv"
    wildcard_constraints:
        model=SAMPLED_MODELS,
        block=r"\d{4}(-\d{2}-\d{2})?",
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=job_mem_mb("sample_beyond"),
        runtime=job_runtime("sample_beyond"),
        gpu=1,
    params:
        sampling=seeded(config["sampling"]),
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
        beyond=sample_path("beyond"),
        scores=f"{sample_dir()}/selfcheck.json",
    log:
        f"{LOGS}/gather_beyond/{{region}}_{{season}}_{{model}}_s{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/gather_beyond/{{region}}_{{season}}_{{model}}_s{{seed}}.tsv"
    wildcard_constraints:
        model=SAMPLED_MODELS,
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=job_mem_mb("gather_beyond"),
        runtime=job_runtime("gather_beyond"),
    params:
        sampling=seeded(config["sampling"]),
        transform=config["transform"],
        variable=DATA["variable"],
    script:
        "../scripts/gather_beyond.py"


rule sampler_benchmark:
    input:
        unpack(split_inputs),
        model=model_file(".pt", model=registry.METHOD, seed=0),
    output:
        f"{RESULTS}/metrics/samplers/{{region}}_{{season}}.csv",
    log:
        f"{LOGS}/sampler_benchmark/{{region}}_{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/sampler_benchmark/{{region}}_{{season}}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=job_mem_mb("sampler_benchmark"),
        runtime=job_runtime("sampler_benchmark"),
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
        model=lambda w: model_file(".pt", w.region, w.season, registry.METHOD, 0),
    output:
        f"{RESULTS}/metrics/members/{{region}}_{{season}}.csv",
    log:
        f"{LOGS}/members_curve/{{region}}_{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/members_curve/{{region}}_{{season}}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=job_mem_mb("members_curve"),
        runtime=job_runtime("members_curve"),
        gpu=1,
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
        beyond=lambda w: [
            sample_path("beyond", w.region, s, registry.METHOD, 0) for s in SEASONS
        ],
        models=lambda w: [
            model_file(".pt", w.region, s, registry.METHOD, 0) for s in SEASONS
        ],
    output:
        product_output(),
    log:
        f"{LOGS}/assemble/{{region}}.log",
    benchmark:
        f"{BENCHMARKS}/assemble/{{region}}.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=job_mem_mb("assemble"),
        runtime=job_runtime("assemble"),
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
            model_file("_loss.csv", w.region, w.season, m, 0) for m in trained_models()
        ],
        probe=lambda w: model_file("_probe.csv", w.region, w.season, "encoder", 0),
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

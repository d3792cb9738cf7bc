# Stage 3: per region, the contract files every later stage reads (cropped fine record,
# coarse record on the fine grid, the static fields (elevation where given), fine truth beyond the fine period where the
# source has it); per region and season, the day lists and the scaler.


rule split_region:
    input:
        fine=raw_files("fine"),
        coarse_on_fine=rules.regrid.output,
        static=static_files(),
    output:
        **split_region_outputs(),
    log:
        f"{LOGS}/split/{{region}}.log",
    benchmark:
        f"{BENCHMARKS}/split_region/{{region}}.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=job_mem_mb("split_region"),
        runtime=job_runtime("split_region"),
    params:
        box=lambda w: BOXES[w.region],
        variable=DATA["variable"],
        static_fields=STATIC_FIELDS,
        fine_period=DATA["fine_period"],
        coarse_period=DATA["coarse_period"],
        # the user's fine files may cover only part of the beyond days: truth.nc holds those
        truth_where_held=DATA["source"] == "local",
    script:
        "../scripts/split_region.py"


rule split:
    input:
        fine=f"{SPLIT}/{{region}}/fine.nc",
    output:
        days=f"{SPLIT}/{{region}}/{{season}}/days.json",
        scaler=f"{SPLIT}/{{region}}/{{season}}/scaler.json",
    log:
        f"{LOGS}/split/{{region}}_{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/split/{{region}}_{{season}}.tsv"
    # ahead of the other ready jobs, as the training it feeds (rules/model.smk)
    priority: 10
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=job_mem_mb("split"),
        runtime=job_runtime("split"),
    params:
        months=lambda w: config["seasons"][w.season],
        fine_period=DATA["fine_period"],
        coarse_period=DATA["coarse_period"],
        buffer_days=config["split"]["buffer_days"],
        test_fraction=config["split"]["test_fraction"],
        val_fraction=config["split"]["val_fraction"],
        seed=config["split"]["seed"],
        history=config["encoder"]["history"],
        log10=config["transform"]["log10"],
        floor=config["transform"]["floor"],
        variable=DATA["variable"],
        step=DATA["step"],
    script:
        "../scripts/split.py"

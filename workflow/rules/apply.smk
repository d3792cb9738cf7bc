# The trained models over new coarse data (config apply): per entry {name}, the data
# checked against the training coarse record, onto each region's fine grid, sampled by
# each season's seed-0 method model, and joined into results/downscaled/{region}.{name}.nc.
# Nothing here trains: the models are inputs, made by model.smk as for the product.


wildcard_constraints:
    name="|".join(APPLY) or "(?!)",


if DATA["source"] == "nasa":

    # where Snakemake runs, as the other downloads (data.smk)
    localrules:
        download_apply,

    use rule download_merra2 as download_apply with:
        output:
            f"{APPLY_DIR}/{{name}}/raw/{{year}}-{{month}}.nc",
        log:
            f"{LOGS}/download_apply/{{name}}_{{year}}-{{month}}.log",
        params:
            field="coarse",
            nasa=DATA["nasa"],
            boxes=list(BOXES.values()),
            margin=DATA["margin_deg"],
            period=lambda w: APPLY[w.name]["period"],
            variable=DATA["variable"],
            attrs={"long_name": DATA["long_name"], "units": DATA["units"]},


rule apply_coarse:
    input:
        raw=lambda w: apply_raw_files(w.name),
        training=raw_files("coarse")[0],
    output:
        f"{APPLY_DIR}/{{name}}/coarse.nc",
    log:
        f"{LOGS}/apply_coarse/{{name}}.log",
    benchmark:
        f"{BENCHMARKS}/apply_coarse/{{name}}.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=job_mem_mb("apply_coarse"),
        runtime=job_runtime("apply_coarse"),
    params:
        pattern=lambda w: APPLY[w.name].get("coarse", {}).get("path"),
        source_variable=lambda w: APPLY[w.name].get("coarse", {}).get("variable"),
        training_pattern=DATA["local"].get("coarse", {}).get("path"),
        training_variable=DATA["local"].get("coarse", {}).get("variable"),
        subdaily=DATA["local"].get("subdaily", "refuse"),
        boxes=list(BOXES.values()),
        margin=DATA["margin_deg"],
        variable=DATA["variable"],
        attrs={"long_name": DATA["long_name"], "units": DATA["units"]},
    script:
        "../scripts/apply_coarse.py"


use rule regrid as apply_regrid with:
    input:
        source=[f"{APPLY_DIR}/{{name}}/coarse.nc"],
        target_grid=raw_files("fine")[0],
    output:
        f"{APPLY_DIR}/{{name}}/{{region}}/coarse_on_fine.nc",
    log:
        f"{LOGS}/apply_regrid/{{name}}_{{region}}.log",
    benchmark:
        f"{BENCHMARKS}/apply_regrid/{{name}}_{{region}}.tsv"
    resources:
        mem_mb=job_mem_mb("apply_regrid"),
        runtime=job_runtime("apply_regrid"),


rule apply_sample:
    input:
        unpack(apply_sample_inputs),
    output:
        f"{APPLY_DIR}/{{name}}/{{region}}/samples/{{season}}.nc",
    log:
        f"{LOGS}/apply_sample/{{name}}_{{region}}_{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/apply_sample/{{name}}_{{region}}_{{season}}.tsv"
    conda:
        "../../envs/train.yaml"
    resources:
        mem_mb=job_mem_mb("apply_sample"),
        runtime=job_runtime("apply_sample"),
        gpu=1,
    params:
        months=lambda w: config["seasons"][w.season],
        model=registry.METHOD,
        sampling=config["sampling"],
        variable=DATA["variable"],
        device=config["device"],
    script:
        "../scripts/apply_sample.py"


rule apply_assemble:
    input:
        fine=f"{SPLIT}/{{region}}/fine.nc",
        coarse=f"{APPLY_DIR}/{{name}}/{{region}}/coarse_on_fine.nc",
        samples=expand(
            f"{APPLY_DIR}/{{{{name}}}}/{{{{region}}}}/samples/{{season}}.nc",
            season=SEASONS,
        ),
        models=lambda w: [
            model_file(".pt", w.region, s, registry.METHOD, 0) for s in SEASONS
        ],
    output:
        apply_output(),
    log:
        f"{LOGS}/apply_assemble/{{name}}_{{region}}.log",
    benchmark:
        f"{BENCHMARKS}/apply_assemble/{{name}}_{{region}}.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=job_mem_mb("apply_assemble"),
        runtime=job_runtime("apply_assemble"),
    params:
        coarse_input=lambda w: apply_description(w.name),
        seasons=config["seasons"],
        variable=DATA["variable"],
        members_saved=config["sampling"]["members_saved"],
        sampling=config["sampling"],
        config=config,
        format=PRODUCT_FORMAT,
    script:
        "../scripts/apply_assemble.py"

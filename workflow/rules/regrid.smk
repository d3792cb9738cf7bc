# Stage 2: per region, the coarse record onto the region's fine grid (model input,
# regrid.coarse_to_fine) and the fine record onto the region's coarse grid
# (regrid.fine_to_coarse; domain analysis and consistency scores). Monthly files,
# like the raw records; the weights are cached in regrid.weights_dir.


rule regrid:
    input:
        source=raw_files("coarse"),
        target_grid=raw_files("fine")[0],
    output:
        regrid_outputs("coarse", "coarse_on_fine"),
    log:
        f"{LOGS}/regrid/{{region}}_coarse_on_fine.log",
    benchmark:
        f"{BENCHMARKS}/regrid/{{region}}.tsv"
    conda:
        "../../envs/regrid.yaml"
    resources:
        mem_mb=job_mem_mb("regrid"),
        runtime=job_runtime("regrid"),
    params:
        box=lambda w: BOXES[w.region],
        method=config["regrid"]["coarse_to_fine"],
        backend=config["regrid"]["backend"],
        missing=config["regrid"]["missing"],
        weights_dir=config["regrid"]["weights_dir"],
        variable=DATA["variable"],
    script:
        "../scripts/regrid.py"


rule regrid_fine_to_coarse:
    input:
        source=raw_files("fine"),
        target_grid=raw_files("coarse")[0],
    output:
        regrid_outputs("fine", "fine_on_coarse"),
    log:
        f"{LOGS}/regrid/{{region}}_fine_on_coarse.log",
    benchmark:
        f"{BENCHMARKS}/regrid_fine_to_coarse/{{region}}.tsv"
    conda:
        "../../envs/regrid.yaml"
    resources:
        mem_mb=job_mem_mb("regrid_fine_to_coarse"),
        runtime=job_runtime("regrid_fine_to_coarse"),
    params:
        box=lambda w: BOXES[w.region],
        method=config["regrid"]["fine_to_coarse"],
        backend=config["regrid"]["backend"],
        missing=config["regrid"]["missing"],
        weights_dir=config["regrid"]["weights_dir"],
        variable=DATA["variable"],
    script:
        "../scripts/regrid.py"

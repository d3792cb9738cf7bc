# Stage 4: Wasserstein analysis of the coarse record (on the fine grid) against the
# fine record, per region, for each season and for all days (the paper's set-up).


rule domain:
    input:
        fine=f"{SPLIT}/{{region}}/fine.nc",
        coarse_on_fine=f"{SPLIT}/{{region}}/coarse_on_fine.nc",
    output:
        table=f"{DOMAIN}/{{region}}/wasserstein.csv",
        per_day=report(
            f"{DOMAIN}/{{region}}/per_day.png",
            caption="../report/domain_per_day.rst",
            category="2. Domain shift",
            labels={"region": "{region}", "figure": "per-day distance"},
        ),
        pixel_map=report(
            f"{DOMAIN}/{{region}}/pixel_map.png",
            caption="../report/domain_pixel_map.rst",
            category="2. Domain shift",
            labels={"region": "{region}", "figure": "per-pixel distance"},
        ),
    log:
        f"{LOGS}/domain/{{region}}.log",
    benchmark:
        f"{BENCHMARKS}/domain/{{region}}.tsv"
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=job_mem_mb("domain"),
        runtime=job_runtime("domain"),
    params:
        seasons=config["seasons"],
        log10=config["transform"]["log10"],
        floor=config["transform"]["floor"],
        patch_size=config["domain"]["patch_size"],
        projections=config["domain"]["projections"],
        seeds=config["domain"]["seeds"],
        max_patches=config["domain"]["max_patches"],
        variable=DATA["variable"],
    script:
        "../scripts/domain.py"


rule domain_table:
    input:
        expand(f"{DOMAIN}/{{region}}/wasserstein.csv", region=REGIONS),
    output:
        report(
            f"{DOMAIN}/wasserstein.csv",
            caption="../report/domain_table.rst",
            category="2. Domain shift",
            labels={"region": "all", "figure": "table"},
        ),
    log:
        f"{LOGS}/domain/table.log",
    conda:
        "../../envs/data.yaml"
    script:
        "../scripts/domain_table.py"

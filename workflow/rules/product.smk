# What users take from the product: monthly and annual aggregates per member, and their figure.


rule aggregate:
    input:
        PRODUCT,
    output:
        f"{RESULTS}/downscaled/{{region}}.{{period}}.nc",
    log:
        f"{LOGS}/aggregate/{{region}}_{{period}}.log",
    benchmark:
        f"{BENCHMARKS}/aggregate/{{region}}_{{period}}.tsv"
    wildcard_constraints:
        period="|".join(AGGREGATE_PERIODS),
    conda:
        "../../envs/data.yaml"
    resources:
        mem_mb=job_mem_mb("aggregate"),
        runtime=job_runtime("aggregate"),
    params:
        variable=DATA["variable"],
        thresholds=config["product"]["thresholds"],
    script:
        "../scripts/aggregate.py"


rule plot_aggregate:
    input:
        f"{RESULTS}/downscaled/{{region}}.{AGGREGATE_FIGURE}.nc",
    output:
        report(
            f"{PRODUCT_FIGURES}/{{region}}_{AGGREGATE_FIGURE}.png",
            caption="../report/aggregate.rst",
            category="5. Product",
            labels={"region": "{region}", "figure": f"{AGGREGATE_FIGURE} aggregates"},
        ),
    log:
        f"{LOGS}/plot_aggregate/{{region}}.log",
    conda:
        "../../envs/evaluate.yaml"
    params:
        variable=DATA["variable"],
    script:
        "../scripts/plot_aggregate.py"

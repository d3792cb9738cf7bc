# Stage 9: the bicubic baseline, scores of every model, the paper's diagnostics, figures.
# evaluate scores every seed of every model on the same bootstrap resamples of the days, so
# the seed means' intervals and the paired comparisons with the method come from one job.


rule sample_bicubic:
    input:
        coarse=raw_files("coarse"),
        fine=f"{SPLIT}/{{region}}/fine.nc",
        days=f"{SPLIT}/{{region}}/{{season}}/days.json",
    output:
        test=sample_path("test", model="bicubic"),
        beyond=sample_path("beyond", model="bicubic"),
    log:
        f"{LOGS}/sample_bicubic/{{region}}/{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/sample_bicubic/{{region}}_{{season}}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=job_mem_mb("sample_bicubic"),
        runtime=job_runtime("sample_bicubic"),
    params:
        variable=DATA["variable"],
        log10=config["transform"]["log10"],
        floor=config["transform"]["floor"],
    script:
        "../scripts/sample_bicubic.py"


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        scores=f"{METRICS}/{{region}}/{{season}}/scores.csv",
        by_seed=f"{METRICS}/{{region}}/{{season}}/scores_by_seed.csv",
        comparisons=f"{METRICS}/{{region}}/{{season}}/comparisons.csv",
        diagnostics=f"{METRICS}/{{region}}/{{season}}/diagnostics.json",
    log:
        f"{LOGS}/evaluate/{{region}}/{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{{region}}_{{season}}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=job_mem_mb("evaluate"),
        runtime=job_runtime("evaluate"),
    params:
        seeds=evaluated_seeds(),
        variable=DATA["variable"],
        log10=config["transform"]["log10"],
        floor=config["transform"]["floor"],
        fine_period=DATA["fine_period"],
        settings=EVAL,
    script:
        "../scripts/evaluate.py"


rule summarize_metrics:
    input:
        scores=expand(
            f"{METRICS}/{{region}}/{{season}}/scores.csv",
            region=REGIONS,
            season=SEASONS,
        ),
        comparisons=expand(
            f"{METRICS}/{{region}}/{{season}}/comparisons.csv",
            region=REGIONS,
            season=SEASONS,
        ),
    output:
        summary=report(
            f"{METRICS}/summary.csv",
            caption="../report/summary.rst",
            category="4. Evaluation",
            subcategory="Scores",
            labels={"figure": "table: summary.csv", "period": "test and beyond"},
        ),
        comparisons=report(
            f"{METRICS}/comparisons.csv",
            caption="../report/comparisons.rst",
            category="4. Evaluation",
            subcategory="Scores",
            labels={
                "figure": "table: comparisons.csv",
                "period": "test and beyond",
            },
        ),
    log:
        f"{LOGS}/summarize_metrics.log",
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/summarize_metrics.py"


rule plot_metrics:
    input:
        summary=f"{METRICS}/summary.csv",
        reference=[f"{RAW}/twin.json"] if DATA["source"] == "synthetic" else [],
    output:
        test=report(
            f"{EVAL_FIGURES}/metrics_test.png",
            caption="../report/metrics.rst",
            category="4. Evaluation",
            subcategory="Scores",
            labels={"figure": "metric bars", "period": "test"},
        ),
        beyond=report(
            f"{EVAL_FIGURES}/metrics_beyond.png",
            caption="../report/metrics.rst",
            category="4. Evaluation",
            subcategory="Scores",
            labels={"figure": "metric bars", "period": "beyond"},
        ),
    log:
        f"{LOGS}/plot_metrics.log",
    conda:
        "../../envs/evaluate.yaml"
    script:
        "../scripts/plot_metrics.py"


rule plot_evaluation:
    input:
        unpack(evaluate_inputs),
        diagnostics=f"{METRICS}/{{region}}/{{season}}/diagnostics.json",
    output:
        maps=evaluation_figure("maps", "maps"),
        spectra=evaluation_figure("spectra", "power spectra"),
        variogram=evaluation_figure("variogram", "semivariograms"),
        acf=evaluation_figure("acf", "ACF and PACF"),
        lags=evaluation_figure("lags", "persistence curves"),
        drift=evaluation_figure("drift", "drift"),
        rank_histogram=evaluation_figure("rank_histogram", "rank histograms"),
    log:
        f"{LOGS}/plot_evaluation/{{region}}/{{season}}.log",
    benchmark:
        f"{BENCHMARKS}/plot_evaluation/{{region}}_{{season}}.tsv"
    conda:
        "../../envs/evaluate.yaml"
    resources:
        mem_mb=job_mem_mb("plot_evaluation"),
        runtime=job_runtime("plot_evaluation"),
    params:
        models=evaluated_models(),
        variable=DATA["variable"],
        units=DATA["units"],
        log10=config["transform"]["log10"],
        floor=config["transform"]["floor"],
        map_days=EVAL["map_days"],
        map_members=EVAL["map_members"],
    script:
        "../scripts/plot_evaluation.py"


if DATA["source"] == "synthetic":

    rule sample_references:
        input:
            reference=f"{RAW}/twin.json",
            fine=[f"{SPLIT}/{r}/fine.nc" for r in REGIONS for s in SEASONS],
            days=[f"{SPLIT}/{r}/{s}/days.json" for r in REGIONS for s in SEASONS],
            truth=[f"{SPLIT}/{r}/truth.nc" for r in REGIONS] if SPLIT_TRUTH else [],
        output:
            oracle=[
                sample_path(p, r, s, "oracle")
                for r in REGIONS
                for s in SEASONS
                for p in ("test", "beyond")
            ],
            ceiling=[
                sample_path(p, r, s, "ceiling")
                for r in REGIONS
                for s in SEASONS
                for p in ("test", "beyond")
            ],
        log:
            f"{LOGS}/sample_references.log",
        benchmark:
            f"{BENCHMARKS}/sample_references/sample_references.tsv"
        conda:
            "../../envs/evaluate.yaml"
        resources:
            mem_mb=job_mem_mb("sample_references"),
            runtime=job_runtime("sample_references"),
        params:
            regions=[r for r in REGIONS for s in SEASONS],
            seasons=[s for r in REGIONS for s in SEASONS],
            truth_index=[REGIONS.index(r) for r in REGIONS for s in SEASONS],
            boxes=config["regions"],
            margin=DATA["margin_deg"],
            period=DATA["coarse_period"],
            variable=DATA["variable"],
            units=DATA["units"],
            long_name=DATA["long_name"],
        script:
            "../scripts/sample_references.py"

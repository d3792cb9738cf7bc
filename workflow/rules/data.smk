# Stage 1: the raw daily records, one netCDF file per month, and the fine elevation.


if DATA["source"] == "synthetic":

    rule make_synthetic:
        output:
            coarse=raw_files("coarse"),
            fine=raw_files("fine"),
            elevation=f"{RAW}/elevation.nc",
            reference=f"{RAW}/twin.json",
        log:
            f"{LOGS}/make_synthetic.log",
        benchmark:
            f"{BENCHMARKS}/make_synthetic/make_synthetic.tsv"
        conda:
            "../../envs/data.yaml"
        # The generator runs a month ahead of the scores and files in a thread of its own
        # (diffscale.core.read_ahead): the paper twin's third run used 9.4 CPU-minutes in
        # 5.0 wall-minutes.
        threads: 2
        resources:
            mem_mb=job_mem_mb("make_synthetic"),
            runtime=job_runtime("make_synthetic"),
        params:
            boxes=BOXES,
            margin=DATA["margin_deg"],
            period=DATA["coarse_period"],
            variable=DATA["variable"],
            long_name=DATA["long_name"],
            units=DATA["units"],
            synthetic=DATA["synthetic"],
            out_dir=lambda w, output: Path(output.elevation).parent,
        script:
            "../scripts/make_synthetic.py"

    rule plot_twin:
        input:
            coarse=raw_files("coarse")[0],
            fine=raw_files("fine")[0],
            elevation=f"{RAW}/elevation.nc",
            reference=f"{RAW}/twin.json",
        output:
            report(
                f"{RESULTS}/figures/twin_overview.png",
                caption="../report/twin_overview.rst",
                category="1. Data",
                labels={"figure": "synthetic twin"},
            ),
        log:
            f"{LOGS}/plot_twin.log",
        conda:
            "../../envs/evaluate.yaml"
        params:
            variable=DATA["variable"],
            regions=config["regions"],
        script:
            "../scripts/plot_twin.py"


if DATA["source"] == "nasa":

    # Compute nodes often have no internet: downloads run where Snakemake runs, and the
    # nasa_connections token (see profiles/default) caps parallel requests to NASA.
    localrules:
        download_merra2,
        download_g5nr,
        download_elevation,

    rule download_merra2:
        output:
            f"{RAW}/coarse/{{year}}-{{month}}.nc",
        log:
            f"{LOGS}/download_merra2/{{year}}-{{month}}.log",
        wildcard_constraints:
            year=r"\d{4}",
            month=r"\d{2}",
        conda:
            "../../envs/data.yaml"
        resources:
            nasa_connections=1,
        params:
            field="coarse",
            nasa=DATA["nasa"],
            boxes=list(BOXES.values()),
            margin=DATA["margin_deg"],
            period=DATA["coarse_period"],
            variable=DATA["variable"],
            attrs={"long_name": DATA["long_name"], "units": DATA["units"]},
        script:
            "../scripts/download_nasa.py"

    use rule download_merra2 as download_g5nr with:
        output:
            f"{RAW}/fine/{{year}}-{{month}}.nc",
        log:
            f"{LOGS}/download_g5nr/{{year}}-{{month}}.log",
        params:
            field="fine",
            nasa=DATA["nasa"],
            boxes=list(BOXES.values()),
            margin=DATA["margin_deg"],
            period=DATA["fine_period"],
            variable=DATA["variable"],
            attrs={"long_name": DATA["long_name"], "units": DATA["units"]},

    rule download_elevation:
        output:
            f"{RAW}/elevation.nc",
        log:
            f"{LOGS}/download_elevation.log",
        conda:
            "../../envs/data.yaml"
        resources:
            nasa_connections=1,
        params:
            field="elevation",
            nasa=DATA["nasa"],
            boxes=list(BOXES.values()),
            margin=DATA["margin_deg"],
            period=DATA["fine_period"],
            variable="elevation",
            attrs={},
        script:
            "../scripts/download_nasa.py"


if DATA["source"] == "local":

    rule normalise_local_coarse:
        input:
            local_files("coarse"),
        output:
            raw_files("coarse"),
        log:
            f"{LOGS}/normalise_local/coarse.log",
        conda:
            "../../envs/data.yaml"
        params:
            pattern=DATA["local"]["coarse"]["path"],
            source_variable=DATA["local"]["coarse"]["variable"],
            partner=(DATA["local"]["fine"]["path"], DATA["local"]["fine"]["variable"]),
            boxes=list(BOXES.values()),
            margin=DATA["margin_deg"],
            period=DATA["coarse_period"],
            required=DATA["coarse_period"],
            variable=DATA["variable"],
            attrs={"long_name": DATA["long_name"], "units": DATA["units"]},
            step=DATA["step"],
            subdaily=DATA["local"]["subdaily"],
        script:
            "../scripts/normalise_local.py"

    use rule normalise_local_coarse as normalise_local_fine with:
        input:
            local_files("fine"),
        output:
            raw_files("fine"),
        log:
            f"{LOGS}/normalise_local/fine.log",
        params:
            pattern=DATA["local"]["fine"]["path"],
            source_variable=DATA["local"]["fine"]["variable"],
            partner=(
                DATA["local"]["coarse"]["path"],
                DATA["local"]["coarse"]["variable"],
            ),
            boxes=list(BOXES.values()),
            margin=DATA["margin_deg"],
            # fine truth beyond fine_period is kept (scored, never trained on)
            period=DATA["coarse_period"],
            required=DATA["fine_period"],
            variable=DATA["variable"],
            attrs={"long_name": DATA["long_name"], "units": DATA["units"]},
            step=DATA["step"],
            subdaily=DATA["local"]["subdaily"],

    if "elevation" in STATIC_FIELDS:

        use rule normalise_local_coarse as normalise_local_elevation with:
            input:
                local_files("elevation"),
            output:
                f"{RAW}/elevation.nc",
            log:
                f"{LOGS}/normalise_local/elevation.log",
            params:
                pattern=DATA["local"]["elevation"]["path"],
                source_variable=DATA["local"]["elevation"]["variable"],
                boxes=list(BOXES.values()),
                margin=DATA["margin_deg"],
                period=None,
                required=None,
                variable="elevation",
                attrs={"long_name": "surface height above sea level", "units": "m"},

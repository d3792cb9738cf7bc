# Stage 1: the raw daily records, one netCDF file per month, and the fine elevation.


if DATA["source"] == "synthetic":

    rule make_synthetic:
        output:
            coarse=raw_files("coarse"),
            fine=raw_files("fine"),
            elevation=f"{RAW}/elevation.nc",
            reference=f"{RAW}/twin.json",
        params:
            boxes=BOXES,
            margin=DATA["margin_deg"],
            period=DATA["coarse_period"],
            variable=DATA["variable"],
            long_name=DATA["long_name"],
            units=DATA["units"],
            synthetic=DATA["synthetic"],
            out_dir=lambda w, output: Path(output.elevation).parent,
        log:
            f"{LOGS}/make_synthetic.log",
        conda:
            "../../envs/data.yaml"
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
        params:
            variable=DATA["variable"],
            regions=config["regions"],
        log:
            f"{LOGS}/plot_twin.log",
        conda:
            "../../envs/evaluate.yaml"
        script:
            "../scripts/plot_twin.py"

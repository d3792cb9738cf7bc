# Two commands do everything: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel on this kind of machine; on a GPU cluster use e.g. TORCH_SPEC=torch
# (pip then keeps or fetches a CUDA build).
TORCH_SPEC ?= torch==2.13.0
CORES ?= all
PYTEST_ARGS ?=

.PHONY: install demo tune seeds ablation transport transport-bottleneck paper-twin tiling test report readme-results config-docs clean
.DEFAULT_GOAL := demo

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/snakemake --cores $(CORES)
	$(VENV)/bin/snakemake --cores $(CORES) --report results/report.html
	$(MAKE) readme-results
	@echo "Report: results/report.html"

# The method's tuned choices selected on validation days only (config section tuning): the
# candidates' validation scores in results/tuning/, the selection as a config overlay
# results/tuning/selected.yaml, the figure in results/tuning/report.html. Test and beyond
# truth are never read.
tune: install
	$(VENV)/bin/snakemake --cores $(CORES) tuning
	$(VENV)/bin/snakemake --cores $(CORES) tuning --report results/tuning/report.html
	@echo "Selection: results/tuning/selected.yaml; report: results/tuning/report.html"

# The demo with three training seeds (config/seeds.yaml): intervals over seeds and days.
seeds: install
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/config.yaml config/seeds.yaml
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/config.yaml config/seeds.yaml --report results/report.html
	$(MAKE) readme-results
	@echo "Report: results/report.html"

# The demo's summary.csv and comparisons.csv copied to docs/results/ (kept in git) and the
# README's results tables rewritten from them; tests/test_readme_results.py checks they agree.
readme-results: install
	$(PY) -m diffscale.evaluation.results_table --metrics results/metrics --snapshot docs/results --readme README.md

# The demo plus the ablations of the method's two design choices (config/ablation.yaml: without
# the transfer encoder, and with the residual from the coarse field), all in the report; their
# rows are copied to docs/results/ablation/ and the README's ablation block.
ablation: install
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/config.yaml config/ablation.yaml
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/config.yaml config/ablation.yaml --report results/report.html
	$(PY) -m diffscale.evaluation.results_table --block ablation --metrics results/metrics
	@echo "Report: results/report.html"

# The demo on the transport twin (config/transport.yaml) with the ablations, into
# results/transport/; its tables are copied to docs/results/transport/ and the README's block.
TRANSPORT_CONFIGS := config/config.yaml config/ablation.yaml config/transport.yaml
transport: install
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(TRANSPORT_CONFIGS)
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(TRANSPORT_CONFIGS) --report results/transport/report.html
	$(PY) -m diffscale.evaluation.results_table --block transport --metrics results/transport/metrics
	@echo "Report: results/transport/report.html"

# The transport twin with the transfer models fed the encoder's bottleneck alone
# (config/transport_bottleneck.yaml), into results/transport_bottleneck/; its rows of the
# transfer models and the ablation go to docs/results/transport_bottleneck/ and the README.
BOTTLENECK_CONFIGS := config/config.yaml config/transport.yaml config/transport_bottleneck.yaml
transport-bottleneck: install
	$(VENV)/bin/snakemake --cores $(CORES) --configfile $(BOTTLENECK_CONFIGS)
	$(PY) -m diffscale.evaluation.results_table --block transport_bottleneck --metrics results/transport_bottleneck/metrics

# The sampling tilings compared on the validation days of the demo trained on 16-pixel patches
# (three seeds; with halo 4, and trained and sampled with halo 1 as config/paper.yaml): the
# per-day scores and tables go to docs/results/tiling/ (README, "Cost of the long product").
TILING_MODELS := $(foreach s,DJF JJA,$(foreach k,0 1 2,models/west/$(s)/diffusion.s$(k).pt))
TILING_HALO4 := config/config.yaml config/seeds.yaml config/tiling_patch16.yaml
TILING_HALO1 := $(TILING_HALO4) config/tiling_patch16_halo1.yaml
TILING_RUN := $(PY) benchmarks/tiling_quality.py --config config/config.yaml --members 8 --steps 10 --seeds 0,1,2
tiling: install
	$(VENV)/bin/snakemake --cores $(CORES) $(addprefix results/tiling/halo4/,$(TILING_MODELS)) --configfile $(TILING_HALO4)
	$(VENV)/bin/snakemake --cores $(CORES) $(addprefix results/tiling/halo1/,$(TILING_MODELS)) --configfile $(TILING_HALO1)
	mkdir -p docs/results/tiling
	$(TILING_RUN) --results results/tiling/halo4 --tiling 16:0.75 --tiling 16:0 --tiling 16:0:3 --tiling 16:0:2 \
		--tiling 16:0:1 --tiling 16:0:0 --tiling 24:0:2 --tiling 24:0:1 --tiling 32:0:2 \
		--out docs/results/tiling/trained_halo4_days.csv | tee docs/results/tiling/trained_halo4.txt
	$(TILING_RUN) --results results/tiling/halo1 --tiling 16:0:1 --tiling 16:0:4 --tiling 16:0.75:4 \
		--out docs/results/tiling/trained_halo1_days.csv | tee docs/results/tiling/trained_halo1.txt
	$(PY) benchmarks/tiling_quality.py --compare "trained halo 4=docs/results/tiling/trained_halo4_days.csv" \
		"trained halo 1=docs/results/tiling/trained_halo1_days.csv" --reference "trained halo 4, 16:0.75:4" \
		| tee docs/results/tiling/trained_halo4_vs_halo1.txt

# The paper's data sizes through every rule (config/paper_twin.yaml: area1's 432 x 357 fine
# pixels, 25 coarse years, the 2-year fine record, small models), into results/paper_twin/;
# each rule's wall time and peak memory (its benchmark files) go to
# docs/results/paper_twin/rule_costs.csv and README.md ("Paper-size data"); the report is
# results/paper_twin/report.html. About 43 GB of disk.
paper-twin: install
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/paper_twin.yaml
	$(VENV)/bin/snakemake --cores $(CORES) --configfile config/paper_twin.yaml --report results/paper_twin/report.html
	$(PY) -m diffscale.evaluation.rule_costs --benchmarks results/paper_twin/benchmarks \
		--snapshot docs/results/paper_twin/rule_costs.csv --readme README.md

report: install
	$(VENV)/bin/snakemake --cores $(CORES) --report results/report.html

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

config-docs: install
	$(PY) -m diffscale.core.config --update-readme config/README.md

clean:
	rm -rf results .snakemake

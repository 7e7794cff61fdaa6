# SkipLSTM: train -> hls -> csim -> emulate -> rtl -> report.
# The run stages (train, hls, csim, emulate, rtl, pnr, report, demo, synth) take MODEL=<recipe name in models/>
# (default: the demo recipe), SEED=N (one of the recipe's seeds; default: its first) and OUT=<folder>
# (default: out); results takes OUT only, bench neither (`make bench PARTS=trained,training` reruns only
# those parts into bench/results.json). `make train SEEDS=0-9 JOBS=2` trains a sweep
# ("all", "0-9", "0,3,5-7"), JOBS at once. A variable left empty passes no option.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
MODEL  ?= mnist_rows_demo
OUT    ?= out
SEED   ?=
SEEDS  ?=
JOBS   ?=
CLI    := $(PY) -m pipeline.cli
SEED_OPT := $(if $(SEED),--seed $(SEED))
TRAIN_OPT := $(strip $(SEED_OPT) $(if $(SEEDS),--seeds $(SEEDS)) $(if $(JOBS),--jobs $(JOBS)))

.PHONY: setup tools yosys test test-fast demo train hls csim emulate rtl pnr report synth bench results fuzz lint clean

$(VENV)/.installed: pyproject.toml
	@echo "== setup: creating $(VENV) and installing the project (one-time, a few minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# Tools from outside pip, tried once by `make setup` (the stamp $(VENV)/.tools records the attempt, so a
# stage target never runs apt-get; `make tools` tries again): Yosys from Debian's package (the RTL stage's
# resource estimate), installed when missing and we are root; otherwise a clear message, and only the
# resource estimate is skipped (loudly) later.
$(VENV)/.tools: | $(VENV)/.installed
	@command -v yosys >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "== setup: installing yosys (apt-get install yosys)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq yosys >/dev/null) \
	      || echo "== setup: WARNING: apt-get install yosys failed; the RTL resource estimate will be skipped (make tools tries again)"; \
	  else \
	    echo "== setup: WARNING: yosys not found and not root: run 'sudo apt-get install yosys' for the RTL resource estimate"; \
	  fi; }
	@touch $@

tools:
	@rm -f $(VENV)/.tools
	@$(MAKE) --no-print-directory $(VENV)/.tools

yosys: tools

setup: $(VENV)/.installed $(VENV)/.tools

test: setup
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

lint: setup
	$(PY) -m ruff check pipeline tests examples

train: setup
	$(CLI) train --model $(MODEL) --out $(OUT) $(TRAIN_OPT)

hls: setup
	$(CLI) hls --model $(MODEL) --out $(OUT) $(SEED_OPT)

csim: setup
	$(CLI) csim --model $(MODEL) --out $(OUT) $(SEED_OPT)

emulate: setup
	$(CLI) emulate --model $(MODEL) --out $(OUT) $(SEED_OPT)

rtl: setup
	$(CLI) rtl --model $(MODEL) --out $(OUT) $(SEED_OPT)

pnr: setup
	$(CLI) pnr --model $(MODEL) --out $(OUT) $(SEED_OPT)

report: setup
	$(CLI) report --model $(MODEL) --out $(OUT) $(SEED_OPT)

demo: setup
	$(CLI) demo --model $(MODEL) --out $(OUT) $(SEED_OPT)

synth: setup
	$(CLI) synth --model $(MODEL) --out $(OUT) $(SEED_OPT)

results: setup
	$(CLI) results --out $(OUT)

bench: setup
	$(CLI) bench --out bench $(if $(PARTS),--parts $(PARTS))

fuzz: setup
	SKIPLSTM_FUZZ_EXAMPLES=200 $(PY) -m pytest -q tests/test_fuzz.py

clean:
	rm -rf hls_project/*/ $(OUT)

# SkipLSTM: train -> hls -> csim -> emulate -> rtl -> report.
# Every stage takes MODEL=<recipe name in models/> (default: the demo recipe) and OUT=<folder> (default: out).
# Seeds: SEED=N picks one of the recipe's seeds (default: its first) for train, hls, csim, emulate, rtl,
# report, demo and synth; `make train SEEDS=0-9 JOBS=2` trains a sweep ("all", "0-9", "0,3,5-7"), JOBS at
# once. A variable left empty passes no option.
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

.PHONY: setup yosys test test-fast demo train hls csim emulate rtl report synth bench results fuzz lint clean

$(VENV)/.installed: pyproject.toml
	@echo "== setup: creating $(VENV) and installing the project (one-time, a few minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# Yosys (the RTL stage's resource estimate) from Debian's package: installed when missing and we are
# root; otherwise a clear message, and only the resource estimate is skipped (loudly) later.
yosys:
	@command -v yosys >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "== setup: installing yosys (apt-get install yosys)"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq yosys >/dev/null) \
	      || echo "== setup: WARNING: apt-get install yosys failed; the RTL resource estimate will be skipped"; \
	  else \
	    echo "== setup: WARNING: yosys not found and not root: run 'sudo apt-get install yosys' for the RTL resource estimate"; \
	  fi; }

setup: $(VENV)/.installed yosys

test: setup
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

lint: setup
	$(PY) -m ruff check pipeline tests

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

report: setup
	$(CLI) report --model $(MODEL) --out $(OUT) $(SEED_OPT)

demo: setup
	$(CLI) demo --model $(MODEL) --out $(OUT) $(SEED_OPT)

synth: setup
	$(CLI) synth --model $(MODEL) --out $(OUT) $(SEED_OPT)

results: setup
	$(CLI) results --out $(OUT)

bench: setup
	$(CLI) bench --out bench

fuzz: setup
	SKIPLSTM_FUZZ_EXAMPLES=200 $(PY) -m pytest -q tests/test_fuzz.py

clean:
	rm -rf hls_project/*/ $(OUT)

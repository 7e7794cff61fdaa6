# SkipLSTM: train -> hls -> csim -> emulate -> report.
# Every stage takes MODEL=<recipe name in models/> (default: the demo recipe).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
MODEL  ?= mnist_rows_demo
OUT    ?= out
CLI    := $(PY) -m pipeline.cli

.PHONY: setup test test-fast demo train hls csim emulate report synth bench results fuzz lint clean

$(VENV)/.installed: pyproject.toml
	@echo "== setup: creating $(VENV) and installing the project (one-time, a few minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e '.[dev]'
	@touch $@

setup: $(VENV)/.installed

test: setup
	$(PY) -m pytest -q tests

test-fast: setup
	$(PY) -m pytest -q -m "not slow" tests

lint: setup
	$(PY) -m ruff check pipeline tests

train: setup
	$(CLI) train --model $(MODEL) --out $(OUT)

hls: setup
	$(CLI) hls --model $(MODEL) --out $(OUT)

csim: setup
	$(CLI) csim --model $(MODEL) --out $(OUT)

emulate: setup
	$(CLI) emulate --model $(MODEL) --out $(OUT)

report: setup
	$(CLI) report --model $(MODEL) --out $(OUT)

demo: setup
	$(CLI) demo --model $(MODEL) --out $(OUT)

synth: setup
	$(CLI) synth --model $(MODEL) --out $(OUT)

results: setup
	$(CLI) results --out $(OUT)

bench: setup
	$(CLI) bench --out bench

fuzz: setup
	SKIPLSTM_FUZZ_EXAMPLES=200 $(PY) -m pytest -q tests/test_fuzz.py

clean:
	rm -rf hls_project/*/ $(OUT)

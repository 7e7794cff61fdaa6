"""Property-based tests (hypothesis): random model configurations and inputs through the whole chain.

1. `test_fuzz_chain` (one g++ build per example, ~4-8 s): a random model (1-3 stacked SparseStateLSTM
   layers of 1..48 units, 1..24 inputs, 1..10 steps, return_sequences, optional Dense(relu) hidden +
   Dense head; one of several ap_fixed precisions incl. rounding and saturation modes; lanes dividing every H;
   LUT size 64..4096; either pruning rule, threshold 0..0.7, h_T pruned or not (``prune_last``);
   weight scale; input sparsity; and
   sometimes narrow accumulators: saturating/rounding ones, which force the emulator's sequential path,
   or wrapping ones) is generated, built and C-simulated; `_chain.check_chain` holds

   * emulator (fast and forced-sequential paths, sparse and dense mode) == csim sparse == csim dense,
     bit for bit;
   * per LSTM layer and step: csim cycles == cost model == emulator costs, nnz_x / nnz_h equal,
     no compiler warning in the generated code.

2. `test_fuzz_emulator_paths` (no compiler, ~0.1 s per example): the emulator's fast path == its
   sequential path, in both modes, on random configurations and narrow accumulators (the fixed-point
   path choice); the overflow counts of the sparse and dense sequential runs agree.

Example counts: ``SKIPLSTM_FUZZ_EXAMPLES`` (N) examples of (1) and max(50, 2N) of (2). Unset (``make
test``): N = 6, derandomized (the same examples on every run, no example database). Set (``make fuzz``:
N = 200): random, with the seed printed; ``SKIPLSTM_FUZZ_SEED`` replays a seed.
"""

from __future__ import annotations

import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from _chain import (
    MODES,
    PRECISIONS,
    PRUNES,
    Chain,
    build_model,
    check_chain,
    make_inputs,
    run_chain,
    with_config,
)
from hypothesis import HealthCheck, event, given, note, seed, settings
from hypothesis import strategies as st

from pipeline.emulator import Emulator
from pipeline.hls import project as hls_project
from pipeline.precision import to_fixed

# ------------------------------------------------------------------------------------ example counts
_ENV = os.environ.get("SKIPLSTM_FUZZ_EXAMPLES", "").strip()
FUZZING = bool(_ENV)
CHAIN_EXAMPLES = int(_ENV) if FUZZING else 6
EMULATOR_EXAMPLES = max(50, 2 * CHAIN_EXAMPLES) if FUZZING else 50
SEED = int(os.environ.get("SKIPLSTM_FUZZ_SEED") or random.randrange(2**32)) if FUZZING else None


def _settings(max_examples: int):
    reproducible = {} if FUZZING else {"derandomize": True, "database": None}
    return settings(max_examples=max_examples, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    print_blob=True, **reproducible)


def _seeded(test):
    return seed(SEED)(test) if FUZZING else test


# ------------------------------------------------------------------------------------ the strategies
FUZZ_PRECISIONS = (
    *PRECISIONS,  # the chain suite's four: ap_fixed<16,6>, <12,5>, <20,8>, <10,4,AP_RND,AP_SAT>
    "ap_fixed<14,5,AP_RND_CONV,AP_SAT>",
    "ap_fixed<12,4,AP_TRN_ZERO,AP_SAT_SYM>",
    "ap_fixed<18,7,AP_RND_ZERO>",
    "ap_fixed<8,3,AP_RND_INF,AP_SAT>",
    "ap_fixed<24,10,AP_RND_MIN_INF,AP_SAT_ZERO>",
)
FUZZ_TABLE_SIZES = (64, 256, 1024, 4096)
# Narrow accumulators (replacing the exact AP_WRAP one `convert` picks): saturating and rounding ones
# (the emulator must take its sequential path), a wrapping one that drops fractional bits (sequential
# too), and a wrapping one that keeps them all (>= 28 fractional bits: the fast path, with wraparound).
LSTM_ACCUMS = (
    "ap_fixed<18,6,AP_RND,AP_SAT>",
    "ap_fixed<16,4,AP_TRN,AP_SAT>",
    "ap_fixed<22,7,AP_RND_CONV,AP_SAT_SYM>",
    "ap_fixed<20,5,AP_RND_ZERO,AP_SAT_ZERO>",
    "ap_fixed<24,8>",
    "ap_fixed<40,5>",
)
DENSE_ACCUMS = (
    "ap_fixed<14,6,AP_RND,AP_SAT>",
    "ap_fixed<12,4,AP_TRN,AP_SAT_SYM>",
    "ap_fixed<16,5,AP_RND_INF,AP_SAT_ZERO>",
    "ap_fixed<20,6>",
    "ap_fixed<40,4>",
)


@dataclass(frozen=True)
class Case:
    """One drawn example: the model configuration, its inputs and the accumulator overrides."""

    chain: Chain
    n_samples: int
    zero_frac: float  # fraction of input entries forced to exact zero (before the other zero patterns)
    input_seed: int
    accums: dict[str, str] = field(default_factory=dict)  # layer name -> accumulator precision

    def inputs(self) -> np.ndarray:
        return make_inputs(np.random.RandomState(self.input_seed), self.n_samples, self.chain.steps,
                           self.chain.n_in, zero_frac=self.zero_frac)

    def mutate(self, hls_cfg: dict) -> None:
        for name, accum in self.accums.items():
            hls_cfg["LayerName"][name]["Precision"]["accum"] = accum


def _rounded(lo: float, hi: float, digits: int):
    return st.floats(lo, hi, allow_nan=False).map(lambda v: round(v, digits))


@st.composite
def cases(draw, max_samples: int = 16) -> Case:
    n_layers = draw(st.integers(1, 3))
    lanes = draw(st.sampled_from((1, 2, 3, 4, 8, 16)))  # P must divide every H
    units = tuple(lanes * u for u in draw(st.lists(st.integers(1, max(1, 48 // lanes)), min_size=n_layers,
                                                   max_size=n_layers)))
    prune = tuple(draw(st.sampled_from(PRUNES)) for _ in units)
    thresholds = tuple(draw(_rounded(0.0, 0.7, 3)) for _ in units)
    return_sequences = draw(st.booleans())
    head = 0 if return_sequences else draw(st.one_of(st.just(0), st.integers(1, 12)))  # no Dense on (T, H)
    hidden = draw(st.one_of(st.just(0), st.integers(1, 16))) if head else 0
    chain = Chain(
        name="fuzz", seed=draw(st.integers(0, 2**20)), n_in=draw(st.integers(1, 24)), steps=draw(st.integers(1, 10)),
        units=units, prune=prune, thresholds=thresholds, return_sequences=return_sequences, hidden=hidden,
        head=head, precision=draw(st.sampled_from(FUZZ_PRECISIONS)), lanes=lanes,
        table_size=draw(st.sampled_from(FUZZ_TABLE_SIZES)), gain=draw(_rounded(0.3, 4.0, 2)), slow=False,
        prune_last=tuple(draw(st.booleans()) for _ in units),
    )
    accums = {}
    if draw(st.sampled_from((False, False, True))):  # sometimes: narrow accumulators
        narrow = st.one_of(st.none(), st.sampled_from(LSTM_ACCUMS))
        for k in range(n_layers):
            accums[f"lstm{k}"] = draw(narrow)
        for name, width in (("hid", hidden), ("head", head)):
            if width:
                accums[name] = draw(st.one_of(st.none(), st.sampled_from(DENSE_ACCUMS)))
        accums = {name: acc for name, acc in accums.items() if acc is not None}
    return Case(chain=chain, n_samples=draw(st.integers(2, max_samples)), zero_frac=draw(_rounded(0.0, 0.95, 2)),
                input_seed=draw(st.integers(0, 2**20)), accums=accums)


def _events(case: Case, result) -> None:
    """Coverage, shown by ``--hypothesis-show-statistics``."""
    event(f"{len(case.chain.units)} LSTM layer(s)")
    event("narrow accumulator" if case.accums else "exact accumulators")
    if any(key.endswith(".accum") for key in result.overflow):
        event("an accumulator overflowed (saturated or wrapped)")
    event("paths: " + "/".join(sorted(set(result.path.values()))))


def _check_paths(case: Case, paths: dict[str, str]) -> None:
    """Saturating or rounding accumulators cannot take the single-matmul path; exact ones do."""
    for name, path in paths.items():
        accum = case.accums.get(name)
        if accum is None:
            assert path == "fast", (name, path)  # the exact accumulator convert picks (<= 55 bits here)
        elif to_fixed(accum).o_mode != "AP_WRAP":
            assert path == "sequential", (name, accum, path)


# ------------------------------------------------------------------------------------------ reporting
COUNTS = {"chain": 0, "emulator": 0}


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    """Say how many examples ran (and the seed when fuzzing), past pytest's output capture."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    mode = f"random, seed {SEED} (SKIPLSTM_FUZZ_SEED={SEED} replays it)" if FUZZING else "derandomized"
    with capture.global_and_fixture_disabled():
        reporter.write_line(
            f"\ntest_fuzz: {COUNTS['chain']} csim configurations passed (max_examples {CHAIN_EXAMPLES}), "
            f"{COUNTS['emulator']} emulator configurations passed (max_examples {EMULATOR_EXAMPLES}); {mode}"
        )


# ------------------------------------------------------------------------------ 1. emulator == csim
@_seeded
@_settings(CHAIN_EXAMPLES)
@given(case=cases())
def test_fuzz_chain(case: Case):
    note(f"seed: {SEED}" if FUZZING else "derandomized")
    x = case.inputs()
    with tempfile.TemporaryDirectory(prefix="skiplstm_fuzz_") as tmp, pytest.MonkeyPatch.context() as mp:
        if case.accums:
            with_config(mp, case.mutate)
        model = build_model(case.chain)
        project, res, hls_model = run_chain(model, case.chain.hls(), x, Path(tmp))
        check_chain(project, res, hls_model, x)
        result = Emulator(hls_model).run(x)
        _check_paths(case, result.path)
        _events(case, result)
    COUNTS["chain"] += 1


# ------------------------------------------------------------------- 2. emulator fast == sequential
@_seeded
@_settings(EMULATOR_EXAMPLES)
@given(case=cases(max_samples=32))
def test_fuzz_emulator_paths(case: Case):
    note(f"seed: {SEED}" if FUZZING else "derandomized")
    x = case.inputs()
    with tempfile.TemporaryDirectory(prefix="skiplstm_fuzz_ir_") as tmp, pytest.MonkeyPatch.context() as mp:
        if case.accums:
            with_config(mp, case.mutate)
        hls_model = hls_project.convert(build_model(case.chain), case.chain.hls(), Path(tmp) / "ir")
    runs = {}
    for sequential in (False, True):
        emulator = Emulator(hls_model, force_sequential=sequential)
        for mode in MODES:
            runs[sequential, mode] = emulator.run(x, keep_states=True, mode=mode)
    ref = runs[False, "sparse"]
    _check_paths(case, ref.path)
    _events(case, ref)
    for (sequential, mode), r in runs.items():
        label = f"{'sequential' if sequential else 'default'}/{mode}"
        assert r.path == (ref.path if not sequential else dict.fromkeys(ref.path, "sequential")), label
        np.testing.assert_array_equal(r.values(), ref.values(), err_msg=label)
        assert len(r.traces) == len(ref.traces) == len(case.chain.units)
        for t, t_ref in zip(r.traces, ref.traces, strict=True):
            np.testing.assert_array_equal(t.states, t_ref.states, err_msg=f"{label} {t.layer} states")
            np.testing.assert_array_equal(t.nnz_x, t_ref.nnz_x, err_msg=f"{label} {t.layer} nnz_x")
            np.testing.assert_array_equal(t.nnz_h, t_ref.nnz_h, err_msg=f"{label} {t.layer} nnz_h")
    # adding a zero column never overflows: both modes of a path count the same overflows
    assert runs[True, "sparse"].overflow == runs[True, "dense"].overflow
    assert runs[False, "sparse"].overflow == runs[False, "dense"].overflow
    COUNTS["emulator"] += 1

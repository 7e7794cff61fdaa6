"""The HLS chain end to end: Keras model -> generated hls4ml project -> g++ C-simulation, against the
bit-accurate emulator and the cycle model, on random configurations.

For each configuration (deterministic seeds; odd sizes; 1-3 stacked SparseStateLSTM layers; optional
Dense(relu) hidden + Dense head; four input/weight precisions; lanes dividing H (1..H); three LUT sizes; both
pruning rules; thresholds 0..0.6; inputs with many exact zeros, values that quantise to zero or to
-1 LSB, and values that saturate):

* emulator outputs == csim outputs, bit for bit, on the fast and the forced-sequential paths, in
  sparse and dense mode; csim sparse == csim dense;
* per LSTM layer and step: csim's counted cycles == `pipeline.accelerator` formula == the emulator's
  cost arrays, in both modes, per step and start to done; nnz_x / nnz_h equal;
* no compiler warning in the generated or SkipLSTM-owned code.

Further: a saturating, rounding accumulator (the emulator must take its sequential path and still
match), byte-identical regeneration, refusal of unsupported layers, and csim against the float Keras
model on real digits at 32-bit precision.

Each configuration compiles one project (~4-8 s); the configurations marked ``slow`` are the larger
random ones (``-m "not slow"`` keeps three small ones).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import numpy as np
import pytest
from _chain import (
    N_SAMPLES,
    PRECISIONS,
    PRUNES,
    TABLE_SIZES,
    Chain,
    build_model,
    check_chain,
    draw,
    make_inputs,
    own_warnings,
    run_chain,
    with_config,
)

from pipeline import csim
from pipeline.emulator import Emulator
from pipeline.hls import project as hls_project
from pipeline.layers import SparseStateLSTM
from pipeline.precision import to_fixed
from pipeline.recipes import DEFAULTS

# Configurations, model/input builders and the checks live in tests/_chain.py (shared with
# tests/test_fuzz.py, which draws the configurations with hypothesis).

CONFIGS = [
    # unmarked: the smallest corner, a single wide-lane output-gate layer, and a stack returning sequences
    draw("c00_tiny", 11, slow=False, units=(1,), n_in=1, steps=1, lanes=1, precision=PRECISIONS[0],
         table_size=256, prune=("state",), thresholds=(0.0,), return_sequences=False, hidden=0, head=3,
         prune_last=(True,)),
    draw("c01_gate_sat", 12, slow=False, units=(13,), n_in=7, steps=5, lanes=13, precision=PRECISIONS[3],
         table_size=1024, prune=("output_gate",), thresholds=(0.45,), return_sequences=False, hidden=5, head=4,
         prune_last=(False,)),
    draw("c02_stack_seq", 13, slow=False, units=(9, 6), n_in=4, steps=6, lanes=3, precision=PRECISIONS[1],
         table_size=4096, prune=("state", "output_gate"), thresholds=(0.3, 0.6), return_sequences=True,
         prune_last=(False, True)),
    # slow: larger and fully random ones
    draw("c03_three", 14, units=(40, 17, 3), n_in=20, steps=9, precision=PRECISIONS[2], return_sequences=False),
    draw("c04_wide_p1", 15, units=(40,), n_in=20, steps=9, lanes=1, precision=PRECISIONS[3],
         prune=("state",), thresholds=(0.6,), return_sequences=False, head=5, hidden=9, prune_last=(False,)),
    draw("c05_three_seq", 16, units=(5, 23, 11), steps=3, return_sequences=True, table_size=256),
    draw("c06_rand", 17),
    draw("c07_rand", 18),
    draw("c08_rand", 19),
    draw("c09_rand", 20),
    draw("c10_rand", 21),
]

# ----------------------------------------------------------------------------- 1. random configurations
@pytest.fixture(scope="module")
def built_projects() -> dict[str, Path]:
    """Projects built by this module (reused by the warnings test)."""
    return {}


@pytest.mark.parametrize(
    "cfg", [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.slow else []) for c in CONFIGS]
)
def test_chain_bit_exact_and_cycles(cfg: Chain, tmp_path, built_projects):
    model = build_model(cfg)
    x = make_inputs(np.random.RandomState(cfg.seed + 20_000), N_SAMPLES, cfg.steps, cfg.n_in)
    project, res, hls_model = run_chain(model, cfg.hls(), x, tmp_path)
    built_projects[cfg.name] = project
    check_chain(project, res, hls_model, x)


def test_configurations_cover_the_corners():
    """The configuration list itself spans what the brief asks for (guards edits to CONFIGS)."""
    assert len(CONFIGS) >= 10 and sum(not c.slow for c in CONFIGS) >= 3
    assert len({c.name for c in CONFIGS}) == len(CONFIGS)
    assert {c.precision for c in CONFIGS} == set(PRECISIONS)
    assert {c.table_size for c in CONFIGS} == set(TABLE_SIZES)
    assert {p for c in CONFIGS for p in c.prune} == set(PRUNES)
    assert {len(c.units) for c in CONFIGS} == {1, 2, 3}
    assert {c.return_sequences for c in CONFIGS} == {True, False}
    assert {p for c in CONFIGS for p in c.prune_last} == {True, False}
    assert all(len(c.prune_last) == len(c.units) for c in CONFIGS)
    assert any(c.hidden for c in CONFIGS) and any(c.head and not c.hidden for c in CONFIGS)
    assert any(not c.head for c in CONFIGS)
    assert any(c.lanes == 1 for c in CONFIGS) and any(c.lanes == min(c.units) for c in CONFIGS)
    for c in CONFIGS:
        assert all(1 <= u <= 40 for u in c.units) and 1 <= c.n_in <= 20 and 1 <= c.steps <= 9
        assert all(h % c.lanes == 0 for h in c.units)
        assert all(0.0 <= t <= 0.6 for t in c.thresholds)
    assert min(t for c in CONFIGS for t in c.thresholds) == 0.0
    assert max(t for c in CONFIGS for t in c.thresholds) == 0.6


def test_threshold_ties_are_pruned(tmp_path):
    """A gate or state exactly equal to tau is pruned (strict '>'), in csim and emulator alike.

    Layer 0 (output_gate): on the all-zero sample, step 0 sees x = 0 and h = 0, so o[u] is the sigmoid
    LUT entry of its bias; tau0 is set to exactly that entry. Layer 1 (state): tau1 is set to exactly
    |h| of one unit at that step (read from the emulator with tau1 = 0; tau1 does not change it).
    """
    c = draw("ties", 41, slow=False, units=(6, 5), n_in=3, steps=4, lanes=1, precision=PRECISIONS[0],
             table_size=1024, prune=("output_gate", "state"), thresholds=(0.0, 0.0), return_sequences=True)
    model = build_model(c)
    x = make_inputs(np.random.RandomState(c.seed + 20_000), N_SAMPLES, c.steps, c.n_in)
    lstm0, lstm1 = model.get_layer("lstm0"), model.get_layer("lstm1")
    kernel, recurrent, bias = lstm0.lstm_weights()
    bias[3 * 6 :] = [-0.25, 0.5, -0.25, 1.0, 0.0, -1.5]  # exact in every precision; o = sigmoid LUT[b]
    lstm0.set_weights([kernel, recurrent, bias])
    node0 = next(n for n in hls_project.convert(model, c.hls(), tmp_path / "ir0").get_layers() if n.name == "lstm0")
    table = np.asarray(node0.get_weights("sigmoid_table").data, np.float64).ravel()
    tau0 = float(table[int(np.floor(-0.25 * 1024 / 16)) + 512])  # LUT index of -0.25 on [-8, 8)
    assert 0.4 < tau0 < 0.6
    lstm0.cell.threshold.assign(tau0)
    hls_model = hls_project.convert(model, c.hls(), tmp_path / "ir1")
    node1 = next(n for n in hls_model.get_layers() if n.name == "lstm1")
    state_t = to_fixed(node1.get_output_variable().type.precision)
    first = Emulator(hls_model).run(x, keep_states=True)
    assert (first.traces[0].states[0, 0, [0, 2]] == 0).all()  # o == tau0: pruned
    assert (first.traces[0].states[0, 0, [1, 3]] != 0).all()
    h1 = np.abs(first.traces[1].states[0, 0])
    tie = int(np.argmin(np.where(h1 > 0, h1, np.inf)))
    tau1 = float(h1[tie]) * state_t.lsb
    assert 0.0 < tau1 <= 0.6
    lstm1.cell.threshold.assign(tau1)
    project, res, hls_model = run_chain(model, c.hls(), x, tmp_path)
    check_chain(project, res, hls_model, x)
    states = Emulator(hls_model).run(x, keep_states=True).traces[1].states
    assert states[0, 0, tie] == 0  # |h| == tau1: pruned
    np.testing.assert_array_equal(res.sparse.reshape(N_SAMPLES, c.steps, 5)[0, 0],
                                  states[0, 0] * state_t.lsb)


@pytest.mark.parametrize("prune,threshold", [("state", 0.3), ("output_gate", 0.55)])
def test_prune_last_false_changes_only_the_last_state(prune, threshold, tmp_path):
    """``prune_last=False``: csim and the emulator leave h_T unpruned and every earlier state (and so every
    cycle count) as the pruned layer has it; h_T keeps the pruned layer's nonzeros and adds the values the
    threshold would have cut (|h| <= tau, or o <= tau)."""
    base = dict(units=(12,), n_in=5, steps=7, lanes=6, precision=PRECISIONS[0], table_size=1024, prune=(prune,),
                thresholds=(threshold,), return_sequences=True, hidden=0, head=0)
    runs = {}
    for prune_last in (True, False):
        c = draw(f"last_{prune}_{prune_last}", 51, slow=False, prune_last=(prune_last,), **base)
        x = make_inputs(np.random.RandomState(c.seed + 20_000), N_SAMPLES, c.steps, c.n_in)
        project, res, hls_model = run_chain(build_model(c), c.hls(), x, tmp_path / str(prune_last))
        check_chain(project, res, hls_model, x)
        manifest = json.loads((project / "skiplstm_manifest.json").read_text())
        assert manifest["lstm_layers"][0]["prune_last"] is prune_last
        runs[prune_last] = (res, Emulator(hls_model).run(x, keep_states=True).traces[0])
    (res_p, trace_p), (res_u, trace_u) = runs[True], runs[False]
    seq_p, seq_u = res_p.sparse.reshape(N_SAMPLES, 7, 12), res_u.sparse.reshape(N_SAMPLES, 7, 12)
    np.testing.assert_array_equal(seq_u[:, :-1], seq_p[:, :-1])
    np.testing.assert_array_equal(trace_u.nnz_h, trace_p.nnz_h)
    for mode in ("sparse", "dense"):
        np.testing.assert_array_equal(res_u.steps[mode], res_p.steps[mode])
    kept = seq_p[:, -1] != 0
    np.testing.assert_array_equal(seq_u[:, -1][kept], seq_p[:, -1][kept])
    extra = (seq_u[:, -1] != 0) & ~kept
    assert extra.sum() >= 3  # the last step's threshold did cut values, which now go out
    if prune == "state":
        assert (np.abs(seq_u[:, -1][extra]) <= threshold).all()


# ------------------------------------------------------------------- 2. narrow, saturating accumulator
LSTM_ACCUM = "ap_fixed<18,6,AP_RND,AP_SAT>"
DENSE_ACCUM = "ap_fixed<14,6,AP_RND,AP_SAT>"

def test_saturating_accumulator_sequential_path(tmp_path, monkeypatch):
    cfg = draw("narrow_acc", 31, slow=False, units=(11,), n_in=6, steps=7, lanes=11, precision=PRECISIONS[0],
               table_size=1024, prune=("state",), thresholds=(0.2,), return_sequences=False, hidden=7, head=3,
               gain=6.0)  # large weights: |pre-activation| often beyond the accumulator's 32

    def narrow(hls_cfg):
        hls_cfg["LayerName"]["lstm0"]["Precision"]["accum"] = LSTM_ACCUM
        hls_cfg["LayerName"]["hid"]["Precision"]["accum"] = DENSE_ACCUM

    with_config(monkeypatch, narrow)
    model = build_model(cfg)
    x = make_inputs(np.random.RandomState(cfg.seed + 20_000), N_SAMPLES, cfg.steps, cfg.n_in)
    project, res, hls_model = run_chain(model, cfg.hls(), x, tmp_path)
    defines = (project / "firmware" / "defines.h").read_text()
    assert re.search(r"typedef ap_fixed<18,6,AP_RND,AP_SAT(,0)?> lstm0_accum_t;", defines), defines
    assert re.search(r"typedef ap_fixed<14,6,AP_RND,AP_SAT(,0)?> hid_accum_t;", defines), defines
    check_chain(project, res, hls_model, x)
    result = Emulator(hls_model).run(x)
    assert result.path["lstm0"] == "sequential"
    assert result.path["hid"] == "sequential"
    assert result.path["head"] == "fast"
    assert result.overflow.get("lstm0.accum", 0) > 0, result.overflow  # it really saturates


# --------------------------------------------------------------------------- 3. byte-identical output
STAMP_FILES = {"skiplstm_csim", ".skiplstm_csim.sha256", "skiplstm_build_warnings.txt"}
STAMPED = {"hls4ml_config.yml", "build_lib.sh"}


def _snapshot(project: Path, root: Path) -> dict[str, bytes]:
    """Every file's bytes, with the root path and hls4ml's build stamp masked; build outputs left out.

    hls4ml draws a random 8-hex-digit ``Stamp`` per write (hls4ml_config.yml, and LIB_STAMP in
    build_lib.sh: the shared-library name of its own ``compile``); it is masked in those two files.
    """
    config = (project / "hls4ml_config.yml").read_bytes()
    stamp = re.search(rb"^Stamp: '?([0-9a-z]{8})'?$", config, re.M).group(1)
    assert f"LIB_STAMP={stamp.decode()}" in (project / "build_lib.sh").read_text()
    out = {}
    for path in sorted(p for p in project.rglob("*") if p.is_file()):
        rel = path.relative_to(project).as_posix()
        if rel in STAMP_FILES:
            continue
        data = path.read_bytes().replace(str(root).encode(), b"<ROOT>")
        out[rel] = data.replace(stamp, b"<STAMP>") if rel in STAMPED else data
    return out


def test_generation_is_byte_identical(tmp_path):
    cfg = CONFIGS[1]
    root_a, root_b = tmp_path / "a", tmp_path / "b"
    first = hls_project.generate(build_model(cfg), cfg.hls(), root_a, name="same")
    snap_a = _snapshot(first, root_a)
    second = hls_project.generate(build_model(cfg), cfg.hls(), root_b, name="same")  # a fresh model object
    snap_b = _snapshot(second, root_b)
    again = hls_project.generate(build_model(cfg), cfg.hls(), root_a, name="same")  # over the first one
    assert again == first
    snap_again = _snapshot(again, root_a)
    assert len(snap_a) > 20 and "firmware/nnet_utils/nnet_sparse_lstm.h" in snap_a
    for snap in (snap_b, snap_again):
        assert sorted(snap) == sorted(snap_a)
        differing = [rel for rel in snap_a if snap[rel] != snap_a[rel]]
        assert differing == []
    assert not list(root_a.glob(".*.partial")) and not list(root_b.glob(".*.partial"))


# ----------------------------------------------------------------------------- 4. generated-code warnings
def test_generated_code_has_no_warnings(tmp_path, built_projects):
    projects = dict(built_projects)
    if not projects:  # run on its own: build the smallest configuration
        cfg = CONFIGS[0]
        projects[cfg.name] = hls_project.generate(build_model(cfg), cfg.hls(), tmp_path)
        csim.build(projects[cfg.name])
    for name, project in projects.items():
        assert (project / "skiplstm_build_warnings.txt").is_file(), name
        assert own_warnings(project) == [], name


def test_own_warnings_filter(tmp_path):
    """The filter above flags our files and lets hls4ml's headers and ap_types through."""
    (tmp_path / "skiplstm_manifest.json").write_text(json.dumps({"project": "m1"}))
    lines = [
        "/p/firmware/nnet_utils/nnet_dense_latency.h:37:25: warning: comparison of integer expressions",
        "/p/firmware/ap_types/ap_int_base.h:5:1: warning: x",
        "/p/firmware/nnet_utils/nnet_sparse_lstm.h:12:3: warning: unused variable",
        "/p/skiplstm_csim.cpp:1:1: warning: y",
        "/p/firmware/m1.cpp:9:9: warning: z",
        "/p/firmware/parameters.h:9:9: warning: z",
        "/p/firmware/defines.h:9:9: warning: z",
    ]
    (tmp_path / "skiplstm_build_warnings.txt").write_text("\n".join(lines) + "\n")
    assert own_warnings(tmp_path) == lines[2:]


# ------------------------------------------------------------------------------ 5. unsupported layers
def _unsupported_models():
    def lstm_model():
        inp = keras.Input((5, 3), name="x")
        y = keras.layers.LSTM(4, name="plain_lstm")(inp)
        return keras.Model(inp, keras.layers.Dense(2, name="head")(y), name="m_lstm"), "plain_lstm"

    def softmax_model():
        inp = keras.Input((5, 3), name="x")
        y = SparseStateLSTM(4, name="lstm0")(inp)
        return keras.Model(inp, keras.layers.Dense(3, activation="softmax", name="probs")(y), name="m_soft"), "probs"

    def conv_model():
        inp = keras.Input((5, 3), name="x")
        y = keras.layers.Conv1D(2, 2, name="conv")(inp)
        y = SparseStateLSTM(4, name="lstm0")(y)
        return keras.Model(inp, keras.layers.Dense(2, name="head")(y), name="m_conv"), "conv"

    return {"LSTM": lstm_model, "softmax": softmax_model, "Conv1D": conv_model}


@pytest.mark.parametrize("kind", list(_unsupported_models()))
def test_unsupported_layers_refused(kind, tmp_path):
    model, layer_name = _unsupported_models()[kind]()
    with pytest.raises(ValueError, match=re.escape(repr(layer_name))):
        hls_project.generate(model, dict(DEFAULTS["hls"], lanes=4), tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    with pytest.raises(ValueError, match=re.escape(repr(layer_name))):
        hls_project.convert(model, dict(DEFAULTS["hls"], lanes=4), tmp_path / "ir")


# ------------------------------------------------------------------ 6. csim against float Keras, MNIST
WIDE = "ap_fixed<32,10>"
# An exact LSTM accumulator for ap_fixed<32,10> x ap_fixed<32,10> needs 70 bits (> 64): `convert`
# refuses and asks for an explicit 'accum' type, as a user would set it.
WIDE_ACCUM = "ap_fixed<48,16,AP_RND,AP_SAT>"


def test_csim_matches_float_keras_on_mnist(tmp_path, monkeypatch):
    from pipeline.data import load_mnist_rows

    x = load_mnist_rows().test.x[:64].astype(np.float64)
    assert x.shape == (64, 28, 28)
    hls = dict(DEFAULTS["hls"], precision=WIDE, lanes=16)
    keras.utils.set_random_seed(5)
    rng = np.random.RandomState(5)
    inp = keras.Input((28, 28), name="x")
    lstm = SparseStateLSTM(16, threshold=0.0, name="lstm0")
    head = keras.layers.Dense(10, name="head")
    model = keras.Model(inp, head(lstm(inp)), name="mnist_wide")
    lstm.set_weights([rng.randn(28, 64) * 0.4, rng.randn(16, 64) * 0.4, rng.randn(64) * 0.3])
    head.set_weights([rng.randn(16, 10) * 0.5, rng.randn(10) * 0.2])

    with pytest.raises(ValueError, match="exact accumulator needs 70 bits"):
        hls_project.convert(model, hls, tmp_path / "refused")
    with_config(monkeypatch, lambda c: c["LayerName"]["lstm0"]["Precision"].update(accum=WIDE_ACCUM))
    project, res, hls_model = run_chain(model, hls, x, tmp_path)
    want = model.predict(x.astype(np.float32), verbose=0).astype(np.float64)
    err = float(np.abs(res.sparse - want).max())
    print(f"\nMNIST rows, units 16, {WIDE} (accum {WIDE_ACCUM}): max |csim - keras| = {err:.6f}")
    assert err <= 0.05
    np.testing.assert_array_equal(res.sparse, res.dense)
    np.testing.assert_array_equal(Emulator(hls_model).run(x).values(), res.sparse)
    assert own_warnings(project) == []


@pytest.mark.parametrize("prune,threshold", [("state", 0.3), ("output_gate", 0.5)])
def test_prune_last_false_emulator_matches_float_keras(prune, threshold, tmp_path):
    """The emulator (== csim, tests above) computes what the Keras layer computes with
    ``prune_last=False``, at wide types and a 65536-entry LUT: within 2e-3 of the float model, and the
    unpruned h_T really differs from the pruned one. The inputs are the first of a seeded series whose
    float pre-mask values all lie 5e-3 or more from tau (no mask flips from rounding)."""
    from test_layers import numpy_lstm  # tests/ is on sys.path

    steps, n_in, units = 6, 4, 6
    for draw_seed in range(200):
        rng = np.random.RandomState(draw_seed)
        x = rng.randn(8, steps, n_in) * 1.2
        weights = [rng.randn(n_in, 4 * units) * 0.6, rng.randn(units, 4 * units) * 0.5, rng.randn(4 * units) * 0.4]
        _, compared, _ = numpy_lstm(x, *weights, threshold=threshold, prune=prune)
        if np.min(np.abs(compared - threshold)) > 5e-3:
            break
    else:
        pytest.fail("no seed in 0..199 keeps the float values 5e-3 away from tau")
    hls = dict(DEFAULTS["hls"], precision=WIDE, lanes=6, table_size=65536,
               state_precision="ap_fixed<28,4,AP_RND,AP_SAT>", cell_precision="ap_fixed<32,10,AP_RND,AP_SAT>",
               table_precision="ap_fixed<26,2,AP_RND,AP_SAT>", accum_precision=WIDE_ACCUM)
    got = {}
    for prune_last in (True, False):
        inp = keras.Input((steps, n_in), name="x")
        lstm = SparseStateLSTM(units, threshold=threshold, prune=prune, prune_last=prune_last, name="lstm0")
        model = keras.Model(inp, lstm(inp), name=f"last_{prune_last}")
        lstm.set_weights(weights)
        want = model.predict(x.astype(np.float32), verbose=0).astype(np.float64)
        got[prune_last] = Emulator(hls_project.convert(model, hls, tmp_path / str(prune_last))).run(x).values()
        assert np.abs(got[prune_last] - want).max() <= 2e-3, prune_last
    assert np.abs(got[False] - got[True]).max() > 0.05

"""Shared builders and checks of the HLS-chain suites (tests/test_hls_chain.py, tests/test_fuzz.py).

A `Chain` describes one random model configuration; `build_model` makes the Keras model (weights from
its seed, scaled by its gain, clipped inside its precision), `make_inputs` the test vectors (many exact
zeros, values that quantise to zero or -1 LSB, values that saturate). `run_chain` generates, builds
and runs the C-simulation; `check_chain` holds csim and the emulator equal, bit for bit and cycle for
cycle. `with_config` edits the hls4ml config `generate` / `convert` build (e.g. a narrow accumulator).

Not a test module (leading underscore): the test modules import it as ``_chain`` (pytest puts tests/
on ``sys.path``, as for ``_cpp_probe``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from pipeline import accelerator, csim
from pipeline.emulator import Emulator
from pipeline.hls import project as hls_project
from pipeline.layers import SparseStateLSTM
from pipeline.precision import to_fixed
from pipeline.recipes import DEFAULTS

PRECISIONS = ("ap_fixed<16,6>", "ap_fixed<12,5>", "ap_fixed<20,8>", "ap_fixed<10,4,AP_RND,AP_SAT>")
TABLE_SIZES = (256, 1024, 4096)
PRUNES = ("state", "output_gate")
MODES = ("sparse", "dense")
N_SAMPLES = 16
LSTM_CLASS = "SparseStateLSTMLayer"


# ------------------------------------------------------------------------------------ configurations
@dataclass(frozen=True)
class Chain:
    name: str
    seed: int
    n_in: int
    steps: int
    units: tuple[int, ...]
    prune: tuple[str, ...]
    thresholds: tuple[float, ...]
    return_sequences: bool  # of the last LSTM (the others always return sequences)
    hidden: int  # Dense(relu) width, 0 = none
    head: int  # Dense(linear) width, 0 = none
    precision: str
    lanes: int
    table_size: int
    gain: float  # weight scale (pre-activations of order 1: gates neither flat nor all saturated)
    slow: bool = True
    prune_last: tuple[bool, ...] = ()  # per LSTM: prune h_T too (empty: all True, the default)

    def hls(self) -> dict:
        hls = dict(DEFAULTS["hls"])
        hls.update(precision=self.precision, lanes=self.lanes, table_size=self.table_size)
        return hls


def draw(name: str, seed: int, slow: bool = True, **pins) -> Chain:
    """A random configuration from ``seed``; ``pins`` fix chosen fields (coverage of the corners)."""
    rng = np.random.RandomState(seed)
    n_layers = int(rng.choice([1, 1, 2, 3]))
    lanes = int(rng.choice([1, 2, 3, 4, 6, 8]))  # P must divide every H (pipeline.accelerator.check_lanes)
    units = pins.pop("units", tuple(lanes * int(u) for u in rng.randint(1, 40 // lanes + 1, size=n_layers)))
    divisors = common_divisors(units)
    if lanes not in divisors:  # units were pinned
        lanes = int(rng.choice(divisors))
    n = len(units)
    prune = pins.pop("prune", tuple(str(p) for p in rng.choice(PRUNES, size=n)))
    thresholds = pins.pop("thresholds", tuple(round(float(v), 3) for v in rng.uniform(0.0, 0.6, size=n)))
    head = int(rng.choice([0, rng.randint(1, 12)]))
    fields = dict(
        n_in=int(rng.randint(1, 21)), steps=int(rng.randint(1, 10)),
        return_sequences=bool(rng.rand() < 0.3), head=head,
        hidden=int(rng.choice([0, rng.randint(1, 16)])) if head else 0,
        precision=PRECISIONS[rng.randint(len(PRECISIONS))],
        lanes=lanes,
        table_size=TABLE_SIZES[rng.randint(len(TABLE_SIZES))],
        gain=round(float(rng.uniform(0.8, 2.0)), 3),
    )
    prune_last = pins.pop("prune_last", tuple(bool(v) for v in rng.rand(n) < 0.6))
    fields.update(pins)
    fields["prune_last"] = tuple(prune_last)
    if fields["return_sequences"]:  # Dense on a (T, H) sequence is not a supported chain
        fields.update(hidden=0, head=0)
    if not fields["head"]:
        fields["hidden"] = 0
    return Chain(name=name, seed=seed, units=tuple(units), prune=tuple(prune), thresholds=tuple(thresholds),
                 slow=slow, **fields)



def common_divisors(units) -> list[int]:
    """The lane counts every layer of ``units`` accepts (P | H for each H)."""
    return [p for p in range(1, min(units) + 1) if all(h % p == 0 for h in units)]


def _clip_to(values: np.ndarray, precision: str) -> np.ndarray:
    t = to_fixed(precision)
    return np.clip(values, 0.9 * t.min_value, 0.9 * t.max_value)


def build_model(c: Chain) -> keras.Model:
    keras.utils.set_random_seed(c.seed)
    rng = np.random.RandomState(c.seed + 10_000)
    inp = keras.Input((c.steps, c.n_in), name="x")
    y, n_prev = inp, c.n_in
    for k, (h, prune, thr) in enumerate(zip(c.units, c.prune, c.thresholds, strict=True)):
        last = k == len(c.units) - 1
        layer = SparseStateLSTM(h, threshold=thr, prune=prune, return_sequences=c.return_sequences or not last,
                                prune_last=c.prune_last[k] if c.prune_last else True, name=f"lstm{k}")
        y = layer(y)
        kernel = rng.randn(n_prev, 4 * h) * c.gain / np.sqrt(max(1.0, 0.5 * n_prev))
        recurrent = rng.randn(h, 4 * h) * c.gain / np.sqrt(h)
        bias = rng.randn(4 * h) * 0.5
        bias[h : 2 * h] += 1.0  # forget bias
        layer.set_weights([_clip_to(w, c.precision).astype(np.float32) for w in (kernel, recurrent, bias)])
        n_prev = h
    for width, act, name in ((c.hidden, "relu", "hid"), (c.head, "linear", "head")):
        if width:
            layer = keras.layers.Dense(width, activation=act, name=name)
            y = layer(y)
            w = rng.randn(n_prev, width) * 1.5 / np.sqrt(n_prev)
            b = rng.randn(width) * 0.3
            layer.set_weights([_clip_to(w, c.precision).astype(np.float32), _clip_to(b, c.precision).astype(np.float32)])
            n_prev = width
    return keras.Model(inp, y, name=c.name)


def make_inputs(rng: np.random.RandomState, n: int, steps: int, n_in: int, zero_frac: float = 0.5) -> np.ndarray:
    """Half the entries (``zero_frac``) exact zeros, plus zero steps, zero features, +-1e-5 (which cast
    to 0 or, under AP_TRN, to -1 LSB), +-10 (saturates ap_fixed<10,4,AP_RND,AP_SAT>), and one all-zero
    sequence (sample 0)."""
    x = rng.randn(n, steps, n_in) * 1.5
    x[rng.rand(n, steps, n_in) < zero_frac] = 0.0
    x[rng.rand(n, steps) < 0.2] = 0.0
    x[np.broadcast_to(rng.rand(n, 1, n_in) < 0.2, x.shape)] = 0.0
    tiny = rng.rand(n, steps, n_in) < 0.05
    x[tiny] = rng.choice([1e-5, -1e-5], size=int(tiny.sum()))
    big = rng.rand(n, steps, n_in) < 0.02
    x[big] = rng.choice([10.0, -10.0], size=int(big.sum()))
    x[0] = 0.0
    return x


# ------------------------------------------------------------------------------------------ checking
OWN_FILES = ("nnet_sparse_lstm.h", "skiplstm_csim.cpp", "parameters.h", "defines.h")


def own_warnings(project: Path) -> list[str]:
    """Warning lines of the last build that point at generated or SkipLSTM-owned code (hls4ml's own
    nnet_utils headers and ap_types may warn under -Wall; that is documented and allowed)."""
    name = json.loads((project / "skiplstm_manifest.json").read_text())["project"]
    files = (*OWN_FILES, f"{name}.cpp", f"{name}.h")
    pattern = re.compile(r"(?<![\w.])(" + "|".join(re.escape(f) for f in files) + r")(?![\w.])")
    text = (project / "skiplstm_build_warnings.txt").read_text()
    return [line for line in text.splitlines() if pattern.search(line)]


def run_chain(model, hls: dict, x: np.ndarray, root: Path):
    """Generate, build and run the csim; convert again (the hls4ml graph, which `check_chain` also
    emulates beside the IR `generate` saved in the project)."""
    project = hls_project.generate(model, hls, root / "projects")
    res = csim.run(project, x)
    hls_model = hls_project.convert(model, hls, root / "ir")
    return project, res, hls_model


def check_chain(project: Path, res: csim.CsimResult, hls_model, x: np.ndarray) -> dict:
    """Every bit-exactness and cycle check; returns a few numbers for the report."""
    n = x.shape[0]
    assert res.sparse.shape == res.dense.shape and res.sparse.shape[0] == n
    np.testing.assert_array_equal(res.sparse, res.dense, err_msg="csim sparse != csim dense")
    runs = {}
    for seq in (False, True):
        emulator = Emulator(hls_model, force_sequential=seq)
        for mode in MODES:
            label = f"{'sequential' if seq else 'default'}/{mode}"
            r = emulator.run(x, keep_states=True, mode=mode)
            assert r.values().shape == res.sparse.shape, label
            np.testing.assert_array_equal(r.values(), res.sparse, err_msg=f"emulator {label} != csim")
            runs[label] = r
    assert set(runs["sequential/sparse"].path.values()) == {"sequential"}
    ref = runs["default/sparse"]
    saved = Emulator.from_project(project).run(x, keep_states=True)  # the IR generate saved (issue 22)
    np.testing.assert_array_equal(saved.values(), res.sparse, err_msg="emulator of the saved IR != csim")
    for a, b in zip(saved.traces, ref.traces, strict=True):
        for what in ("nnz_x", "nnz_h", "states"):
            np.testing.assert_array_equal(getattr(a, what), getattr(b, what), err_msg=f"saved IR {a.layer} {what}")
    assert saved.overflow == ref.overflow and saved.path == ref.path
    nodes = [node for node in hls_model.get_layers() if node.class_name == LSTM_CLASS]
    assert [t.layer for t in ref.traces] == [node.name for node in nodes]
    layer_ids = {int(row) for row in res.steps["sparse"][:, 1]}
    assert layer_ids == {node.index for node in nodes}
    report = {"skipped_cycles": 0, "dense_cycles": 0}
    for k, node in enumerate(nodes):
        trace = ref.traces[k]
        steps, h_units, n_in = node.get_attr("n_timesteps"), node.get_attr("n_out"), node.get_attr("n_in")
        assert trace.shape == accelerator.LayerShape(n_in, h_units, node.get_attr("lanes"))
        for label, r in runs.items():  # every path/mode sees the same states
            np.testing.assert_array_equal(r.traces[k].nnz_x, trace.nnz_x, err_msg=label)
            np.testing.assert_array_equal(r.traces[k].nnz_h, trace.nnz_h, err_msg=label)
            np.testing.assert_array_equal(r.traces[k].states, trace.states, err_msg=label)
        assert trace.engine_chunks == int(node.get_attr("weight_chunks", 0) or 0)
        engine = dataclasses.replace(trace.shape, weight_chunks=trace.engine_chunks)  # the project's engine
        costs = trace.engine_costs()
        cycles = {}
        for mode in MODES:
            rows = res.layer_steps(mode, node.index)
            assert rows.shape == (n * steps, 8), (node.name, mode)
            sample, _, step, nnz_x, nnz_h, cols_x, cols_h, cyc = rows.T
            np.testing.assert_array_equal(sample, np.repeat(np.arange(n), steps))
            np.testing.assert_array_equal(step, np.tile(np.arange(steps), n))
            np.testing.assert_array_equal(nnz_x, trace.nnz_x.ravel(), err_msg=f"{node.name} {mode} nnz_x")
            np.testing.assert_array_equal(nnz_h, trace.nnz_h.ravel(), err_msg=f"{node.name} {mode} nnz_h")
            if mode == "sparse":
                np.testing.assert_array_equal(cols_x, nnz_x)
                np.testing.assert_array_equal(cols_h, nnz_h)
            else:
                assert (cols_x == n_in).all() and (cols_h == h_units).all()
            np.testing.assert_array_equal(cyc, accelerator.step_cycles(engine, cols_x, cols_h, mode == "sparse"),
                                          err_msg=f"{node.name} {mode}: csim cycles != accelerator formula")
            np.testing.assert_array_equal(cyc, costs[f"{mode}_cycles"].ravel(),
                                          err_msg=f"{node.name} {mode}: csim cycles != emulator costs")
            seq = res.layer_sequences(mode, node.index)
            assert seq.shape == (n, 4), (node.name, mode)
            init = trace.shape.init_cycles(mode == "sparse")
            assert (seq[:, 2] == init).all(), f"{node.name} {mode}: csim init cycles != model"
            np.testing.assert_array_equal(seq[:, 3], init + cyc.reshape(n, steps).sum(axis=1),
                                          err_msg=f"{node.name} {mode}: csim start-to-done cycles != init + steps")
            np.testing.assert_array_equal(seq[:, 3], costs[f"{mode}_sequence_cycles"])
            cycles[mode] = cyc
        assert (trace.nnz_h[:, 0] == 0).all()  # h_0 = 0
        if trace.shape.gate_iters(True) == trace.shape.gate_iters(False):  # the x scan hides in the gate loop
            first_steps = step == 0  # h_0 = 0 and H >= 1: every sample skips there
            assert (cycles["sparse"][first_steps] < cycles["dense"][first_steps]).all()
            if k == 0:  # sample 0 is all zeros: the first layer skips every input column
                assert (cycles["sparse"][:steps] < cycles["dense"][:steps]).all()
        report["skipped_cycles"] += int((cycles["dense"] - cycles["sparse"]).sum())
        report["dense_cycles"] += int(cycles["dense"].sum())
    assert own_warnings(project) == []
    return report



def with_config(monkeypatch, mutate) -> None:
    """Make `generate` / `convert` build their hls4ml config through ``mutate(cfg)`` (what a user does
    when editing the config that `make_config` returns)."""
    original = hls_project.make_config

    def patched(model, hls):
        cfg = original(model, hls)
        mutate(cfg)
        return cfg

    monkeypatch.setattr(hls_project, "make_config", patched)

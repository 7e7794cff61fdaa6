"""The weight-sparse engine (issue 31, item 2): the RTL twin built with KE (value, row) pairs per column
and lane instead of C dense words, against the emulator (bit for bit) and the cycle model (every step,
INIT, start-to-done) in both modes, beside the dense-weight engines of the same layer; its ROM layout,
memory figures and refusals; and the forwarding that keeps one pair a cycle exact (a build without it
is caught).

Models: `tests/_chain.py` random layers whose kernels are pruned column-balanced
(`pipeline.weight_pruning.column_balanced_mask`, the lanes of the accelerator), so every lane's share
of every column holds K nonzero weights. Each configuration builds four Verilator models.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from _chain import build_model, draw, make_inputs

from pipeline import accelerator
from pipeline.fixed import FixedType
from pipeline.hls.project import convert
from pipeline.layers import SparseStateLSTM
from pipeline.rtl import sim
from pipeline.rtl.generate import generate_layer, index_bits, sparse_weight_words
from pipeline.weight_pruning import column_balanced_mask

needs_verilator = pytest.mark.usefixtures("verilator_installed")


def _prune(model, lanes: int, sparsity: float):
    """Column-balanced pruning of every SparseStateLSTM kernel of ``model`` (in place) at ``lanes``."""
    for layer in model.layers:
        if isinstance(layer, SparseStateLSTM):
            w = layer.get_weights()
            w[0] = w[0] * column_balanced_mask(w[0], lanes, sparsity)
            w[1] = w[1] * column_balanced_mask(w[1], lanes, sparsity)
            layer.set_weights(w)
    return model


def _run(c, sparsity: float, tmp_path, n: int = 8, hls_changes: dict | None = None, x=None):
    model = _prune(build_model(c), c.lanes, sparsity)
    hls = dict(c.hls(), **(hls_changes or {}))
    if x is None:
        x = make_inputs(np.random.RandomState(c.seed + 30_000), n, c.steps, c.n_in)
    report = sim.run_model(convert(model, hls, tmp_path / "ir"), x, tmp_path / "rtl", dense_only=True,
                           weight_sparse=True)
    for layer in report["layers"]:
        assert set(layer["check"]) == {"sparse", "dense", "dense_only", "weight_sparse", "weight_dense"}
        assert set(layer["check"].values()) == {"equal"}
        assert layer["lint"] == {"sparse-capable": "clean", "dense-only": "clean", "weight-sparse": "clean"}
        for label, mode in layer["modes"].items():
            assert mode["total_cycles"] == mode["model_total_cycles"], label
    return report


def _cycles(layer: dict, label: str) -> int:
    return layer["modes"][label]["total_cycles"]


@needs_verilator
def test_stacked_layers_at_90_percent_weight_sparsity(tmp_path):
    """Two stacked layers (odd n_in = 5, H = 8 then 4, P = 2: C = 16 and 8), state then output-gate
    pruning, return_sequences, weights 90% column-balanced (K = 2 and 1, padded to KE = PICK_DEPTH = 4):
    every engine equals the emulator and the model; the weight-sparse engine streams a column in KE
    cycles, and its lanes forward (an accumulator word read again 1 cycle after a read)."""
    c = draw("ws_stack", 61, slow=False, units=(8, 4), n_in=5, steps=5, lanes=2, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state", "output_gate"), thresholds=(0.1, 0.5), return_sequences=True,
             prune_last=(True, False))
    report = _run(c, 0.9, tmp_path)
    first, second = report["layers"]
    assert first["weight_sparse"]["weight_chunks"] == accelerator.PICK_DEPTH == second["weight_sparse"]["weight_chunks"]
    for layer in (first, second):
        ke = layer["weight_sparse"]["weight_chunks"]
        c_words = 4 * layer["units"] // layer["lanes"]
        # the sparse-state engine's stream cycles shrink by C / KE on the weight-sparse one (same columns)
        assert _cycles(layer, "weight_sparse") < _cycles(layer, "sparse") < _cycles(layer, "dense")
        assert _cycles(layer, "weight_dense") < _cycles(layer, "dense_only")
        steps = np.asarray(layer["modes"]["sparse"]["cycles_per_step"])
        ws_steps = np.asarray(layer["modes"]["weight_sparse"]["cycles_per_step"])
        overhead = steps - ws_steps  # (C - KE) * cols_t for a step that streams
        assert ((overhead % (c_words - ke)) == 0).all()
        assert layer["modes"]["weight_sparse"]["min_accumulator_reuse"] < accelerator.ACC_LATENCY
        bits = layer["weight_sparse"]["weight_memory_bits"]
        assert bits["sparse"] < bits["dense"]


@needs_verilator
def test_single_step_full_chunks_and_a_saturating_accumulator(tmp_path):
    """T = 1 and P = H = 8 (C = 4 = KE: the pairs hold every row, K = 4H/P) at 50% weight sparsity;
    then a saturating, rounding accumulator (every `acc += w * v` rounds and saturates, so the order of
    the adds into a word matters) with odd H = 6, P = 3 at 75%: the pairs add in the C++'s column order."""
    c = draw("ws_t1", 62, slow=False, units=(8,), n_in=7, steps=1, lanes=8, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.05,), return_sequences=False, hidden=0, head=0,
             prune_last=(False,))
    x = np.zeros((6, 1, 7))
    x[np.arange(1, 6), 0, np.arange(5)] = 1.5
    (layer,) = _run(c, 0.5, tmp_path / "t1", x=x)["layers"]
    assert layer["weight_sparse"]["weight_chunks"] == 4 == 4 * 8 // 8
    assert layer["modes"]["weight_sparse"]["cycles_per_step"] == layer["modes"]["sparse"]["cycles_per_step"]

    c = draw("ws_sat", 63, slow=False, units=(6,), n_in=5, steps=4, lanes=3, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.1,), return_sequences=True, gain=6.0,
             prune_last=(True,))
    (layer,) = _run(c, 0.75, tmp_path / "sat", hls_changes={"accum_precision": "ap_fixed<18,6,AP_RND,AP_SAT>"})["layers"]
    assert layer["weight_sparse"]["weight_chunks"] == accelerator.PICK_DEPTH  # K = ceil(0.25 * 8) = 2


@needs_verilator
def test_checker_catches_an_engine_without_forwarding(tmp_path):
    """The same layer with the lanes' forwarding removed (the add takes the word as read) differs from the
    emulator: the hazard is real at one pair a cycle, not a formality."""
    c = draw("ws_mut", 64, slow=False, units=(4,), n_in=3, steps=4, lanes=1, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.0,), return_sequences=True, prune_last=(True,))
    model = _prune(build_model(c), 1, 0.75)
    x = make_inputs(np.random.RandomState(7), 8, c.steps, c.n_in, zero_frac=0.0)
    (case,) = sim.emulate_layers(convert(model, c.hls(), tmp_path / "ir"), x)
    spec = case.spec.weight_sparse()
    assert spec.weight_chunks == 4  # C = 16, K = 4: every column full, rows ascending
    base = generate_layer(spec, tmp_path / "base")
    sims = sim.simulate(base, case.x_raw, modes=("sparse",))
    assert sim.check_layer(case, sims) == {"sparse": "equal"}
    assert sims["sparse"].acc_reuse < accelerator.ACC_LATENCY  # forwarded at least once

    layer = generate_layer(spec, tmp_path / "nofwd")
    lane = layer.directory / layer.files["lane"]
    text, n = re.subn(r"acc_base = fwd_write \? acc_new : fwd_prev \? wb_value : acc_old_q;", "acc_base = acc_old_q;",
                      lane.read_text())
    assert n == 1
    lane.write_text(text)
    with pytest.raises(sim.RtlMismatch, match=r"RTL != emulator at sample \d+, step \d+, unit \d+"):
        sim.check_layer(case, sim.simulate(layer, case.x_raw, modes=("sparse",)))


def _tiny(**changes):
    from test_rtl import _tiny_spec  # tests/ is on sys.path

    return _tiny_spec(**changes)


def test_rom_layout_memory_and_refusals():
    """Word j*KE + k of the weight-sparse ROM holds, per lane, the k-th nonzero of the lane's share of
    column j (rows ascending) as value | (gate << UW | unit word) << W, padded with zeros; the memory
    figures; K and KE; what the engine refuses."""
    h, p = 4, 2  # C = 8, U = 2 (UW = 1)
    rng = np.random.RandomState(0)
    kernel = rng.randint(-50, 50, (3, 4 * h))
    kernel[kernel % 3 != 0] = 0
    kernel[0, :] = 0  # an empty column: KE pairs of padding
    kernel[1, 2 * p + 1] = -7  # row 5: lane 1, chunk 2 = gate 1, word 0
    words = sparse_weight_words(kernel, p, 8, 16)
    assert words.shape == (3 * 8, p)
    u, uw = h // p, index_bits(h // p)
    for j in range(3):
        for lane in range(p):
            cs = [c for c in range(4 * h // p) if kernel[j, c * p + lane]]
            got = [int(v) for v in words[j * 8 : (j + 1) * 8, lane]]
            want = [((kernel[j, c * p + lane] & 0xFFFF) | ((c // u) << uw | (c % u)) << 16) for c in cs]
            assert got == want + [0] * (8 - len(cs)), (j, lane)
    assert int(words[8 + [c for c in range(8) if kernel[1, c * p + 1]].index(2), 1]) == (-7 & 0xFFFF) | (1 << uw | 0) << 16
    with pytest.raises(ValueError, match=r"column 1, lane \d holds \d nonzero weights, more than the 1 pairs"):
        sparse_weight_words(kernel, p, 1, 16)

    # K, KE and the model
    dense = np.ones((3, 4 * h))
    assert accelerator.weight_chunks_for([dense], p) == 8  # K = C
    sparse = np.zeros((3, 4 * h))
    sparse[:, :p] = 1  # K = 1 -> KE = PICK_DEPTH
    assert accelerator.weight_chunks_for([sparse, sparse[:2]], p) == accelerator.PICK_DEPTH
    shape = accelerator.LayerShape(3, h, p, weight_chunks=5)
    assert int(accelerator.step_cycles(shape, 2, 1, True)) == (accelerator.PICK_DEPTH + 3 * 5 + accelerator.MAC_DEPTH
                                                              + shape.gate_iters(True) + accelerator.GATE_DEPTH)
    assert int(accelerator.step_macs(shape, 2, 1)) == 3 * 5 * p
    bits = accelerator.weight_memory_bits(shape, (16, 12))
    assert bits == {"dense": 3 * 16 * 16 + 4 * 16 * 12, "sparse": 3 * 5 * 2 * (16 + 3) + 4 * 5 * 2 * (12 + 3),
                    "index_bits": 3}

    spec = _tiny(kernel=np.where(np.arange(48).reshape(3, 16) % 8 == 0, 5, 0))
    assert spec.needed_chunks() == accelerator.PICK_DEPTH and spec.weight_sparse().weight_chunks == accelerator.PICK_DEPTH
    spec.weight_sparse(8).check()
    with pytest.raises(ValueError, match=r"weight_chunks must be in \[4, C = 8\].*got weight_chunks = 9"):
        spec.weight_sparse(9).check()
    with pytest.raises(ValueError, match=r"weight_chunks must be in \[8, C = 8\].*got weight_chunks = 4"):
        _tiny(kernel=np.ones((3, 16), np.int64)).weight_sparse(4).check()
    with pytest.raises(ValueError, match="does not take a folded embedding"):
        _tiny(token_input=True, input_t=FixedType(4, 4, False)).weight_sparse(8).check()

    # the ECP5 fit counts the weight-sparse ROMs: KE words a column, P (value, row) pairs a word
    from types import SimpleNamespace

    from pipeline.rtl import pnr
    from pipeline.rtl.generate import rtl_params
    from pipeline.rtl.memories import RomShape

    for s_spec, depth, width in ((spec, 8, 2 * 16), (spec.weight_sparse(), 4, 2 * (16 + 3))):
        est = pnr.estimate(SimpleNamespace(params=rtl_params(s_spec), spec=s_spec))
        assert est["DP16KD_weights"] == RomShape(3 * depth, width).tiles + RomShape(4 * depth, width).tiles


# ------------------------------------------------------------------------------ the HLS kernel (PairLoop)
def test_csim_of_the_weight_sparse_kernel(tmp_path):
    """`hls.weight_sparse = true`: the generated kernel streams pairs (PairLoop, WeightChunks = KE); its
    C-simulation equals the emulator bit for bit in both modes, and its counted cycles equal the model of
    the weight-sparse engine per step and per sequence (tests/_chain.check_chain); the project passes
    the synthesis rules; a stacked pair of layers (odd n_in, output-gate pruning on the second)."""
    from _chain import check_chain, run_chain

    c = draw("ws_csim", 65, slow=False, units=(8, 4), n_in=5, steps=5, lanes=2, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state", "output_gate"), thresholds=(0.1, 0.5), return_sequences=True,
             prune_last=(True, False))
    model = _prune(build_model(c), 2, 0.75)
    x = make_inputs(np.random.RandomState(9), 8, c.steps, c.n_in)
    project, res, hls_model = run_chain(model, dict(c.hls(), weight_sparse=True), x, tmp_path)
    report = check_chain(project, res, hls_model, x)
    nodes = [n for n in hls_model.get_layers() if n.class_name == "SparseStateLSTMLayer"]
    assert [n.get_attr("weight_chunks") for n in nodes] == [accelerator.PICK_DEPTH, accelerator.PICK_DEPTH]
    config = (project / "firmware" / "parameters.h").read_text()
    assert config.count("static const unsigned weight_chunks = 4;") == 2
    # the counted dense cycles are the weight-sparse engine's: every column in KE = 4 cycles, not C
    shape = accelerator.LayerShape(5, 8, 2, weight_chunks=4)
    assert report["dense_cycles"] == 8 * 5 * (int(accelerator.step_cycles(shape, 5, 8, False))
                                              + int(accelerator.step_cycles(accelerator.LayerShape(8, 4, 2, weight_chunks=4),
                                                                            8, 4, False)))


def test_weight_chunks_refusals(tmp_path):
    """WeightChunks below what the weights need is refused, naming the layer and the range (the recipe's
    hls.weight_sparse with fold_embedding: tests/test_recipes.py)."""
    c = draw("ws_ref", 66, slow=False, units=(4,), n_in=3, steps=2, lanes=2, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.1,), return_sequences=True, prune_last=(True,))
    model = build_model(c)  # dense weights: K = C = 8

    def mutate(cfg):
        cfg["LayerName"]["lstm0"]["WeightChunks"] = 4

    from _chain import with_config

    with pytest.MonkeyPatch.context() as mp:
        with_config(mp, mutate)
        with pytest.raises(ValueError, match=r"layer 'lstm0': WeightChunks must be in \[8, C = 8\].*got 4"):
            convert(model, c.hls(), tmp_path / "ir")


# ------------------------------------------------------------------------------ slow: more configurations
SLOW_CONFIGS = [
    dict(name="ws_p1", seed=71, units=(5,), n_in=4, steps=6, lanes=1, precision="ap_fixed<12,5>", sparsity=0.8),
    dict(name="ws_stack3", seed=72, units=(12, 6, 3), n_in=11, steps=4, lanes=3, return_sequences=False, sparsity=0.6),
    dict(name="ws_wide32", seed=73, units=(32,), n_in=28, steps=5, lanes=8, table_size=4096, prune=("output_gate",),
         thresholds=(0.5,), sparsity=0.9),
    dict(name="ws_xs_gt_u", seed=74, units=(4,), n_in=19, steps=5, lanes=2, sparsity=0.75),  # XS = 10 > U = 2
]


@pytest.mark.slow
@needs_verilator
@pytest.mark.parametrize("pins", SLOW_CONFIGS, ids=[p["name"] for p in SLOW_CONFIGS])
def test_random_configurations(tmp_path, pins):
    pins = dict(pins)
    sparsity = pins.pop("sparsity")
    c = draw(pins.pop("name"), pins.pop("seed"), **pins)
    _run(c, sparsity, tmp_path)


@pytest.mark.slow
@needs_verilator
def test_ecp5_variant_and_stalled_streams(tmp_path):
    """The weight-sparse engine's ROMs as ECP5 DP16KD tiles (value and row bits in one word), simulated with
    the primitive models, with the streams stalling: == the emulator, cycles == the model."""
    c = draw("ws_ecp5", 75, slow=False, units=(8,), n_in=6, steps=4, lanes=2, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.1,), return_sequences=True, prune_last=(True,))
    model = _prune(build_model(c), 2, 0.75)
    x = make_inputs(np.random.RandomState(11), 6, c.steps, c.n_in)
    (case,) = sim.emulate_layers(convert(model, c.hls(), tmp_path / "ir"), x)
    layer = generate_layer(case.spec.weight_sparse(), tmp_path / "ws")
    assert "DP16KD #(" in (layer.directory / layer.files["roms_ecp5"]).read_text()
    sims = sim.simulate(layer, case.x_raw, ecp5=True, stall=40, seed=3)
    assert sim.check_layer(case, sims) == {"sparse": "equal", "dense": "equal"}
    assert sim.lint(layer, ecp5=True) == ""

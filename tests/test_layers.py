"""SparseStateLSTM: equivalence with keras.layers.LSTM, pruning against a numpy reference, gradients,
serialisation, argument checks, and the state-sparsity helpers of pipeline.sparsity."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipeline import sparsity
from pipeline.layers import SparseStateLSTM


# ------------------------------------------------------------------------------------------- helpers
def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_lstm(x, kernel, recurrent_kernel, bias, threshold=0.0, prune="state", prune_last=True):
    """Independent float64 reference of the pruned LSTM step (gate order i, f, c, o); with
    ``prune_last=False`` the last step's h_T = o_T * tanh(c_T) is not masked.

    Returns (h of shape (N, T, H), the pre-mask quantity compared with the threshold, unpruned o)."""
    x = np.asarray(x, np.float64)
    w, u = np.asarray(kernel, np.float64), np.asarray(recurrent_kernel, np.float64)
    b = np.zeros(w.shape[1]) if bias is None else np.asarray(bias, np.float64)
    n, steps, _ = x.shape
    units = u.shape[0]
    h = np.zeros((n, units))
    c = np.zeros((n, units))
    hs, compared, gates = [], [], []
    for t in range(steps):
        z = x[:, t] @ w + h @ u + b
        i = _sigmoid(z[:, :units])
        f = _sigmoid(z[:, units : 2 * units])
        g = np.tanh(z[:, 2 * units : 3 * units])
        o = _sigmoid(z[:, 3 * units :])
        gates.append(o)
        c = f * c + i * g
        full = o * np.tanh(c)
        if prune == "state":
            compared.append(np.abs(full))
            h = np.where(np.abs(full) > threshold, full, 0.0)
        else:
            compared.append(o)
            h = np.where(o > threshold, o, 0.0) * np.tanh(c)
        if not prune_last and t == steps - 1:
            h = full
        hs.append(h)
    return np.stack(hs, 1), np.stack(compared, 1), np.stack(gates, 1)


def random_weights(rng, n_in, units, use_bias=True, scale=0.5):
    weights = [
        rng.normal(0, scale, (n_in, 4 * units)).astype(np.float32),
        rng.normal(0, scale, (units, 4 * units)).astype(np.float32),
    ]
    if use_bias:
        weights.append(rng.normal(0, scale, (4 * units,)).astype(np.float32))
    return weights


def build_layer(layer, n_in, steps=3):
    layer.build((None, steps, n_in))
    return layer


# ------------------------------------------------------------------------ threshold 0 == keras LSTM
@pytest.mark.parametrize(
    "units,n_in,steps,return_sequences,use_bias",
    [
        (1, 3, 1, True, True),
        (1, 13, 11, False, True),
        (7, 13, 5, False, True),
        (7, 3, 11, True, False),
        (33, 3, 11, True, True),
        (33, 13, 5, False, False),
    ],
)
def test_threshold_zero_matches_keras_lstm(units, n_in, steps, return_sequences, use_bias):
    rng = np.random.default_rng(units * 100 + n_in * 10 + steps)
    x = rng.normal(0, 1, (4, steps, n_in)).astype(np.float32)
    ref = keras.layers.LSTM(units, return_sequences=return_sequences, use_bias=use_bias)
    ref.build((None, steps, n_in))
    weights = random_weights(rng, n_in, units, use_bias)
    ref.set_weights(weights)
    layer = build_layer(SparseStateLSTM(units, threshold=0.0, return_sequences=return_sequences,
                                        use_bias=use_bias), n_in, steps)
    layer.set_weights(ref.get_weights())
    expected = keras.ops.convert_to_numpy(ref(x))
    got = keras.ops.convert_to_numpy(layer(x))
    assert got.shape == expected.shape == ((4, steps, units) if return_sequences else (4, units))
    assert np.max(np.abs(got - expected)) <= 1e-5
    # The layer's own weights are the keras LSTM layout, so they go back the other way too.
    for mine, theirs in zip(layer.lstm_weights(), ref.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)


# ------------------------------------------------------------------------------ pruning vs numpy
def _pruning_case(seed, prune, threshold, units, n_in, steps):
    """Random inputs and weights with the numpy reference ``(x, weights, h, compared)``, kept away from
    float32 ties at the threshold (a flipped mask would propagate)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1.5, (16, steps, n_in)).astype(np.float32)
    weights = random_weights(rng, n_in, units, scale=0.6)
    expected, compared, _ = numpy_lstm(x, *weights, threshold=threshold, prune=prune)
    assert np.min(np.abs(compared - threshold)) > 1e-5
    return x, weights, expected, compared


@pytest.mark.parametrize("prune,threshold", [("state", 0.3), ("output_gate", 0.5)])
def test_pruning_matches_numpy_reference(prune, threshold):
    units, n_in, steps = 9, 5, 8
    x, weights, expected, compared = _pruning_case(7, prune, threshold, units, n_in, steps)
    # The data must exercise pruning: some entries are pruned, others kept.
    assert 0.1 < np.mean(expected == 0) < 0.9

    inp = keras.Input((steps, n_in))
    layer = SparseStateLSTM(units, threshold=threshold, prune=prune, return_sequences=True)
    model = keras.Model(inp, layer(inp))
    layer.set_weights(weights)
    got = keras.ops.convert_to_numpy(model(x))
    assert np.max(np.abs(got - expected)) <= 1e-5
    assert np.array_equal(got == 0, expected == 0)
    if prune == "state":
        # No surviving entry at or below the threshold: every |h| is 0 or > tau.
        assert np.all((got == 0) | (np.abs(got) > threshold))
        unpruned, _, _ = numpy_lstm(x, *weights, threshold=0.0)
        assert np.any((np.abs(unpruned) > 0) & (np.abs(unpruned) <= threshold))
    else:
        # h = o * tanh(c) is exactly zero wherever the gate was cut.
        assert np.all(got[compared <= threshold] == 0)

    measured = sparsity.state_sparsity(model, x)
    assert measured == {layer.name: pytest.approx(np.mean(expected[:, :-1] == 0), abs=1e-12)}


def test_return_sequences_false_gives_last_pruned_state():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1.5, (5, 6, 4)).astype(np.float32)
    weights = random_weights(rng, 4, 6, scale=0.6)
    layer = build_layer(SparseStateLSTM(6, threshold=0.3), 4, 6)
    layer.set_weights(weights)
    expected, _, _ = numpy_lstm(x, *weights, threshold=0.3)
    got = keras.ops.convert_to_numpy(layer(x))
    assert np.max(np.abs(got - expected[:, -1])) <= 1e-5


@pytest.mark.parametrize("prune,threshold", [("state", 0.3), ("output_gate", 0.5)])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_prune_last_false_leaves_only_the_last_state_unpruned(prune, threshold, return_sequences):
    """``prune_last=False``: h_1..h_{T-1} (the states fed back) are pruned exactly as before; h_T is
    o_T * tanh(c_T) unpruned, c_T from the pruned recursion; the state sparsity is unchanged."""
    units, n_in, steps = 9, 5, 8
    x, weights, pruned, _ = _pruning_case(11, prune, threshold, units, n_in, steps)
    unpruned_last = numpy_lstm(x, *weights, threshold=threshold, prune=prune, prune_last=False)[0]
    np.testing.assert_array_equal(unpruned_last[:, :-1], pruned[:, :-1])
    last_full = unpruned_last[:, -1]
    assert np.any((pruned[:, -1] == 0) & (last_full != 0))  # the last step would have pruned something

    layers = {}
    for prune_last in (True, False):
        layer = SparseStateLSTM(units, threshold=threshold, prune=prune, prune_last=prune_last,
                                return_sequences=return_sequences, name=f"l_{prune_last}")
        inp = keras.Input((steps, n_in))
        layers[prune_last] = (layer, keras.Model(inp, layer(inp)))
        layer.set_weights(weights)
    got = keras.ops.convert_to_numpy(layers[False][1](x))
    ref = keras.ops.convert_to_numpy(layers[True][1](x))
    last = got[:, -1] if return_sequences else got
    assert np.max(np.abs(last - last_full)) <= 1e-5
    assert np.max(np.abs((ref[:, -1] if return_sequences else ref) - pruned[:, -1])) <= 1e-5
    if return_sequences:
        assert np.max(np.abs(got[:, :-1] - pruned[:, :-1])) <= 1e-5
        np.testing.assert_array_equal(got[:, :-1], ref[:, :-1])
    s_false = sparsity.state_sparsity(layers[False][1], x)["l_False"]
    s_true = sparsity.state_sparsity(layers[True][1], x)["l_True"]
    assert s_false == s_true == pytest.approx(np.mean(pruned[:, :-1] == 0), abs=1e-12)


@pytest.mark.parametrize("prune", ["output_gate", "state"])
def test_gate_l1_penalty_matches_reference_and_trains_in_graph_mode(prune):
    rng = np.random.default_rng(11)
    units, n_in, steps, lam = 6, 4, 7, 0.7
    x = rng.normal(0, 1.5, (8, steps, n_in)).astype(np.float32)
    weights = random_weights(rng, n_in, units, scale=0.6)
    _, _, gates = numpy_lstm(x, *weights, threshold=0.5 if prune == "output_gate" else 0.2, prune=prune)
    layer = build_layer(SparseStateLSTM(units, threshold=0.5 if prune == "output_gate" else 0.2, prune=prune,
                                        gate_l1=lam, return_sequences=True), n_in, steps)
    layer.set_weights(weights)
    layer(x, training=True)
    assert len(layer.losses) == 1
    assert float(layer.losses[0]) == pytest.approx(lam * gates.mean(), abs=1e-6)
    layer(x, training=False)
    assert not layer.losses

    # Under fit (tf.function, the RNN runs in a while loop) the penalty must still work.
    inp = keras.Input((steps, n_in))
    lstm = SparseStateLSTM(units, threshold=0.5, prune=prune, gate_l1=lam)
    model = keras.Model(inp, keras.layers.Dense(3)(lstm(inp)))
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    y = rng.integers(0, 3, len(x))
    history = model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# ------------------------------------------------------------------------------------- gradients
def test_gradients_flow_through_the_mask():
    rng = np.random.default_rng(5)
    units, n_in, steps = 8, 4, 6
    x = tf.constant(rng.normal(0, 2.0, (16, steps, n_in)).astype(np.float32))
    r = tf.constant(rng.normal(0, 1, (16, steps, units)).astype(np.float32))
    layer = build_layer(SparseStateLSTM(units, threshold=0.5, return_sequences=True), n_in, steps)
    layer.set_weights(random_weights(rng, n_in, units, scale=0.6))
    cell = layer.cell
    with tf.GradientTape() as tape:
        out = layer(x, training=True)
        loss = tf.reduce_sum(out * r)
    out = out.numpy()
    assert 0 < np.mean(out == 0) < 1  # pruned, but not everything
    grads = tape.gradient(loss, [cell.kernel.value, cell.recurrent_kernel.value, cell.bias.value])
    for name, g in zip(("kernel", "recurrent_kernel", "bias"), grads, strict=True):
        assert g is not None, name
        g = g.numpy()
        assert np.all(np.isfinite(g)), name
        assert np.any(g != 0), name


def test_gradient_is_straight_through():
    """One step (h_0 = 0), threshold above any reachable |h| (c_1 <= 1 so |h_1| <= tanh 1): the output
    is all zeros, yet the gradient equals the unpruned LSTM's (straight-through estimator)."""
    rng = np.random.default_rng(9)
    units, n_in = 5, 3
    x = tf.constant(rng.normal(0, 1, (6, 1, n_in)).astype(np.float32))
    r = tf.constant(rng.normal(0, 1, (6, units)).astype(np.float32))
    weights = random_weights(rng, n_in, units)
    pruned = build_layer(SparseStateLSTM(units, threshold=0.99), n_in, 1)
    pruned.set_weights(weights)
    plain = keras.layers.LSTM(units)
    plain.build((None, 1, n_in))
    plain.set_weights(weights)

    def grads(layer, variables):
        with tf.GradientTape() as tape:
            out = layer(x, training=True)
            loss = tf.reduce_sum(out * r)
        return out.numpy(), [g.numpy() for g in tape.gradient(loss, variables)]

    out_p, g_p = grads(pruned, [pruned.cell.kernel.value, pruned.cell.bias.value])
    out_l, g_l = grads(plain, [plain.cell.kernel.value, plain.cell.bias.value])
    assert np.all(out_p == 0) and np.all(out_l != 0)
    for a, b in zip(g_p, g_l, strict=True):
        assert np.any(b != 0)
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------------- serialisation
@pytest.mark.parametrize("prune", ["state", "output_gate"])
def test_save_load_roundtrip(tmp_path, prune):
    rng = np.random.default_rng(2)
    steps, n_in, units = 6, 4, 5
    x = rng.normal(0, 1.5, (10, steps, n_in)).astype(np.float32)
    inp = keras.Input((steps, n_in))
    layer = SparseStateLSTM(units, threshold=0.1, prune=prune, return_sequences=True, name="sparse")
    model = keras.Model(inp, keras.layers.Dense(3)(layer(inp)))
    layer.set_weights(random_weights(rng, n_in, units, scale=0.6))
    trained_tau = 0.2371 if prune == "state" else 0.4629  # differs from the constructor's value
    layer.threshold.assign(trained_tau)
    before = model.predict(x, verbose=0)
    assert 0 < sparsity.state_sparsity(model, x)["sparse"] < 1

    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    loaded_layer = loaded.get_layer("sparse")
    assert isinstance(loaded_layer, SparseStateLSTM)
    assert loaded_layer.prune == prune and loaded_layer.return_sequences
    assert float(loaded_layer.threshold.numpy()) == float(np.float32(trained_tau))
    assert np.array_equal(loaded.predict(x, verbose=0), before)


def test_get_config_roundtrip():
    layer = SparseStateLSTM(
        7, threshold=0.25, prune="output_gate", gate_l1=0.3, return_sequences=True, prune_last=False, use_bias=False,
        unit_forget_bias=False, kernel_regularizer=keras.regularizers.L2(0.01), name="custom_name",
    )
    config = layer.get_config()
    assert config["units"] == 7 and config["threshold"] == 0.25 and config["prune"] == "output_gate"
    assert config["gate_l1"] == 0.3 and config["return_sequences"] is True and config["use_bias"] is False
    assert config["prune_last"] is False
    clone = SparseStateLSTM.from_config(config)
    assert clone.get_config() == config
    assert clone.units == 7 and clone.prune == "output_gate" and clone.name == "custom_name"
    assert clone.prune_last is False


# ------------------------------------------------------------------------------------- bad args
@pytest.mark.parametrize(
    "kwargs,name,value",
    [
        ({"units": 0}, "units", 0),
        ({"units": -3}, "units", -3),
        ({"units": 4, "threshold": -0.1}, "threshold", -0.1),
        ({"units": 4, "prune": "bogus"}, "prune", "bogus"),
        ({"units": 4, "stateful": True}, "stateful", True),
        ({"units": 4, "go_backwards": True}, "go_backwards", True),
        ({"units": 4, "return_state": True}, "return_state", True),
        ({"units": 4, "activation": "relu"}, "activation", "relu"),
        ({"units": 4, "prune_last": "no"}, "prune_last", "no"),
    ],
)
def test_bad_layer_args_raise(kwargs, name, value):
    with pytest.raises(ValueError) as err:
        SparseStateLSTM(**kwargs)
    assert f"{name}={value!r}" in str(err.value)


@pytest.mark.parametrize(
    "call,name,value",
    [
        (lambda: sparsity.polynomial_decay(0.0, 1.0, 0, 10), "final_sparsity", 1.0),
        (lambda: sparsity.polynomial_decay(-0.1, 0.5, 0, 10), "initial_sparsity", -0.1),
        (lambda: sparsity.constant_sparsity(1.0), "target_sparsity", 1.0),
        (lambda: sparsity.constant_sparsity(-0.1), "target_sparsity", -0.1),
    ],
)
def test_bad_sparsity_targets_raise(call, name, value):
    with pytest.raises(ValueError) as err:
        call()
    assert f"{name}={value!r}" in str(err.value)


def test_masking_is_rejected():
    x = np.array([[1, 2, 3, 0, 0], [4, 5, 0, 0, 0]])
    embedding = keras.layers.Embedding(10, 4, mask_zero=True)
    with pytest.raises(ValueError, match="mask"):
        SparseStateLSTM(3)(embedding(x))
    # A functional model does not even build (Keras alone would only warn and drop the mask).
    inp = keras.Input((5,), dtype="int32")
    with pytest.raises(ValueError, match="does not support masking"):
        SparseStateLSTM(3)(keras.layers.Embedding(10, 4, mask_zero=True)(inp))


# ------------------------------------------------------------------------------ sparsity helpers
def test_sequence_state_sparsity_excludes_last_step():
    h = np.array([
        [[0.0, 0.5], [0.2, 0.0], [0.0, 0.0]],
        [[0.3, 0.4], [0.0, -0.7], [0.0, 0.0]],
    ])
    # h[:, :-1] holds 8 entries, 3 of them zero; the last step (all zeros) feeds no product.
    assert sparsity.sequence_state_sparsity(h) == pytest.approx(3 / 8)
    h[:, -1] = 1.0
    assert sparsity.sequence_state_sparsity(h) == pytest.approx(3 / 8)
    h[1, 0, 0] = 0.0
    assert sparsity.sequence_state_sparsity(h) == pytest.approx(4 / 8)
    assert sparsity.sequence_state_sparsity(np.zeros((2, 1, 3))) == 0.0  # T = 1: nothing is fed
    with pytest.raises(ValueError, match="shape"):
        sparsity.sequence_state_sparsity(np.zeros((2, 3)))


def test_tfmot_import_keeps_tf_keras_on_keras3():
    """tfmot sets TF_USE_LEGACY_KERAS=1 on import; pipeline must undo it (fresh interpreter)."""
    code = textwrap.dedent("""
        import os, sys
        import pipeline, pipeline.sparsity
        module = pipeline.sparsity.tfmot_sparsity()
        assert "tensorflow_model_optimization" in sys.modules
        assert hasattr(module, "PolynomialDecay") and hasattr(module, "ConstantSparsity")
        import keras
        import tensorflow as tf
        assert tf.keras.layers.Dense is keras.layers.Dense, tf.keras.layers.Dense
        assert keras.__version__.startswith("3."), keras.__version__
        print("ENV", repr(os.environ.get("TF_USE_LEGACY_KERAS")))
    """)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ENV None" in proc.stdout

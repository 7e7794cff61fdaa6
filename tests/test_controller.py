"""The threshold controller's update rule against thresholds computed by hand.

    tau <- clip(tau + gain * (s_target(step) - s_measured), 0, max_threshold)     (once per batch)
"""

from __future__ import annotations

import pytest


def test_controller_follows_the_update_rule_by_hand():
    import keras

    from pipeline import sparsity
    from pipeline.callbacks import SparsityController
    from pipeline.layers import SparseStateLSTM

    inp = keras.Input((3, 2))
    a = SparseStateLSTM(4, threshold=0.1, name="a")
    b = SparseStateLSTM(4, threshold=0.02, name="b")
    model = keras.Model(inp, b(keras.layers.Reshape((1, 4))(a(inp))))
    model.compile(optimizer="adam", loss="mse")
    # tfmot PolynomialDecay 0 -> 0.8 over steps 0..4, power 3: s(t) = 0.8 - 0.8 * (1 - t/4)^3
    schedule = sparsity.polynomial_decay(0.0, 0.8, begin_step=0, end_step=4)
    targets = [0.4625, 0.7, 0.7875, 0.8, 0.8, 0.8]  # steps 1..6
    measured_a = [0.2, 0.3, 0.1, 0.95, 0.8, 0.8]
    measured_b = [1.0, 0.0, 0.5, 0.8, 0.6, 0.4]
    # gain 0.5, max_threshold 0.6, by hand:
    want_a = [0.23125,   # 0.1 + 0.5 * (0.4625 - 0.2)
              0.43125,   # + 0.5 * (0.7 - 0.3)
              0.6,       # 0.43125 + 0.5 * (0.7875 - 0.1) = 0.775, clipped to max_threshold
              0.525,     # 0.6 + 0.5 * (0.8 - 0.95): overshoot lowers it
              0.525,     # on target: unchanged
              0.525]
    want_b = [0.0,       # 0.02 + 0.5 * (0.4625 - 1.0) = -0.24875, clipped to 0
              0.35,      # 0 + 0.5 * (0.7 - 0)
              0.49375,   # + 0.5 * (0.7875 - 0.5)
              0.49375,
              0.59375,   # + 0.5 * (0.8 - 0.6)
              0.6]       # 0.59375 + 0.2 = 0.79375, clipped
    controller = SparsityController(schedule, gain=0.5, max_threshold=0.6, layers=[a, b])
    controller.set_model(model)
    for step in range(1, 7):
        model.optimizer.iterations.assign(step)
        a.last_state_sparsity.assign(measured_a[step - 1])
        b.last_state_sparsity.assign(measured_b[step - 1])
        controller.on_train_batch_end(step - 1)
        got = (float(a.threshold.numpy()), float(b.threshold.numpy()))
        assert got == pytest.approx((want_a[step - 1], want_b[step - 1]), abs=1e-6), step
        assert controller.history[-1][:2] == pytest.approx((step, targets[step - 1]), abs=1e-6)
    logs = {}
    controller.on_epoch_end(0, logs)
    assert logs == pytest.approx({"a_threshold": 0.525, "b_threshold": 0.6, "target_sparsity": 0.8}, abs=1e-6)

"""`SparseStateLSTM`: an LSTM that learns to keep its hidden state sparse.

Forward step (gate order i, f, c, o as in `keras.layers.LSTM`):

    z   = x_t W_x + h_{t-1} W_h + b                      (z has 4H columns)
    i   = sigmoid(z_i)   f = sigmoid(z_f)   g = tanh(z_c)   o = sigmoid(z_o)
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

then one of two pruning rules (``prune=``):

* ``"state"`` (default, the paper's): ``h_t <- h_t * (|h_t| > threshold)``;
* ``"output_gate"``: ``o <- o * (o > threshold)`` before ``h_t = o * tanh(c_t)``.

Both leave exact zeros in ``h_t``, which is both the layer's output and the state fed to the next
step, so the accelerator skips the recurrent multiply-accumulates of those columns. The mask is a
hard step; its gradient is straight-through (as if nothing were pruned).

``prune_last=False`` leaves the last step's ``h_T`` unpruned: ``h_T`` feeds no recurrent product
(the state sparsity counts ``h_1 .. h_{T-1}``), so the accelerator's schedule and cycles are those of
the fully pruned layer, while the layer's output (``return_sequences=False``: a sequence
classifier's readout; or the last element of the sequence) carries every unit of ``o_T * tanh(c_T)``.

``threshold`` is a non-trainable weight (saved in ``.keras`` files, read by the code generator);
`pipeline.callbacks.SparsityController` can steer it during training.

Quantisation-aware training (``quant=``, off by default: then nothing above changes). With
``quant={"weight": "ap_fixed<8,2,AP_RND_CONV,AP_SAT>", "result": "ap_fixed<8,1,AP_RND,AP_SAT>", ...}``
(`pipeline.quantizers.LSTMQuant`: input, weight, recurrent_weight, bias, accum, table, cell, result,
table_size; unset keys take the generator's defaults) the step computes what the accelerator computes:

    x_t <- (input_t) x_t ;  W_x, W_h, b <- (weight_t) W_x, (recurrent_weight_t) W_h, (bias_t) b
    z   = (accum_t)(x_t W_x + h_{t-1} W_h + b)                          (exact: <= 53 bits, AP_WRAP)
    i, f, o = sigmoid_table(z) ;  g = tanh_table(z_c)                   (the generator's LUTs, table_t)
    c_t = (cell_t)(f * c_{t-1} + i * g) ;  h_t = (result_t)(o * tanh_table(c_t)), then pruned

so Keras ``predict`` equals `pipeline.emulator.Emulator` (and the C-simulation and the RTL) bit for bit.
Inference computes in float64 (exact); training computes the same ops in float32 (faster, not exact in the
last bits), with straight-through gradients: identity through each quantiser inside its range, and the
gradient of the smooth sigmoid/tanh through each table; the pruning mask is straight-through where the
float layer's is (``"output_gate"``: on o_t, so a pruned unit's gradient reaches o_t but not c_t). The float weights stay the trained variables
(what ``get_weights`` returns); `SparseStateLSTM.quantised_lstm_weights` gives the values the hardware
stores, which is what the code generator exports.
"""

from __future__ import annotations

import keras
from keras import ops

from pipeline.ir import PRUNE_MODES
from pipeline.quantizers import DenseQuant, LSTMQuant, Table, lut, quantize, quantize_numpy


def _straight_through_mask(x, keep):
    """Return ``x * keep`` in the forward pass with the gradient of ``x`` (straight-through)."""
    pruned = x * ops.cast(keep, x.dtype)
    return x + ops.stop_gradient(pruned - x)


def _check_units(units) -> int:
    if isinstance(units, bool) or not isinstance(units, int) or units <= 0:
        raise ValueError(f"units must be a positive integer, got units={units!r}")
    return units


def _check_threshold(threshold) -> float:
    if isinstance(threshold, bool):
        raise ValueError(f"threshold must be a number >= 0, got threshold={threshold!r}")
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number >= 0, got threshold={threshold!r}") from None
    if not value >= 0.0 or value == float("inf"):
        raise ValueError(f"threshold must be a finite number >= 0, got threshold={threshold!r}")
    return value


@keras.saving.register_keras_serializable(package="skiplstm")
class SparseStateLSTMCell(keras.layers.Layer):
    """One step of `SparseStateLSTM` (weights laid out exactly as `keras.layers.LSTMCell`).

    Args:
        units: hidden size H (> 0).
        threshold: pruning threshold tau >= 0 (0 reproduces a plain LSTM).
        prune: ``"state"`` (``|h_t| > tau``) or ``"output_gate"`` (``o_t > tau``).
        gate_l1: weight lam of the penalty ``lam * mean(o_t)`` (mean over batch, steps and units of the
            unpruned output gate; added by `SparseStateLSTM` in training, either mode; Yu, Weber & Hu,
            ICANN 2019); 0 disables it. Small gates make small ``h_t = o_t * tanh(c_t)``, so the
            penalty drives sparsity in ``"state"`` mode too.
        use_bias, unit_forget_bias, *_initializer, *_regularizer, *_constraint: as in Keras.
        emit_unpruned: output ``[pruned h_t, unpruned h_t]`` (2H columns; the state fed to the next
            step stays pruned); set by `SparseStateLSTM` for ``prune_last=False``.
        quant: None (float), or the types of `pipeline.quantizers.LSTMQuant` (module docstring).
        weight_prune_lanes: 0 (no weight pruning: nothing changes), or the accelerator's lane count P
            (dividing H): the cell then carries 0/1 masks ``kernel_mask`` and ``recurrent_mask``
            (non-trainable, saved with the model) for column-balanced pruning of W_x and W_h
            (`SparseStateLSTM.prune_weights`, `pipeline.callbacks.WeightPruning`; issue 31).
    """

    def __init__(
        self,
        units,
        threshold=0.0,
        prune="state",
        gate_l1=0.0,
        use_bias=True,
        unit_forget_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        emit_unpruned=False,
        quant=None,
        weight_prune_lanes=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = _check_units(units)
        self.quant = None if quant is None else LSTMQuant.from_config(quant)
        if isinstance(weight_prune_lanes, bool) or not isinstance(weight_prune_lanes, int) or weight_prune_lanes < 0 \
                or (weight_prune_lanes and self.units % weight_prune_lanes):
            raise ValueError(f"weight_prune_lanes must be 0 (no weight pruning) or a lane count P dividing units = "
                             f"{self.units}, got weight_prune_lanes={weight_prune_lanes!r}")
        self.weight_prune_lanes = weight_prune_lanes
        self.emit_unpruned = bool(emit_unpruned)
        self.initial_threshold = _check_threshold(threshold)
        if prune not in PRUNE_MODES:
            raise ValueError(f"prune must be one of {PRUNE_MODES}, got prune={prune!r}")
        self.prune = prune
        try:
            gate = float(gate_l1)
        except (TypeError, ValueError):
            gate = float("nan")
        if isinstance(gate_l1, bool) or not 0.0 <= gate < float("inf"):
            raise ValueError(f"gate_l1 must be a finite number >= 0, got gate_l1={gate_l1!r}")
        self.gate_l1 = gate
        self.use_bias = bool(use_bias)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.state_size = [self.units, self.units]
        # emit_unpruned: the output is [pruned h_t, unpruned h_t] (2H), the state stays pruned
        self.output_size = 2 * self.units if self.emit_unpruned else self.units

    def build(self, input_shape):
        n_in = input_shape[-1]
        self.kernel = self.add_weight(
            shape=(n_in, 4 * self.units), name="kernel", initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer, constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units), name="recurrent_kernel",
            initializer=self.recurrent_initializer, regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        if self.use_bias:
            if self.unit_forget_bias:
                base = self.bias_initializer

                def bias_initializer(shape, *args, **kwargs):
                    h = self.units
                    return ops.concatenate([
                        base((h,), *args, **kwargs),
                        keras.initializers.get("ones")((h,), *args, **kwargs),
                        base((2 * h,), *args, **kwargs),
                    ])
            else:
                bias_initializer = self.bias_initializer
            self.bias = self.add_weight(
                shape=(4 * self.units,), name="bias", initializer=bias_initializer,
                regularizer=self.bias_regularizer, constraint=self.bias_constraint,
            )
        else:
            self.bias = None
        self.threshold = self.add_weight(
            shape=(), name="threshold", trainable=False,
            initializer=keras.initializers.Constant(self.initial_threshold),
        )
        if self.weight_prune_lanes:  # column-balanced weight pruning (issue 31): 0/1 masks, saved with the model
            self.kernel_mask = self.add_weight(shape=(n_in, 4 * self.units), name="kernel_mask", trainable=False,
                                               initializer="ones")
            self.recurrent_mask = self.add_weight(shape=(self.units, 4 * self.units), name="recurrent_mask",
                                                  trainable=False, initializer="ones")
        if self.quant is not None:
            try:
                self.accum_type = self.quant.check(int(n_in), self.units)
            except ValueError as err:
                raise ValueError(f"layer {self.name!r}: {err}") from None
            self._tables = {kind: Table.build(kind, self.quant.table_size, self.quant.table)
                            for kind in ("sigmoid", "tanh")}
        self._stash = None
        self.built = True

    def quantised_weights(self, dtype):
        """``[W_x, W_h, b]`` through their quantisers in ``dtype`` (b None without a bias)."""
        q = self.quant
        w = quantize(ops.cast(self.kernel, dtype), q.weight)
        wr = quantize(ops.cast(self.recurrent_kernel, dtype), q.recurrent_weight)
        b = quantize(ops.cast(self.bias, dtype), q.bias) if self.use_bias else None
        return [w, wr, b]

    def _quantised_call(self, inputs, states, training):
        """The accelerator's step (module docstring): float64 in inference, float32 in training."""
        q, h_units = self.quant, self.units
        dt = "float32" if training else "float64"
        out_dtype = inputs.dtype
        stash = self._stash
        fresh = stash is None or keras.backend.standardize_dtype(stash[0].dtype) != dt
        w, wr, b = self.quantised_weights(dt) if fresh else stash
        x, h_prev, c_prev = (ops.cast(v, dt) for v in (inputs, states[0], states[1]))
        z = ops.matmul(x, w) + ops.matmul(h_prev, wr)
        if b is not None:
            z = z + b
        if q.accum is not None:  # unset: the exact accumulator, which no sum leaves (the cast is the identity)
            z = quantize(z, self.accum_type)
        sig = lut(z, self._tables["sigmoid"])
        i, f, o = sig[:, :h_units], sig[:, h_units : 2 * h_units], sig[:, 3 * h_units :]
        g = lut(z[:, 2 * h_units : 3 * h_units], self._tables["tanh"])
        c = quantize(f * c_prev + i * g, q.cell)
        tc = lut(c, self._tables["tanh"])
        tau = ops.cast(self.threshold, dt)
        h_full = quantize(o * tc, q.result)
        if self.prune == "output_gate":
            # forward: (result_t)(0 * tanh(c)) = 0, the masked cast product. Gradient: the float layer's, a
            # pruned unit's to o_t and none through tanh(c_t) (straight through the cast product instead,
            # the pruned units' gradient reaching c_t, 8-bit MNIST rows collapsed at the threshold cap)
            h = quantize(_straight_through_mask(o, o > tau) * tc, q.result)
        else:
            h = _straight_through_mask(h_full, ops.abs(h_full) > tau)
        h, h_full, c = (ops.cast(v, out_dtype) for v in (h, h_full, c))
        if self.emit_unpruned:
            return ops.concatenate([h, h_full], axis=-1), [h, c]
        return h, [h, c]

    def call(self, inputs, states, training=False):
        if self.quant is not None:
            return self._quantised_call(inputs, states, training)
        h_prev, c_prev = states[0], states[1]
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel)
        if self.use_bias:
            z = z + self.bias
        z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
        i = ops.sigmoid(z_i)
        f = ops.sigmoid(z_f)
        g = ops.tanh(z_c)
        o = ops.sigmoid(z_o)
        c = f * c_prev + i * g
        tau = ops.cast(self.threshold, o.dtype)
        tc = ops.tanh(c)
        h_full = o * tc  # the unpruned h_t
        if self.prune == "output_gate":
            # The gate_l1 penalty is added by `SparseStateLSTM.call` (add_loss inside the RNN's
            # while loop leaks a loop tensor out of scope under tf.function).
            h = _straight_through_mask(o, o > tau) * tc
        else:
            h = _straight_through_mask(h_full, ops.abs(h_full) > tau)
        if self.emit_unpruned:
            return ops.concatenate([h, h_full], axis=-1), [h, c]
        return h, [h, c]

    def get_config(self):
        config = super().get_config()
        config.update({
            "units": self.units,
            "threshold": self.initial_threshold,
            "prune": self.prune,
            "gate_l1": self.gate_l1,
            "emit_unpruned": self.emit_unpruned,
            "quant": None if self.quant is None else self.quant.to_config(),
            **({"weight_prune_lanes": self.weight_prune_lanes} if self.weight_prune_lanes else {}),
            "use_bias": self.use_bias,
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": keras.constraints.serialize(self.recurrent_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
        })
        return config


_UNSUPPORTED_RNN_OPTIONS = {
    "go_backwards": False, "stateful": False, "return_state": False, "unroll": False,
    "time_major": False,
}

_CELL_ARGS = (
    "use_bias", "unit_forget_bias", "kernel_initializer", "recurrent_initializer", "bias_initializer",
    "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "kernel_constraint",
    "recurrent_constraint", "bias_constraint",
)


@keras.saving.register_keras_serializable(package="skiplstm")
class SparseStateLSTM(keras.layers.RNN):
    """LSTM layer whose hidden state is pruned to exact zeros (see module docstring).

    Weight-compatible with `keras.layers.LSTM`: ``get_weights()`` returns
    ``[kernel (n_in, 4H), recurrent_kernel (H, 4H), bias (4H,)]`` followed by the scalar
    ``threshold``; ``set_weights`` accepts either the three LSTM arrays plus the threshold or the
    same list as `keras.layers.LSTM` via `load_lstm_weights`.

    The layer keeps a non-trainable scalar ``last_state_sparsity`` (the state sparsity of the last
    training batch, see `pipeline.sparsity.state_sparsity`) for the sparsity controller, and a
    ``<name>_state_sparsity`` metric that Keras logs every epoch.

    ``prune_last=False``: the last step's ``h_T`` is not pruned (see the module docstring).

    ``quant``: None (float, the default), or the types of a quantisation-aware layer (module docstring,
    `pipeline.quantizers.LSTMQuant`); the inputs are then cast to ``input_t`` first.

    ``weight_prune_lanes`` = P > 0: column-balanced weight pruning of W_x and W_h (the cell's masks;
    `prune_weights`, `apply_weight_masks`, `weight_sparsity`): in every column the engine streams, each
    of the P lanes keeps the same number K of weights. 0 (the default): no masks, nothing changes.

    Masking, ``stateful``, ``go_backwards``, ``return_state`` and ``unroll`` are not supported and
    raise ``ValueError``.
    """

    def __init__(
        self,
        units,
        threshold=0.0,
        prune="state",
        gate_l1=0.0,
        return_sequences=False,
        prune_last=True,
        use_bias=True,
        unit_forget_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        quant=None,
        weight_prune_lanes=0,
        **kwargs,
    ):
        for option, supported in _UNSUPPORTED_RNN_OPTIONS.items():
            if option in kwargs and kwargs[option] != supported:
                raise ValueError(
                    f"SparseStateLSTM does not support {option}={kwargs[option]!r} "
                    f"(only {option}={supported!r}: the accelerator runs one forward pass per sequence)"
                )
            kwargs.pop(option, None)
        for option in ("activation", "recurrent_activation"):
            value = kwargs.pop(option, None)
            default = "tanh" if option == "activation" else "sigmoid"
            if value not in (None, default):
                raise ValueError(
                    f"SparseStateLSTM supports only {option}={default!r} (the accelerator's LUTs), "
                    f"got {option}={value!r}"
                )
        if not isinstance(prune_last, bool):
            raise ValueError(f"prune_last must be True or False, got prune_last={prune_last!r}")
        self.prune_last = prune_last
        for option in ("dropout", "recurrent_dropout"):
            value = kwargs.pop(option, 0.0)
            if value:
                raise ValueError(f"SparseStateLSTM does not support {option}={value!r} (use 0.0)")
        cell = SparseStateLSTMCell(
            units, threshold=threshold, prune=prune, gate_l1=gate_l1, use_bias=use_bias,
            unit_forget_bias=unit_forget_bias, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
            kernel_regularizer=kernel_regularizer, recurrent_regularizer=recurrent_regularizer,
            bias_regularizer=bias_regularizer, kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint, bias_constraint=bias_constraint,
            emit_unpruned=not prune_last, name="sparse_state_lstm_cell", dtype=kwargs.get("dtype"), quant=quant,
            weight_prune_lanes=weight_prune_lanes,
        )
        self._user_return_sequences = bool(return_sequences)
        # Run with sequences internally: the state sparsity is measured on every h_t.
        super().__init__(cell, return_sequences=True, **kwargs)
        self.return_sequences = self._user_return_sequences
        self.supports_masking = False
        self.sparsity_metric = keras.metrics.Mean(name=f"{self.name}_state_sparsity")

    def __call__(self, sequences, *args, **kwargs):
        # Keras drops a mask with only a warning for a layer without mask support, and a symbolic call
        # never reaches `call`: refuse it here, while the model is being built.
        mask = kwargs.get("mask")
        if mask is None:
            mask = getattr(sequences, "_keras_mask", None)
        if mask is not None:
            raise ValueError(
                f"SparseStateLSTM {self.name!r} does not support masking (its input carries a mask from "
                "Masking or Embedding(mask_zero=True)); remove it: the accelerator runs fixed-length sequences"
            )
        if kwargs.get("initial_state") is not None or (args and args[0] is not None):
            raise ValueError(f"SparseStateLSTM {self.name!r} does not support initial_state (the accelerator "
                             "starts every sequence at h_0 = c_0 = 0)")
        return super().__call__(sequences, *args, **kwargs)

    units = property(lambda self: self.cell.units)
    prune = property(lambda self: self.cell.prune)
    quant = property(lambda self: self.cell.quant)
    weight_prune_lanes = property(lambda self: self.cell.weight_prune_lanes)

    # ------------------------------------------------------------------ column-balanced weight pruning
    def _masked(self):
        cell = self.cell
        if not cell.weight_prune_lanes:
            raise ValueError(f"layer {self.name!r} has no weight masks (weight_prune_lanes=0)")
        return ((cell.kernel, cell.kernel_mask), (cell.recurrent_kernel, cell.recurrent_mask))

    def apply_weight_masks(self) -> None:
        """W <- W * mask for W_x and W_h: the pruned weights exactly 0 (`pipeline.callbacks.WeightPruning`
        calls it after every training batch, so every forward pass sees them pruned)."""
        for w, m in self._masked():
            w.assign(w * ops.cast(m, w.dtype))

    def prune_weights(self, sparsity: float) -> None:
        """New masks for W_x and W_h by column-balanced magnitude pruning to weight ``sparsity``
        (`pipeline.weight_pruning.column_balanced_mask`, P = ``weight_prune_lanes``), from the weights as
        pruned so far (a pruned weight stays pruned), then applied. The bias is not pruned."""
        from pipeline.weight_pruning import column_balanced_mask

        for w, m in self._masked():
            current = keras.ops.convert_to_numpy(w) * keras.ops.convert_to_numpy(m)
            m.assign(column_balanced_mask(current, self.cell.weight_prune_lanes, sparsity))
        self.apply_weight_masks()

    def weight_sparsity(self) -> float:
        """The fraction of W_x and W_h entries that are exactly 0 (the bias not counted)."""
        cell = self.cell
        arrays = [keras.ops.convert_to_numpy(cell.kernel), keras.ops.convert_to_numpy(cell.recurrent_kernel)]
        return float(sum((a == 0).sum() for a in arrays) / sum(a.size for a in arrays))

    @property
    def threshold(self):
        """The threshold variable (non-trainable, saved with the model)."""
        return self.cell.threshold

    def build(self, sequences_shape, initial_state_shape=None):
        if len(sequences_shape) != 3:
            raise ValueError(
                f"SparseStateLSTM expects input of shape (batch, time, features), got {sequences_shape}"
            )
        super().build(sequences_shape, initial_state_shape)
        self.last_state_sparsity = self.add_weight(
            shape=(), name="last_state_sparsity", trainable=False, initializer="zeros"
        )

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        if self.return_sequences:
            return (sequences_shape[0], sequences_shape[1], self.units)
        return (sequences_shape[0], self.units)

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, sequences, initial_state=None, mask=None, training=False):
        if mask is not None:
            raise ValueError(
                "SparseStateLSTM does not support masking (got a mask from the previous layer); "
                "remove mask_zero/Masking: the accelerator runs fixed-length sequences"
            )
        if initial_state is not None:
            raise ValueError("SparseStateLSTM does not support initial_state (the accelerator starts at 0)")
        rs = self.return_sequences
        self.return_sequences = True
        cell = self.cell
        if cell.quant is not None:
            # the input as the accelerator reads it ((input_t) x, exact in float64), and the quantised
            # weights once per call instead of once per step
            exact = "float32" if training else "float64"
            sequences = ops.cast(quantize(ops.cast(sequences, exact), cell.quant.input), sequences.dtype)
            cell._stash = cell.quantised_weights(exact)
        try:
            seq = super().call(sequences, training=training)
        finally:
            self.return_sequences = rs
            cell._stash = None
        if not self.prune_last:
            # [pruned h_t | unpruned h_t]: the states stay pruned; h_T goes out unpruned
            h = self.cell.units
            seq = ops.concatenate([seq[:, :-1, :h], seq[:, -1:, h:]], axis=1)
        # h_1 .. h_{T-1}: the computed states that feed a recurrent product (h_0 = 0 is excluded).
        fed = seq[:, :-1, :]
        if fed.shape[1] is not None and fed.shape[1] > 0:
            sparsity = ops.mean(ops.cast(ops.equal(fed, 0.0), "float32"))
            if training:
                self.last_state_sparsity.assign(sparsity)
            self.sparsity_metric.update_state(sparsity)
        if training and cell.gate_l1 > 0.0:
            self.add_loss(cell.gate_l1 * ops.mean(self._output_gates(sequences, seq)))
        return seq if rs else seq[:, -1, :]

    def _output_gates(self, sequences, seq):
        """The unpruned output gates o_1..o_T, recomputed from the inputs and the pruned states
        (o_t depends only on x_t and h_{t-1}, with h_0 = 0); used for the ``gate_l1`` penalty."""
        cell, h = self.cell, self.cell.units
        h_prev = ops.concatenate([ops.zeros_like(seq[:, :1, :]), seq[:, :-1, :]], axis=1)
        z_o = ops.matmul(sequences, cell.kernel[:, 3 * h :]) + ops.matmul(h_prev, cell.recurrent_kernel[:, 3 * h :])
        if cell.use_bias:
            z_o = z_o + cell.bias[3 * h :]
        return ops.sigmoid(z_o)

    def get_config(self):
        config = super().get_config()
        for key in ("cell", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask"):
            config.pop(key, None)
        config["return_sequences"] = self.return_sequences
        cell_config = self.cell.get_config()
        config["units"] = cell_config["units"]
        config["threshold"] = cell_config["threshold"]
        config["prune"] = cell_config["prune"]
        config["gate_l1"] = cell_config["gate_l1"]
        config["prune_last"] = self.prune_last
        config["quant"] = cell_config["quant"]
        if "weight_prune_lanes" in cell_config:
            config["weight_prune_lanes"] = cell_config["weight_prune_lanes"]
        for key in _CELL_ARGS:
            config[key] = cell_config[key]
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_weights(self):
        """``[kernel, recurrent_kernel, bias, threshold]`` (no bias entry when ``use_bias=False``)."""
        return self.lstm_weights() + [keras.ops.convert_to_numpy(self.cell.threshold)]

    def set_weights(self, weights):
        """Accept `get_weights()`'s list, or the ``[kernel, recurrent_kernel, bias]`` of a
        `keras.layers.LSTM` (the threshold is then left as it is)."""
        n = 3 if self.cell.use_bias else 2
        if len(weights) not in (n, n + 1):
            raise ValueError(
                f"SparseStateLSTM.set_weights expects {n} arrays (keras LSTM layout) or {n + 1} "
                f"(with the threshold), got {len(weights)}"
            )
        self.load_lstm_weights(weights[:n])
        if len(weights) == n + 1:
            self.cell.threshold.assign(_check_threshold(float(weights[n])))

    def load_lstm_weights(self, lstm_weights):
        """Copy ``[kernel, recurrent_kernel, bias]`` of a `keras.layers.LSTM` into this layer."""
        cell = self.cell
        expected = [tuple(cell.kernel.shape), tuple(cell.recurrent_kernel.shape)]
        if cell.use_bias:
            expected.append(tuple(cell.bias.shape))
        got = [tuple(getattr(w, "shape", ())) for w in lstm_weights]
        if got[: len(expected)] != expected:
            raise ValueError(f"LSTM weight shapes {got} do not match this layer's {expected}")
        cell.kernel.assign(lstm_weights[0])
        cell.recurrent_kernel.assign(lstm_weights[1])
        if cell.use_bias:
            cell.bias.assign(lstm_weights[2])

    def quantised_lstm_weights(self):
        """``[kernel, recurrent_kernel, bias]`` (numpy float64) as the accelerator stores them: each through
        its quantiser (`pipeline.quantizers.quantize_numpy`, exact); ValueError for a float layer."""
        q = self.cell.quant
        if q is None:
            raise ValueError(f"layer {self.name!r} is not quantised (quant=None): use lstm_weights()")
        weights = self.lstm_weights()
        types = [q.weight, q.recurrent_weight, q.bias]
        return [quantize_numpy(w, t) for w, t in zip(weights, types, strict=False)]

    def lstm_weights(self):
        """``[kernel, recurrent_kernel, bias]`` (numpy), the layout of `keras.layers.LSTM`."""
        cell = self.cell
        out = [keras.ops.convert_to_numpy(cell.kernel), keras.ops.convert_to_numpy(cell.recurrent_kernel)]
        if cell.use_bias:
            out.append(keras.ops.convert_to_numpy(cell.bias))
        return out


@keras.saving.register_keras_serializable(package="skiplstm")
class QuantDense(keras.layers.Dense):
    """`keras.layers.Dense` computing what hls4ml's Dense computes with the given types::

        y = activation( (result_t)( x (weight_t) W + (bias_t) b ) )          (an exact accumulator)

    ``quant``: ``{"weight": ..., "bias": ..., "result": ...}`` (`pipeline.quantizers.DenseQuant`; unset:
    ``ap_fixed<16,6>``). Inference computes in float64, exactly (the inputs must already lie on a fixed-point
    grid, e.g. a quantised SparseStateLSTM's states, for the sum to be the hardware's); training in float32,
    straight-through gradients. The code generator exports `quantised_weights` and takes the types from the
    layer (an hls4ml config that contradicts them is refused). Weights are those of a Dense
    (``get_weights``: the float kernel and bias)."""

    def __init__(self, units, quant=None, **kwargs):
        super().__init__(units, **kwargs)
        self.quant = DenseQuant.from_config({} if quant is None else quant)
        try:
            self.quant.check(None, 0)
        except ValueError as err:
            raise ValueError(f"layer {self.name!r}: {err}") from None

    def call(self, inputs, training=False):
        q = self.quant
        dt = "float32" if training else "float64"
        x = ops.cast(inputs, dt)
        z = ops.matmul(x, quantize(ops.cast(self.kernel, dt), q.weight))
        if self.use_bias:
            z = z + quantize(ops.cast(self.bias, dt), q.bias)
        z = quantize(z, q.result)
        if self.activation is not None:
            z = self.activation(z)
        return ops.cast(z, self.compute_dtype)

    def quantised_weights(self):
        """``[kernel, bias]`` (numpy float64) through their quantisers, as the hardware stores them."""
        out = [quantize_numpy(keras.ops.convert_to_numpy(self.kernel), self.quant.weight)]
        if self.use_bias:
            out.append(quantize_numpy(keras.ops.convert_to_numpy(self.bias), self.quant.bias))
        return out

    def get_config(self):
        config = super().get_config()
        config["quant"] = self.quant.to_config()
        return config

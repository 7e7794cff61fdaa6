"""Quantisation-aware training: the accelerator's fixed-point types inside Keras layers.

A quantiser is an ``ap_fixed<W, I, Q, O>`` (`pipeline.fixed.FixedType`, the same type descriptions
the generator and the emulator use) applied with Keras ops:

    q(x) = r * 2^-F,   r = overflow_O( round_Q(x * 2^F) ),   F = W - I

with every rounding mode (``AP_TRN`` floor, ``AP_TRN_ZERO``, ``AP_RND`` half up, ``AP_RND_ZERO``,
``AP_RND_MIN_INF``, ``AP_RND_INF``, ``AP_RND_CONV`` half to even) and overflow mode (``AP_WRAP``
modulo 2^W, ``AP_SAT`` clip, ``AP_SAT_ZERO``, ``AP_SAT_SYM``) of `pipeline.fixed`. The gradient is
straight-through: d q(x) / dx = 1 inside the type's range, and 0 outside it for a saturating type (the
clipped values do not move with x); a wrapping type passes the gradient everywhere.

Exactness. In float64 (what the quantised layers use in inference), ``x * 2^F`` and the rounding are
exact while ``|x| * 2^F < 2^52``; every value of a type up to 53 bits is a float64, so a sum of
on-grid products whose exact accumulator is at most 53 bits wide is exact in any order. That is what
lets Keras ``predict`` of a quantised model equal the emulator (and the C++), bit for bit; the layers
check those widths when built (`LSTMQuant`, `DenseQuant`). In training the layers compute in float32
(faster; the same ops, no longer exact in the last bits).

Lookup tables (`lut`): ``table[clip(floor(v * N / 2R), -N/2, N/2 - 1) + N/2]``, the index cast
``ap_fixed<n, r + 1, AP_TRN, AP_SAT>`` of the generated kernel (``N = 2^n`` entries over [-R, R),
``R = 2^r``), with the gradient of the smooth function (sigmoid or tanh) it tabulates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from pipeline.fixed import FixedType
from pipeline.ir import SIGMOID_RANGE, TANH_RANGE, check_table_size, lut_values
from pipeline.precision import DEFAULT_CELL, DEFAULT_STATE, DEFAULT_TABLE, exact_accum

FLOAT32_EXACT_BITS = 24  # a value of a type of <= 24 bits is a float32 (carried between steps, returned)
FLOAT64_EXACT_BITS = 53  # ... of <= 53 bits a float64 (every product and exact sum inside a step)
DEFAULT_INPUT = "ap_fixed<16,6>"  # hls4ml's default precision: what the Input layer gets unless told
DEFAULT_WEIGHT = "ap_fixed<16,6>"


def _type(value, what: str) -> FixedType:
    if isinstance(value, FixedType):
        return value
    if not isinstance(value, str):
        raise ValueError(f"quantiser {what!r} must be a type string such as 'ap_fixed<8,2,AP_RND_CONV,AP_SAT>', "
                         f"got {value!r}")
    try:
        return FixedType.parse(value)
    except ValueError as err:
        raise ValueError(f"quantiser {what!r}: {err}") from None


def quantize(x, t: FixedType):
    """``(t) x`` with Keras ops in ``x``'s dtype (module docstring); straight-through gradient."""
    from keras import ops

    scale = float(2.0**t.frac)
    s = x * scale
    q = t.q_mode
    if q == "AP_TRN":
        r = ops.floor(s)
    elif q == "AP_TRN_ZERO":
        r = ops.where(s >= 0, ops.floor(s), ops.ceil(s))
    elif q == "AP_RND":
        r = ops.floor(s + 0.5)
    elif q == "AP_RND_ZERO":
        r = ops.where(s >= 0, ops.ceil(s - 0.5), ops.floor(s + 0.5))
    elif q == "AP_RND_MIN_INF":
        r = ops.ceil(s - 0.5)
    elif q == "AP_RND_INF":
        r = ops.where(s >= 0, ops.floor(s + 0.5), ops.ceil(s - 0.5))
    else:  # AP_RND_CONV: half to even (tf.round)
        r = ops.round(s)
    lo, hi = float(t.raw_min), float(t.raw_max)
    o = t.o_mode
    if o == "AP_WRAP":
        mod = float(2.0**t.width)
        r = r - ops.floor((r - lo) / mod) * mod
    elif o == "AP_SAT_ZERO":
        r = ops.where((r < lo) | (r > hi), ops.zeros_like(r), r)
    elif o == "AP_SAT_SYM" and t.signed:
        r = ops.clip(r, -hi, hi)
    else:  # AP_SAT (and unsigned AP_SAT_SYM)
        r = ops.clip(r, lo, hi)
    value = r / scale
    # straight-through: the identity inside the range; a saturating type stops the gradient outside it
    through = x if o == "AP_WRAP" else ops.clip(x, t.min_value, t.max_value)
    return _forward_with_gradient_of(value, through)


def _forward_with_gradient_of(value, smooth):
    """``value`` in the forward pass (exactly: ``smooth - smooth`` is 0), the gradient of ``smooth``."""
    from keras import ops

    return ops.stop_gradient(value) + (smooth - ops.stop_gradient(smooth))


def quantize_numpy(x, t: FixedType) -> np.ndarray:
    """The exact reference of `quantize`'s forward pass (`pipeline.fixed.quantise_value`), float64."""
    from pipeline.fixed import quantise_value

    return quantise_value(np.asarray(x, np.float64), t)


@dataclass(frozen=True)
class Table:
    """One LUT as the generator writes it: ``values`` (N float64, on the table type's grid) over
    [-R, R), indexed by ``floor(v * 2^index_frac)`` clipped to [-N/2, N/2 - 1], plus N/2."""

    values: np.ndarray
    index_frac: int
    kind: str

    @classmethod
    def build(cls, kind: str, size: int, table_t: FixedType) -> Table:
        from pipeline.fixed import quantise_value

        n_bits = int(math.log2(check_table_size(size)))
        r = SIGMOID_RANGE if kind == "sigmoid" else TANH_RANGE
        # the index type ap_fixed<n, log2(R) + 1>: F = n - log2(R) - 1 fractional bits
        return cls(quantise_value(lut_values(kind, size), table_t), n_bits - int(math.log2(r)) - 1, kind)


def lut(v, table: Table):
    """``table(v)`` in ``v``'s dtype (module docstring), with the gradient of the tabulated function."""
    from keras import ops

    half = table.values.size // 2
    code = ops.clip(ops.floor(v * float(2.0**table.index_frac)), -half, half - 1) + half
    values = ops.convert_to_tensor(table.values.astype(np.float64), dtype=v.dtype)
    looked = ops.take(values, ops.cast(code, "int32"))
    smooth = ops.sigmoid(v) if table.kind == "sigmoid" else ops.tanh(v)
    return _forward_with_gradient_of(looked, smooth)


# ----------------------------------------------------------------------------------- type sets
def _check_width(t: FixedType, bits: int, what: str, why: str) -> None:
    if t.width > bits:
        raise ValueError(f"quantiser {what!r} = {t.cpp()} is {t.width} bits wide; a quantised layer needs at most "
                         f"{bits} bits there ({why})")


@dataclass(frozen=True)
class LSTMQuant:
    """The types of a quantised `pipeline.layers.SparseStateLSTM` (hls4ml's Precision names):

    ``input`` (x_t as the accelerator reads it: the Input layer's type, or the previous layer's state
    type), ``weight`` (W_x), ``recurrent_weight`` (W_h), ``bias``, ``accum`` (the gate accumulators;
    unset: the exact accumulator `pipeline.precision.exact_accum`, as the generator derives it),
    ``table`` (the sigmoid/tanh table outputs), ``cell`` (c_t), ``result`` (h_t, after pruning) and
    ``table_size`` (LUT entries). Unset types take the generator's defaults (`pipeline.precision`,
    ``ap_fixed<16,6>`` for input and weights)."""

    input: FixedType
    weight: FixedType
    recurrent_weight: FixedType
    bias: FixedType
    accum: FixedType | None
    table: FixedType
    cell: FixedType
    result: FixedType
    table_size: int

    TYPE_KEYS = ("input", "weight", "recurrent_weight", "bias", "accum", "table", "cell", "result")

    @classmethod
    def from_config(cls, config: Mapping | LSTMQuant) -> LSTMQuant:
        """From ``{"weight": "ap_fixed<8,2,AP_RND_CONV,AP_SAT>", ...}`` (every key optional; ValueError for
        an unknown key, naming it and the known ones)."""
        if isinstance(config, LSTMQuant):
            return config
        if not isinstance(config, Mapping):
            raise ValueError(f"quant must be a dict of types such as {{'weight': 'ap_fixed<8,2>'}}, got {config!r}")
        unknown = sorted(set(config) - set(cls.TYPE_KEYS) - {"table_size"})
        if unknown:
            raise ValueError(f"unknown quantiser key(s) {unknown} of a SparseStateLSTM; expected "
                             f"{list(cls.TYPE_KEYS) + ['table_size']}")
        weight = _type(config.get("weight") or DEFAULT_WEIGHT, "weight")
        size = config.get("table_size", 1024)
        try:
            size = check_table_size(size)
        except ValueError as err:
            raise ValueError(f"quantiser 'table_size': {err}") from None
        return cls(
            input=_type(config.get("input") or DEFAULT_INPUT, "input"), weight=weight,
            recurrent_weight=_type(config.get("recurrent_weight") or weight, "recurrent_weight"),
            bias=_type(config.get("bias") or DEFAULT_WEIGHT, "bias"),
            accum=_type(config["accum"], "accum") if config.get("accum") else None,
            table=_type(config.get("table") or DEFAULT_TABLE, "table"),
            cell=_type(config.get("cell") or DEFAULT_CELL, "cell"),
            result=_type(config.get("result") or DEFAULT_STATE, "result"), table_size=size,
        )

    def to_config(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: (v.cpp() if isinstance(v, FixedType) else v) for k, v in out.items() if v is not None}

    def accumulator(self, n_in: int, units: int) -> FixedType:
        """``accum`` or, unset, the exact accumulator of the generator (`pipeline.precision.exact_accum`)."""
        if self.accum is not None:
            return self.accum
        return exact_accum([(self.weight, self.input), (self.recurrent_weight, self.result)], self.bias, n_in + units)

    def check(self, n_in: int, units: int) -> FixedType:
        """Refuse types whose arithmetic float64 (inference) or float32 (the states) cannot hold exactly;
        return the accumulator type. The rules: input, result and cell <= 24 bits; accum <= 53 bits,
        AP_WRAP with every fractional bit of the products (then one exact sum cast once is what the C++
        computes column by column); the cell update and h_t = o * tanh(c_t) products <= 53 bits."""
        why32 = "Keras carries it between steps as float32"
        for key in ("input", "result", "cell"):
            _check_width(getattr(self, key), FLOAT32_EXACT_BITS, key, why32)
        _check_width(self.table, FLOAT32_EXACT_BITS, "table", "the table outputs are float32 in training")
        try:
            acc = self.accumulator(n_in, units)
        except ValueError as err:
            raise ValueError(f"quantised SparseStateLSTM: {err}") from None
        _check_width(acc, FLOAT64_EXACT_BITS, "accum", "the gate sums are exact float64 sums")
        need = max(self.weight.frac + self.input.frac, self.recurrent_weight.frac + self.result.frac, self.bias.frac)
        if acc.o_mode != "AP_WRAP" or acc.frac < need:
            raise ValueError(f"quantiser 'accum' = {acc.cpp()} must wrap (AP_WRAP) and keep >= {need} fractional bits "
                             "(every bit of the products): only then is one exact sum what the accelerator adds "
                             "column by column; leave accum unset for the exact accumulator")
        cell_bits = max(self.table.integer + self.cell.integer, 2 * self.table.integer) + 1 + max(
            self.table.frac + self.cell.frac, 2 * self.table.frac)
        if cell_bits > FLOAT64_EXACT_BITS:
            raise ValueError(f"quantisers 'table' = {self.table.cpp()} and 'cell' = {self.cell.cpp()}: the cell update "
                             f"f * c + i * g needs {cell_bits} bits, more than float64's {FLOAT64_EXACT_BITS}")
        return acc


@dataclass(frozen=True)
class DenseQuant:
    """The types of a quantised `pipeline.layers.QuantDense`: ``weight``, ``bias`` and ``result`` (the
    output, before the activation; the accumulator is exact, as the generator makes it)."""

    weight: FixedType
    bias: FixedType
    result: FixedType

    KEYS = ("weight", "bias", "result")

    @classmethod
    def from_config(cls, config: Mapping | DenseQuant) -> DenseQuant:
        if isinstance(config, DenseQuant):
            return config
        if not isinstance(config, Mapping):
            raise ValueError(f"quant must be a dict of types such as {{'weight': 'ap_fixed<8,2>'}}, got {config!r}")
        unknown = sorted(set(config) - set(cls.KEYS))
        if unknown:
            raise ValueError(f"unknown quantiser key(s) {unknown} of a QuantDense; expected {list(cls.KEYS)}")
        return cls(*(_type(config.get(k) or DEFAULT_WEIGHT, k) for k in cls.KEYS))

    def to_config(self) -> dict:
        return {k: getattr(self, k).cpp() for k in self.KEYS}

    def accumulator(self, x_t: FixedType, n_in: int) -> FixedType:
        return exact_accum([(self.weight, x_t)], self.bias, n_in)

    def check(self, x_t: FixedType | None, n_in: int) -> None:
        _check_width(self.result, FLOAT32_EXACT_BITS, "result", "Keras returns it as float32")
        if x_t is not None:
            acc = self.accumulator(x_t, n_in)
            _check_width(acc, FLOAT64_EXACT_BITS, "accum", "the sums are exact float64 sums")

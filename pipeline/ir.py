"""What the generator (`pipeline.hls`) and the emulator (`pipeline.emulator`) both read off hls4ml's IR.

One definition each of: the LUT ranges and contents (`lut_values`), the threshold as the kernel
compares it (`quantise_threshold`) and a weight variable as raw fixed-point integers (`read_weights`).
This module imports numpy and our own bottom modules only: nothing here imports hls4ml (an IR
variable is read through its attributes), so the emulator can be imported without registering the
hls4ml extension.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import fixed
from pipeline.fixed import FixedType
from pipeline.precision import to_fixed

SIGMOID_RANGE = 8.0  # the sigmoid LUT covers [-8, 8)
TANH_RANGE = 4.0  # the tanh LUT covers [-4, 4)


@dataclass
class Tensor:
    """Raw integers with a type (``value = raw * 2^-type.frac``)."""

    raw: np.ndarray
    type: FixedType

    def value(self) -> np.ndarray:
        return fixed.to_float(self.raw, self.type.frac)


def lut_values(kind: str, table_size: int) -> np.ndarray:
    """Float64 LUT contents at the interval midpoints: f(-R + (i + 1/2) * 2R/N), i = 0..N-1."""
    r = SIGMOID_RANGE if kind == "sigmoid" else TANH_RANGE
    x = -r + (np.arange(table_size, dtype=np.float64) + 0.5) * (2 * r / table_size)
    return 1.0 / (1.0 + np.exp(-x)) if kind == "sigmoid" else np.tanh(x)


def quantise_threshold(tau: float, t: FixedType) -> float:
    """tau rounded down onto t's grid (for v on that grid: v > tau <=> v > floor_t(tau))."""
    q = FixedType(t.width, t.integer, t.signed, "AP_TRN", "AP_SAT")
    raw = int(fixed.from_float(np.array([tau]), q)[0])
    value = raw * 2.0 ** -q.frac
    if value < tau - 2.0 ** -q.frac or raw == q.raw_max and tau > value + 2.0 ** -q.frac:
        raise ValueError(f"threshold {tau} does not fit the type {t} it is compared in")
    return value


def read_weights(var) -> Tensor:
    """An hls4ml weight variable (``.data``, ``.type.precision``, ``.precision_fmt``) as raw integers of
    its type, read the way the C-simulation reads it: hls4ml's decimal text through a double, cast to the
    weight type (`pipeline.fixed.from_decimal_strings`)."""
    t = to_fixed(var.type.precision)
    raw = fixed.from_decimal_strings(np.asarray(var.data, dtype=np.float64), var.precision_fmt, t)
    return Tensor(raw, t)

"""Bit-exact ``ap_fixed<W, I, Q, O>`` / ``ap_ufixed`` arithmetic on integer numpy arrays.

A fixed-point value is held as its raw integer ``r`` (int64): value = r * 2^-F with F = W - I.
Operations mirror the Xilinx ``ap_types`` headers (checked against them by a g++ probe in
``tests/test_fixed.py``):

* product of a (F_a) and b (F_b): raw r_a * r_b with F_a + F_b fractional bits, exact;
* sum: both aligned to max(F_a, F_b), exact;
* cast to a type (W, I, Q, O): first quantisation of the dropped fractional bits, then overflow
  handling of the integer part:

  =============  =========================================================
  AP_TRN         floor (toward -inf)
  AP_TRN_ZERO    toward zero
  AP_RND         round half toward +inf
  AP_RND_ZERO    round half toward zero
  AP_RND_MIN_INF round half toward -inf
  AP_RND_INF     round half away from zero
  AP_RND_CONV    round half to even
  AP_WRAP        keep the low W bits (two's complement)
  AP_SAT         clip to [min, max]
  AP_SAT_ZERO    0 when out of range
  AP_SAT_SYM     signed: clip to [-max, max]
  =============  =========================================================

Counts of values that overflowed (before wrapping or saturating) are returned by `cast_counting`
so the emulator can report them per tensor.

Integer representation: raw arrays are int64 (fast) or numpy object arrays of Python integers (exact at
any width). Every operation here checks, from the values it receives, that its int64 intermediates stay
below 2^63 (``shift`` and ``|raw|``) and otherwise hands over to Python integers; a cast returns int64
whenever the destination type's range fits int64 (every type but ``ap_ufixed<64, I>``), else Python
integers. Nothing wraps silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

Q_MODES = ("AP_TRN", "AP_TRN_ZERO", "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV")
O_MODES = ("AP_WRAP", "AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM")
MAX_WIDTH = 64

_TYPE_RE = re.compile(
    r"^\s*(ap_fixed|ap_ufixed|ap_int|ap_uint)\s*<\s*(-?\d+)\s*(?:,\s*(-?\d+)\s*)?"
    r"(?:,\s*(AP_\w+)\s*)?(?:,\s*(AP_\w+)\s*)?(?:,\s*(\d+)\s*)?>\s*$"
)


@dataclass(frozen=True)
class FixedType:
    """``ap_fixed<width, integer, q_mode, o_mode>`` (``signed=False``: ``ap_ufixed``)."""

    width: int
    integer: int
    signed: bool = True
    q_mode: str = "AP_TRN"
    o_mode: str = "AP_WRAP"

    def __post_init__(self):
        if not 1 <= self.width <= MAX_WIDTH:
            raise ValueError(f"fixed-point width W must be in 1..{MAX_WIDTH}, got W={self.width} in {self}")
        if self.q_mode not in Q_MODES:
            raise ValueError(f"unknown quantisation mode {self.q_mode!r}; expected one of {Q_MODES}")
        if self.o_mode not in O_MODES:
            raise ValueError(f"unknown overflow mode {self.o_mode!r}; expected one of {O_MODES}")
        if self.signed and self.width < 2 and self.o_mode == "AP_SAT_SYM":
            raise ValueError(f"AP_SAT_SYM needs W >= 2, got {self}")

    @property
    def frac(self) -> int:
        """F = W - I, the number of fractional bits (may be negative or exceed W)."""
        return self.width - self.integer

    @property
    def raw_min(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def raw_max(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.frac

    @property
    def max_value(self) -> float:
        return self.raw_max * self.lsb

    @property
    def min_value(self) -> float:
        return self.raw_min * self.lsb

    def cpp(self) -> str:
        """The C++ spelling, e.g. ``ap_fixed<16,6,AP_RND,AP_SAT>`` (defaults omitted)."""
        name = "ap_fixed" if self.signed else "ap_ufixed"
        args = [str(self.width), str(self.integer)]
        if self.q_mode != "AP_TRN" or self.o_mode != "AP_WRAP":
            args.append(self.q_mode)
        if self.o_mode != "AP_WRAP":
            args.append(self.o_mode)
        return f"{name}<{','.join(args)}>"

    def __str__(self) -> str:
        return self.cpp()

    @classmethod
    def parse(cls, text: str) -> FixedType:
        """Parse ``ap_fixed<W,I[,Q[,O[,N]]]>``, ``ap_ufixed<...>``, ``ap_int<W>``, ``ap_uint<W>``."""
        m = _TYPE_RE.match(str(text))
        if not m:
            raise ValueError(
                f"cannot parse fixed-point type {text!r}; expected e.g. 'ap_fixed<16,6>' or "
                "'ap_ufixed<8,0,AP_RND,AP_SAT>'"
            )
        kind, w, i, q, o, _n = m.groups()
        width = int(w)
        if kind in ("ap_int", "ap_uint"):
            if i is not None:
                raise ValueError(f"{kind} takes one parameter, got {text!r}")
            integer = width
        else:
            if i is None:
                raise ValueError(f"{kind} needs <W,I>, got {text!r}")
            integer = int(i)
        if width < 1 or width > MAX_WIDTH:
            raise ValueError(f"fixed-point width W must be in 1..{MAX_WIDTH}, got W={width} in {text!r}")
        if kind in ("ap_fixed", "ap_ufixed") and integer > width:
            raise ValueError(f"integer bits I={integer} exceed width W={width} in {text!r} (need I <= W)")
        try:
            return cls(width, integer, kind in ("ap_fixed", "ap_int"), q or "AP_TRN", o or "AP_WRAP")
        except ValueError as e:  # e.g. an unknown mode: name the offending text too
            raise ValueError(f"{e} (in {text!r})") from None


# --------------------------------------------------------------------------------------- primitives
INT64_LIMIT = 1 << 63  # raw values, products and sums below this fit int64


def _to_pyint(v) -> int:
    if isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer):
        raise TypeError(f"raw fixed-point values must be integers, got {type(v).__name__} {v!r}")
    return int(v)


def as_exact(a) -> np.ndarray:
    """``a`` as an object array of Python integers (exact at any width)."""
    return _as_int(a).astype(object)


def max_abs(a) -> int:
    """max |a| of an integer array as a Python int (0 when empty); never overflows."""
    a = np.asarray(a)
    if a.size == 0:
        return 0
    return max(int(a.max()), -int(a.min()))


def fits_int64(t: FixedType) -> bool:
    """Whether every raw value of ``t`` fits int64 (all types but ``ap_ufixed<64, I>``)."""
    return t.signed or t.width <= 63


def normalise(raw, t: FixedType) -> np.ndarray:
    """Raw values of type ``t`` (already in its range) as int64 when ``t`` fits int64, else Python ints."""
    raw = np.asarray(raw)
    if fits_int64(t):
        return raw.astype(np.int64)
    return raw if raw.dtype == object else raw.astype(object)


def _as_int(a) -> np.ndarray:
    """int64, or Python integers (object) when the values do not fit int64 (e.g. uint64 >= 2^63)."""
    a = np.asarray(a)
    if a.dtype == object:
        return np.frompyfunc(_to_pyint, 1, 1)(a).astype(object) if a.size else a
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"raw fixed-point values must be integers, got dtype {a.dtype}")
    if a.dtype.kind == "u" and a.dtype.itemsize >= 8 and a.size and int(a.max()) >= INT64_LIMIT:
        return a.astype(object)
    return a.astype(np.int64, copy=False)


def _shift_right_quantise(raw: np.ndarray, s: int, q_mode: str) -> np.ndarray:
    """round(raw / 2^s) with the given quantisation mode (s > 0), exact integer arithmetic."""
    floor = raw >> s
    rem = raw - (floor << s)  # in [0, 2^s)
    if q_mode == "AP_TRN":
        return floor
    half = 1 << (s - 1)
    if q_mode == "AP_TRN_ZERO":
        up = (rem != 0) & (raw < 0)
        return floor + (up.astype(object) if floor.dtype == object else up)
    above = rem > half
    tie = rem == half
    if q_mode == "AP_RND":
        up = above | tie
    elif q_mode == "AP_RND_ZERO":
        up = above | (tie & (raw < 0))
    elif q_mode == "AP_RND_MIN_INF":
        up = above
    elif q_mode == "AP_RND_INF":
        up = above | (tie & (raw >= 0))
    elif q_mode == "AP_RND_CONV":
        up = above | (tie & ((floor & 1) == 1))
    else:  # pragma: no cover - FixedType validates
        raise ValueError(q_mode)
    return floor + (up.astype(object) if floor.dtype == object else up)


def _overflow(raw: np.ndarray, t: FixedType) -> tuple[np.ndarray, int]:
    """Apply t's overflow mode to integers already on t's grid; also return the overflow count."""
    lo, hi = t.raw_min, t.raw_max
    out_of_range = (raw < lo) | (raw > hi)
    n = int(np.count_nonzero(out_of_range))
    if t.o_mode == "AP_SAT_SYM" and t.signed:
        # ap_types also maps an in-range raw_min to -raw_max (counted: only true overflows)
        return np.where(raw > hi, hi, np.where(raw < -hi, -hi, raw)), n
    if n == 0:
        return raw, 0
    if t.o_mode == "AP_WRAP":
        mod = 1 << t.width
        # int64: (raw - lo) may wrap modulo 2^64, which 2^W divides, so the low W bits stay exact
        if raw.dtype == object or t.width >= 63:
            wrapped = np.vectorize(lambda v: ((int(v) - lo) % mod) + lo, otypes=[object])(raw)
            return (wrapped.astype(np.int64) if t.width <= 63 else wrapped), n
        return ((raw - lo) & (mod - 1)) + lo, n
    if t.o_mode == "AP_SAT":
        return np.where(raw > hi, hi, np.where(raw < lo, lo, raw)), n
    if t.o_mode == "AP_SAT_ZERO":
        return np.where(out_of_range, 0, raw), n
    return np.where(raw > hi, hi, np.where(raw < lo, lo, raw)), n  # unsigned AP_SAT_SYM == AP_SAT


def cast_counting(raw, frac: int, t: FixedType) -> tuple[np.ndarray, int]:
    """Cast raw integers with ``frac`` fractional bits to type ``t``; return (raw_t, n_overflow)."""
    raw = _as_int(raw)
    shift = frac - t.frac
    if raw.dtype != object and not _int64_cast_ok(raw, shift, t):
        raw = raw.astype(object)  # exact with Python integers
    if shift > 0:
        raw = _shift_right_quantise(raw, shift, t.q_mode)
    elif shift < 0:
        raw = raw << (-shift)
    out, n = _overflow(raw, t)
    return normalise(out, t), n


def _int64_cast_ok(raw: np.ndarray, shift: int, t: FixedType) -> bool:
    """The int64 path of `cast_counting` is exact: the quantisation constants (2^(shift-1)) and a left
    shift of the largest |raw| stay below 2^62, and t's range fits int64 (checked, not assumed)."""
    if not fits_int64(t):
        return False
    if shift > 0:
        return shift <= 62
    return shift == 0 or max_abs(raw).bit_length() - shift <= 62


def cast(raw, frac: int, t: FixedType) -> np.ndarray:
    """Cast raw integers with ``frac`` fractional bits to type ``t`` (see `cast_counting`)."""
    return cast_counting(raw, frac, t)[0]


def from_float_counting(x, t: FixedType) -> tuple[np.ndarray, int]:
    """``(t) x`` for doubles x (the ap_fixed double constructor), exact; returns (raw, n_overflow).

    Each double is split exactly into x = m * 2^e (integer |m| < 2^53, subnormals included), so
    x * 2^F = m * 2^-s is quantised with integer arithmetic like a fixed-point cast. (Rounding on
    floats is not exact: for -1 < x * 2^F < 0, ``y - floor(y)`` rounds, e.g. a value just above -1/2
    LSB came out as an exact tie; ``ldexp`` also underflows tiny x when F < 0 and overflows huge x.)
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        bad = x[~np.isfinite(x)].ravel()[:3]
        raise ValueError(f"cannot convert non-finite values {bad.tolist()} to {t}")
    shape = x.shape
    mant, exp = np.frexp(x.ravel())  # x = mant * 2^exp, 0.5 <= |mant| < 1 (or 0)
    m = np.ldexp(mant, 53).astype(np.int64)  # exact, |m| < 2^53
    s = 53 - exp.astype(np.int64) - t.frac  # x * 2^F = m * 2^-s
    r = np.zeros(m.shape, dtype=np.int64)
    right = (s > 0) & (m != 0)
    if np.any(right):
        # beyond 55 dropped bits only the sign matters (|m * 2^-s| < 1/4): use m = +-1, s = 55
        mr, sr = m[right], s[right]
        far = sr > 55
        r[right] = _shift_right_quantise(np.where(far, np.sign(mr), mr), np.where(far, 55, sr), t.q_mode)
    left = (s <= 0) & (m != 0)
    huge = left & (s < -10)  # |m << -s| >= 2^63: out of range of every type (W <= 64)
    fits = left & ~huge
    r[fits] = m[fits] << -s[fits]
    small = fits_int64(t)  # ap_ufixed<64, I> holds values >= 2^63: Python integers
    out = np.empty(m.shape, dtype=np.int64 if small else object)
    out[~huge], n = _overflow(r[~huge] if small else r[~huge].astype(object), t)
    if np.any(huge):
        big = np.array([int(a) << int(-b) for a, b in zip(m[huge], s[huge], strict=True)], dtype=object)
        out_big, n_big = _overflow(big, t)
        out[huge] = normalise(out_big, t)
        n += n_big
    return out.reshape(shape), n


def from_float(x, t: FixedType) -> np.ndarray:
    """``(t) x`` for doubles (see `from_float_counting`)."""
    return from_float_counting(x, t)[0]


def to_float(raw, frac: int) -> np.ndarray:
    """The value of raw integers with ``frac`` fractional bits, as float64 (exact below 2^53)."""
    return np.ldexp(np.asarray(raw, dtype=np.float64), -frac)


def from_decimal_strings(values, fmt: str, t: FixedType) -> np.ndarray:
    """What ``istream >> ap_fixed`` gives for ``fmt.format(v)`` text: parse as double, then cast.

    hls4ml writes weights with ``'{:.Ff}'.format(v)`` (F = fractional bits of the weight type); the
    C-simulation reads them back through a double. This reproduces that path exactly.
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    parsed = np.array([float(fmt.format(v)) for v in flat.tolist()], dtype=np.float64)
    return from_float(parsed, t).reshape(np.shape(values))


def quantise_value(x, t: FixedType) -> np.ndarray:
    """The float value of ``(t) x`` (handy for tolerances and reports)."""
    return to_float(from_float(x, t), t.frac)

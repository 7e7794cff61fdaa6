"""Precision per tensor, read from hls4ml's IR (one source of truth for the generator and the emulator).

`to_fixed` maps an hls4ml precision object (``FixedPrecisionType``, ``IntegerPrecisionType``) to a
`pipeline.fixed.FixedType`. The default types of a `SparseStateLSTM` that the user's hls4ml config
leaves unset are chosen here (`default_lstm_types`).
"""

from __future__ import annotations

import math

from pipeline.fixed import FixedType

# Gate activations lie in [-1, 1]: 2 integer bits (sign + 1) suffice.
DEFAULT_TABLE = "ap_fixed<18,2,AP_RND,AP_SAT>"
# The memory cell c_t can exceed 1 in magnitude (|c_t| <= t); saturate rather than wrap.
DEFAULT_CELL = "ap_fixed<24,8,AP_RND,AP_SAT>"
# h_t = o * tanh(c_t) lies in [-1, 1].
DEFAULT_STATE = "ap_fixed<16,2,AP_RND,AP_SAT>"


def to_fixed(precision) -> FixedType:
    """An hls4ml precision object (or a type string) as a `FixedType`."""
    if isinstance(precision, FixedType):
        return precision
    if isinstance(precision, str):
        return FixedType.parse(precision)
    from hls4ml.model.types import FixedPrecisionType, IntegerPrecisionType

    name = type(precision).__name__
    if isinstance(precision, FixedPrecisionType):
        q = "AP_" + str(precision.rounding_mode)
        o = "AP_" + str(precision.saturation_mode)
        return FixedType(int(precision.width), int(precision.integer), bool(precision.signed), q, o)
    if isinstance(precision, IntegerPrecisionType):
        return FixedType(int(precision.width), int(precision.width), bool(precision.signed))
    raise ValueError(
        f"unsupported precision {precision!r} ({name}); SkipLSTM needs ap_fixed/ap_int types "
        "(set the hls4ml config's Precision to e.g. 'ap_fixed<16,6>')"
    )


def exact_accum(products: list[tuple[FixedType, FixedType]], bias: FixedType, n_terms: int,
                cap: bool = False) -> FixedType:
    """The narrowest accumulator that holds ``bias + sum of n_terms products`` with no rounding.

    With ``cap=True`` a width above 64 bits is cut to 62 (what the emulator's int64 sums hold) by
    dropping fractional bits, with AP_RND and AP_SAT (no longer exact: the emulator then casts every
    addition, as the C++ does).

    F = max over products of (F_a + F_b) and F_bias; I = max over products of (I_a + I_b), and I_bias,
    plus ceil(log2(n_terms + 1)) growth bits. AP_WRAP: nothing can overflow, and a wrapping
    accumulator keeps sums exact modulo 2^W in any order, which the emulator's single matmul relies on.
    """
    frac = max([a.frac + b.frac for a, b in products] + [bias.frac])
    integer = max([a.integer + b.integer for a, b in products] + [bias.integer])
    integer += math.ceil(math.log2(n_terms + 1))
    width = integer + frac
    if width > 64 and cap and integer < 62:
        return FixedType(62, integer, True, "AP_RND", "AP_SAT")
    if width > 64:
        raise ValueError(
            f"an exact accumulator needs {width} bits (> 64) for these weight/input types; set the layer's "
            "'accum' precision explicitly in the hls4ml config"
        )
    return FixedType(width, integer, True, "AP_TRN", "AP_WRAP")


def widen_to_hold(t: FixedType, low: float, high: float) -> FixedType | None:
    """The type with the fewest extra integer bits (same fractional bits, rounding and overflow modes)
    that holds every value in ``[low, high]``; signed when ``low < 0``. ``t`` itself when it already
    holds them; None when even 64 bits cannot (the fractional bits shrink first once W reaches 64)."""
    if t.min_value <= low and high <= t.max_value:
        return t
    signed = t.signed or low < 0
    for integer in range(t.integer + 1, 65):
        width = min(64, t.width + integer - t.integer)
        if width < 1 or (signed and width < 2):
            continue
        cand = FixedType(width, integer, signed, t.q_mode, t.o_mode)
        if cand.min_value <= low and high <= cand.max_value:
            return cand
    return None


def covering_type(types: list[FixedType], hold_one: bool = False) -> str:
    """The narrowest ``ap_fixed`` (C++ text) that holds every value of every type in ``types`` exactly
    (and 1.0 when ``hold_one``): F = max F_k; I = max over k of I_k, plus one sign bit for an unsigned
    type when any is signed; I >= 2 for 1.0 (signed). The kernel widens the MAC operands of the input
    and the recurrent columns to one such type each, so one multiplier per lane serves both streams
    and every product and sum keeps its exact value."""
    signed = any(t.signed for t in types) or hold_one
    frac = max(t.frac for t in types)
    integer = max(t.integer + (1 if signed and not t.signed else 0) for t in types)
    if hold_one:
        integer = max(integer, 2)
    width = max(integer + frac, 1 + signed)
    return f"ap_{'' if signed else 'u'}fixed<{width},{integer}>"


def index_bits(max_value: int) -> int:
    """Bits of an ``ap_uint`` that holds 0..max_value."""
    return max(1, int(max_value).bit_length())

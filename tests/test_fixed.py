"""`pipeline.fixed` against the real Xilinx ap_types headers (hls4ml's copy), bit for bit.

One g++ probe (tests/_cpp_probe.py) is generated from the type/mode combinations below, compiled
once per session and fed every case through one binary file; the raw W-bit patterns it returns are
compared with the numpy emulation. Covered:

* fixed -> fixed casts from ap_fixed<40,16> to several shapes (incl. I < 0, I > W, a finer
  destination grid), all 7 quantisation x all 4 overflow modes;
* the ap_fixed(double) constructor (`from_float`) incl. exact ties, huge, tiny and subnormal inputs;
* full-precision products (result type and raw bits) assigned to accumulator types, and the
  full-precision sum type of ``acc + product``;
* ``acc += a * b`` chains of 16 products into a saturating and a wrapping accumulator, against the
  sequential emulation acc = cast((acc << (F_prod - F_acc)) + prod, F_prod, acc_t);
* ``to_double()`` of every result equals raw * 2^-F (no hidden truncation / to_int step).

Every random case set is drawn from numpy RandomState with fixed seeds and has >= 10,000 cases per
type/mode combination.
"""

from __future__ import annotations

import functools
import itertools
import zlib

import numpy as np
import pytest
from _cpp_probe import (
    Job,
    ap_types_dir,
    build_probe,
    f64_from_bits,
    f64_to_bits,
    find_cxx,
    run_probe,
    sign_extend,
)

from pipeline import fixed
from pipeline.fixed import O_MODES, Q_MODES, FixedType

N_CASES = 10_000
SEED = 0x5EED
ACC_STEPS = 16

# ------------------------------------------------------------------------------ combinations
SRC = FixedType(40, 16)  # the wide source of the fixed -> fixed casts (F = 24)
CAST_SHAPES = [  # (W, I, signed)
    (8, 3, True),
    (10, 4, False),
    (8, -2, True),  # negative integer bits: |value| < 2^-3
    (6, 10, True),  # I > W: the LSB is 2^4 (ap_types accepts it; FixedType.parse does not)
    (32, 4, True),  # F = 28 > 24: the destination grid is finer, no quantisation
]
FLOAT_SHAPE = (16, 6, True)  # double -> ap_fixed<16,6,Q,O> for every Q x O
FLOAT_EXTRA_SHAPES = [(10, 4, False), (6, 10, True), (8, -2, True)]
# Every Q and every O at least once on the extra double -> fixed shapes.
FLOAT_EXTRA_MODES = [
    ("AP_TRN", "AP_WRAP"),
    ("AP_TRN_ZERO", "AP_SAT"),
    ("AP_RND", "AP_SAT_ZERO"),
    ("AP_RND_CONV", "AP_SAT_SYM"),
    ("AP_RND_INF", "AP_WRAP"),
    ("AP_RND_MIN_INF", "AP_SAT"),
    ("AP_RND_ZERO", "AP_SAT_SYM"),
]
MUL_A, MUL_B = FixedType(16, 6), FixedType(12, 3)
MUL_ACCS = [
    FixedType(24, 10, True, "AP_TRN", "AP_WRAP"),
    FixedType(20, 8, True, "AP_RND", "AP_SAT"),  # the product (|.| <= 128) only just overflows it
    FixedType(14, 4, True, "AP_RND_CONV", "AP_SAT_SYM"),  # narrow: many products saturate
]
SEQ_ACCS = [FixedType(18, 6, True, "AP_RND", "AP_SAT"), FixedType(18, 6, True, "AP_TRN", "AP_WRAP")]


def _ft(shape, q="AP_TRN", o="AP_WRAP") -> FixedType:
    w, i, s = shape
    return FixedType(w, i, s, q, o)


CAST_TYPES = [_ft(sh, q, o) for sh in CAST_SHAPES for q in Q_MODES for o in O_MODES]
FLOAT_TYPES = [_ft(FLOAT_SHAPE, q, o) for q in Q_MODES for o in O_MODES] + [
    _ft(sh, q, o) for sh in FLOAT_EXTRA_SHAPES for q, o in FLOAT_EXTRA_MODES
]


# ------------------------------------------------------------------------------ probe jobs
def _cast_job(t: FixedType) -> Job:
    return Job(
        f"cast:{t.cpp()}",
        1,
        2,
        f"""
const {SRC.cpp()} s = set_raw<{SRC.cpp()}>(in[0]);
const {t.cpp()} d = s;
out[0] = get_raw(d);
out[1] = f64_to_bits(d.to_double());
""",
    )


def _float_job(t: FixedType) -> Job:
    return Job(
        f"double:{t.cpp()}",
        1,
        2,
        f"""
const {t.cpp()} d = bits_to_f64(in[0]);
out[0] = get_raw(d);
out[1] = f64_to_bits(d.to_double());
""",
    )


def _mul_job(acc: FixedType) -> Job:
    a, b = MUL_A.cpp(), MUL_B.cpp()
    return Job(
        f"mul:{acc.cpp()}",
        2,
        9,
        f"""
const {a} a = set_raw<{a}>(in[0]);
const {b} b = set_raw<{b}>(in[1]);
const auto p = a * b;  // full precision: ap_fixed<W_a + W_b, I_a + I_b>
const {acc.cpp()} c = a * b;
const auto s = c + p;  // full precision sum type
out[0] = get_raw(c);
out[1] = get_raw(p);
out[2] = decltype(a * b)::width;
out[3] = decltype(a * b)::iwidth;
out[4] = get_raw(s);
out[5] = decltype(c + p)::width;
out[6] = decltype(c + p)::iwidth;
out[7] = f64_to_bits(c.to_double());
out[8] = f64_to_bits(p.to_double());
""",
    )


def _seq_job(acc: FixedType) -> Job:
    a, b = MUL_A.cpp(), MUL_B.cpp()
    return Job(
        f"acc:{acc.cpp()}",
        1 + 2 * ACC_STEPS,
        ACC_STEPS,
        f"""
{acc.cpp()} acc = set_raw<{acc.cpp()}>(in[0]);
for (int k = 0; k < {ACC_STEPS}; ++k) {{
  const {a} a = set_raw<{a}>(in[1 + k]);
  const {b} b = set_raw<{b}>(in[1 + {ACC_STEPS} + k]);
  acc += a * b;
  out[k] = get_raw(acc);
}}
""",
    )


JOBS = (
    [_cast_job(t) for t in CAST_TYPES]
    + [_float_job(t) for t in FLOAT_TYPES]
    + [_mul_job(t) for t in MUL_ACCS]
    + [_seq_job(t) for t in SEQ_ACCS]
)


# ------------------------------------------------------------------------------ random cases
def _rng(tag: str) -> np.random.RandomState:
    return np.random.RandomState((zlib.crc32(tag.encode()) ^ SEED) & 0xFFFFFFFF)


def _randint(rng, lo: int, hi: int, size: int) -> np.ndarray:
    """Uniform int64 in [lo, hi] (inclusive)."""
    return rng.randint(lo, hi + 1, size=size, dtype=np.int64)


def _cast_cases(w: int, i: int, signed: bool, n: int = N_CASES) -> np.ndarray:
    """Source raws (F = 24) around/inside/far outside the destination range, with exact ties."""
    rng = _rng(f"cast{w},{i},{signed}")
    t = FixedType(w, i, signed)
    s = SRC.frac - t.frac  # bits dropped by the cast (negative: destination is finer)
    lo = t.raw_min if signed else -(t.raw_max + 1)  # unsigned: negative sources too
    hi = t.raw_max
    margin = max((hi - lo + 1) // 4, 4)

    def on_dst_grid(k):  # destination raw k -> source raw (k in dst units)
        return k << s if s >= 0 else k >> -s

    near = _randint(rng, lo - margin, hi + margin, n)
    parts = []
    if s > 0:
        half = 1 << (s - 1)
        kind = rng.randint(0, 7, size=n)
        off = np.select(
            [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4, kind == 5],
            [0, half, half - 1, half + 1, 1, (1 << s) - 1],
            _randint(rng, 0, (1 << s) - 1, n),
        )
        parts.append((near << s) + off)  # ~2/7 are exact ties
        specials = [0, 1, -1, half, -half, half - 1, -half + 1, half + 1, -half - 1]
        for k in (lo, hi, t.raw_min, 0, -1, 1, hi + 1, lo - 1):
            specials += [(k << s) + d for d in (0, half, half - 1, half + 1, -half, -half - 1)]
    else:
        parts.append(_randint(rng, on_dst_grid(lo - margin), on_dst_grid(hi + margin), n))
        specials = [0, 1, -1] + [on_dst_grid(k) + d for k in (lo, hi, hi + 1, lo - 1) for d in (-1, 0, 1)]
    specials += [SRC.raw_min, SRC.raw_max, SRC.raw_min + 1, SRC.raw_max - 1]
    parts.append(_randint(rng, SRC.raw_min, SRC.raw_max, n // 4))  # mostly far out of range
    bits = rng.randint(0, SRC.width, size=n // 4)  # log-uniform magnitudes
    mags = np.array([rng.randint(0, 1 << int(b)) if b else 0 for b in bits], dtype=np.int64)
    parts.append(np.where(rng.rand(n // 4) < 0.5, -mags, mags))
    parts.append(np.zeros(50, dtype=np.int64))
    parts.append(np.array(specials, dtype=np.int64))
    v = np.concatenate(parts)
    return np.clip(v, SRC.raw_min, SRC.raw_max)


def _float_cases(w: int, i: int, signed: bool, n: int = N_CASES) -> np.ndarray:
    """Doubles: random in/around range, grid points, exact ties and their neighbours, huge, tiny."""
    rng = _rng(f"double{w},{i},{signed}")
    t = FixedType(w, i, signed)
    lsb = t.lsb
    lo = t.raw_min if signed else -(t.raw_max + 1)
    hi = t.raw_max
    margin = max((hi - lo + 1) // 4, 4)
    k = _randint(rng, lo - margin, hi + margin, n).astype(np.float64)
    ties = (k + 0.5) * lsb  # exact: |k| < 2^53
    parts = [
        rng.uniform((lo - margin) * lsb, (hi + margin) * lsb, n),  # random bits below the LSB
        k * lsb,  # on the grid
        ties,
        np.nextafter(ties, np.inf),
        np.nextafter(ties, -np.inf),
    ]
    mag = np.power(10.0, rng.uniform(-323.5, 308.2, n // 2))  # huge and tiny, subnormals included
    parts.append(np.where(rng.rand(n // 2) < 0.5, -mag, mag))
    p2 = np.ldexp(1.0, np.arange(-1074, 1024, 7))
    tiny = np.array([5e-324, 1e-320, 2.2250738585072014e-308, 2.225073858507201e-308])
    edge = np.array([lo, hi, hi + 1, lo - 1, 0, 1, -1], dtype=np.float64) * lsb
    specials = np.concatenate(
        [
            [0.0, -0.0, np.finfo(np.float64).max, 2.0**62, 2.0**63, 2.0**64, 2.0**63 - 1024, 1e19, 1e300],
            p2,
            tiny,
            edge,
            edge + lsb / 2,
            edge - lsb / 2,
            np.nextafter(edge + lsb / 2, np.inf),
            np.nextafter(edge - lsb / 2, -np.inf),
        ]
    )
    parts.append(specials)
    parts.append(-specials)
    return np.concatenate(parts)


def _mul_cases(s_drop: int, n: int = N_CASES) -> np.ndarray:
    """(a_raw, b_raw) pairs: uniform, extremes, zeros, and products that are exact ties at s_drop."""
    rng = _rng(f"mul{s_drop}")
    a = _randint(rng, MUL_A.raw_min, MUL_A.raw_max, n)
    b = _randint(rng, MUL_B.raw_min, MUL_B.raw_max, n)
    # ties: a odd, b = odd * 2^(s_drop - 1)  =>  a * b = odd * 2^(s_drop - 1)
    m = n // 4
    bmax = MUL_B.raw_max >> (s_drop - 1)
    a_t = _randint(rng, MUL_A.raw_min // 2, MUL_A.raw_max // 2, m) * 2 + 1
    b_t = (_randint(rng, -(bmax + 1) // 2, (bmax - 1) // 2, m) * 2 + 1) << (s_drop - 1)
    ext_a = [MUL_A.raw_min, MUL_A.raw_max, 0, 1, -1, MUL_A.raw_min + 1]
    ext_b = [MUL_B.raw_min, MUL_B.raw_max, 0, 1, -1, MUL_B.raw_min + 1]
    ea, eb = zip(*itertools.product(ext_a, ext_b), strict=True)
    return np.stack([np.concatenate([a, a_t, ea]), np.concatenate([b, b_t, eb])], axis=1)


def _seq_cases(acc: FixedType, n: int = N_CASES) -> np.ndarray:
    """(acc0, a[16], b[16]) rows; per-row magnitude scale so some rows saturate/wrap, most do not."""
    rng = _rng(f"seq{acc.cpp()}")
    acc0 = _randint(rng, acc.raw_min, acc.raw_max, n) >> rng.randint(0, acc.width, size=n)
    shift_a = rng.randint(0, 12, size=(n, 1))
    shift_b = rng.randint(0, 8, size=(n, 1))
    a = _randint(rng, MUL_A.raw_min, MUL_A.raw_max, n * ACC_STEPS).reshape(n, ACC_STEPS) >> shift_a
    b = _randint(rng, MUL_B.raw_min, MUL_B.raw_max, n * ACC_STEPS).reshape(n, ACC_STEPS) >> shift_b
    return np.concatenate([acc0[:, None], a, b], axis=1)


@functools.lru_cache(maxsize=1)
def _all_inputs() -> dict[str, np.ndarray]:
    inputs: dict[str, np.ndarray] = {}
    cast_src = {sh: _cast_cases(*sh) for sh in CAST_SHAPES}
    for t in CAST_TYPES:
        inputs[f"cast:{t.cpp()}"] = cast_src[(t.width, t.integer, t.signed)]
    float_src = {sh: _float_cases(*sh) for sh in [FLOAT_SHAPE, *FLOAT_EXTRA_SHAPES]}
    for t in FLOAT_TYPES:
        inputs[f"double:{t.cpp()}"] = f64_to_bits(float_src[(t.width, t.integer, t.signed)])
    prod_frac = MUL_A.frac + MUL_B.frac
    for acc in MUL_ACCS:
        inputs[f"mul:{acc.cpp()}"] = _mul_cases(prod_frac - acc.frac)
    for acc in SEQ_ACCS:
        inputs[f"acc:{acc.cpp()}"] = _seq_cases(acc)
    return inputs


# ------------------------------------------------------------------------------ fixtures / helpers
@pytest.fixture(scope="session")
def ap_probe(tmp_path_factory):
    """(build, outputs): the probe compiled once per session; outputs[job name] is (n, n_out) uint64."""
    include, cxx = ap_types_dir(), find_cxx()
    if include is None:
        pytest.skip("hls4ml's ap_types headers not found")
    if cxx is None:
        pytest.skip("g++ not found")
    build = build_probe(JOBS, tmp_path_factory.getbasetemp() / "ap_types_probe", include, cxx)
    outputs = run_probe(build.binary, JOBS, _all_inputs(), tmp_path_factory.mktemp("ap_probe_io"))
    return build, outputs


def _assert_same(got, want, inputs, what: str, show=8):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    bad = np.flatnonzero((got != want).reshape(got.shape[0], -1).any(axis=1))
    if bad.size:
        rows = "\n".join(
            f"  input={np.asarray(inputs)[j].tolist()!r}: ap_types={got[j].tolist()!r} "
            f"fixed.py={want[j].tolist()!r}"
            for j in bad[:show]
        )
        pytest.fail(f"{what}: {bad.size}/{got.shape[0]} cases differ from ap_types, e.g.\n{rows}")


def _assert_batch_independent(fn, inputs, got, in_range, what: str):
    """fn on a batch without any overflow, and on single elements, gives the same as ap_types.

    (Overflow handling must not depend on what else is in the batch.)
    """
    sub = np.flatnonzero(in_range)
    assert sub.size > 100, what
    _assert_same(got[sub], fn(inputs[sub]), inputs[sub], f"{what} [in-range rows only]")
    picks = np.concatenate(
        [sub[:: max(1, sub.size // 20)][:20], np.linspace(0, len(inputs) - 1, 20).astype(int)]
    )
    for j in picks:
        _assert_same(got[j : j + 1], fn(inputs[j : j + 1]), inputs[j : j + 1], f"{what} [row {j} alone]")


# ------------------------------------------------------------------------------ probe build
def test_probe_compiles_without_warnings(ap_probe):
    build, _ = ap_probe
    assert build.own_warnings() == [], "\n".join(build.own_warnings())


def test_case_counts():
    for name, arr in _all_inputs().items():
        assert arr.shape[0] >= N_CASES, name


# ------------------------------------------------------------------------------ 1. fixed -> fixed casts
@pytest.mark.parametrize("t", CAST_TYPES, ids=str)
def test_cast_matches_ap_types(ap_probe, t):
    _, outputs = ap_probe
    src = _all_inputs()[f"cast:{t.cpp()}"]
    out = outputs[f"cast:{t.cpp()}"]
    got = sign_extend(out[:, 0], t.width, t.signed)
    _assert_same(got, fixed.cast(src, SRC.frac, t), src, f"{SRC} -> {t}")
    shift = SRC.frac - t.frac
    floor_k = src >> shift if shift >= 0 else src << -shift
    in_range = (floor_k >= t.raw_min) & (floor_k < t.raw_max)
    _assert_batch_independent(lambda r: fixed.cast(r, SRC.frac, t), src, got, in_range, f"{SRC} -> {t}")
    # the value is raw * 2^-F exactly (W <= 53 here)
    np.testing.assert_array_equal(f64_from_bits(out[:, 1]), fixed.to_float(got, t.frac))


def test_cast_cases_exercise_ties_and_overflow():
    """The case sets really contain exact ties, zeros and out-of-range values for every shape."""
    for w, i, s in CAST_SHAPES:
        t = FixedType(w, i, s)
        src = _all_inputs()[f"cast:{t.cpp()}"]
        shift = SRC.frac - t.frac
        if shift > 0:
            assert np.count_nonzero((src & ((1 << shift) - 1)) == 1 << (shift - 1)) > N_CASES // 10
        on_grid = fixed.cast(src, SRC.frac, FixedType(64, 64 - t.frac))  # no overflow, floor
        assert np.count_nonzero(src == 0) > 10
        assert np.count_nonzero(on_grid > t.raw_max) > N_CASES // 10
        assert np.count_nonzero(on_grid < t.raw_min) > N_CASES // 10


# ------------------------------------------------------------------------------ 2. double -> fixed
@pytest.mark.parametrize("t", FLOAT_TYPES, ids=str)
def test_from_float_matches_ap_types(ap_probe, t):
    _, outputs = ap_probe
    x = f64_from_bits(_all_inputs()[f"double:{t.cpp()}"].view(np.uint64))
    out = outputs[f"double:{t.cpp()}"]
    got = sign_extend(out[:, 0], t.width, t.signed)
    _assert_same(got, fixed.from_float(x, t), x, f"double -> {t}")
    with np.errstate(all="ignore"):
        floor_k = np.floor(np.ldexp(x, t.frac))
    in_range = (floor_k >= t.raw_min) & (floor_k < t.raw_max)
    _assert_batch_independent(lambda v: fixed.from_float(v, t), x, got, in_range, f"double -> {t}")
    np.testing.assert_array_equal(f64_from_bits(out[:, 1]), fixed.to_float(got, t.frac))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_from_float_rejects_non_finite(bad):
    t = FixedType.parse("ap_fixed<16,6>")
    with pytest.raises(ValueError, match="non-finite"):
        fixed.from_float(np.array([0.5, bad]), t)
    with pytest.raises(ValueError, match="non-finite"):
        fixed.from_float(bad, t)


# ------------------------------------------------------------------------------ 3. products
@pytest.mark.parametrize("acc", MUL_ACCS, ids=str)
def test_product_then_assign_matches_ap_types(ap_probe, acc):
    _, outputs = ap_probe
    ab = _all_inputs()[f"mul:{acc.cpp()}"]
    out = outputs[f"mul:{acc.cpp()}"]
    ra, rb = ab[:, 0], ab[:, 1]
    prod_w, prod_i = MUL_A.width + MUL_B.width, MUL_A.integer + MUL_B.integer
    prod_f = MUL_A.frac + MUL_B.frac
    # the auto product type is ap_fixed<W_a + W_b, I_a + I_b>, holding ra * rb exactly
    assert (out[:, 2] == prod_w).all() and (out[:, 3] == prod_i).all()
    _assert_same(sign_extend(out[:, 1], prod_w, True), ra * rb, ab, f"{MUL_A} * {MUL_B}")
    np.testing.assert_array_equal(f64_from_bits(out[:, 8]), fixed.to_float(ra * rb, prod_f))
    # assigned to the accumulator type: one cast of the exact product
    got = sign_extend(out[:, 0], acc.width, True)
    _assert_same(got, fixed.cast(ra * rb, prod_f, acc), ab, f"({MUL_A} * {MUL_B}) -> {acc}")
    np.testing.assert_array_equal(f64_from_bits(out[:, 7]), fixed.to_float(got, acc.frac))
    # acc + product: full precision on the finer grid, exact
    sum_f = max(acc.frac, prod_f)
    sum_i = max(acc.integer, prod_i) + 1
    assert (out[:, 5] == sum_i + sum_f).all() and (out[:, 6] == sum_i).all()
    want_sum = (got << (sum_f - acc.frac)) + ((ra * rb) << (sum_f - prod_f))
    _assert_same(sign_extend(out[:, 4], sum_i + sum_f, True), want_sum, ab, f"{acc} + product")


def test_product_cases_exercise_ties_and_overflow():
    prod_f = MUL_A.frac + MUL_B.frac
    for acc in MUL_ACCS:
        ab = _all_inputs()[f"mul:{acc.cpp()}"]
        p, s = ab[:, 0] * ab[:, 1], prod_f - acc.frac
        assert np.count_nonzero((p & ((1 << s) - 1)) == 1 << (s - 1)) >= N_CASES // 5
    sat = MUL_ACCS[2]
    ab = _all_inputs()[f"mul:{sat.cpp()}"]
    assert np.count_nonzero(np.abs(ab[:, 0] * ab[:, 1]) >> (prod_f - sat.frac) > sat.raw_max) > 100


# ------------------------------------------------------------------------------ 4. accumulation
def _emulate_acc(rows: np.ndarray, acc: FixedType) -> np.ndarray:
    prod_f = MUL_A.frac + MUL_B.frac
    assert prod_f >= acc.frac
    a, b = rows[:, 1 : 1 + ACC_STEPS], rows[:, 1 + ACC_STEPS :]
    r = fixed.cast(rows[:, 0], acc.frac, acc)
    steps = []
    for k in range(ACC_STEPS):
        total = (r << (prod_f - acc.frac)) + a[:, k] * b[:, k]  # exact, on the product's grid
        r = fixed.cast(total, prod_f, acc)
        steps.append(r)
    return np.stack(steps, axis=1)


@pytest.mark.parametrize("acc", SEQ_ACCS, ids=str)
def test_accumulate_matches_ap_types(ap_probe, acc):
    _, outputs = ap_probe
    rows = _all_inputs()[f"acc:{acc.cpp()}"]
    got = sign_extend(outputs[f"acc:{acc.cpp()}"], acc.width, True)
    want = _emulate_acc(rows, acc)
    _assert_same(got, want, rows, f"{acc} += {MUL_A} * {MUL_B} (16 steps)", show=3)
    # the chains do overflow sometimes (saturate / wrap) but not mostly
    prod_f = MUL_A.frac + MUL_B.frac
    exact = rows[:, :1] * (1 << (prod_f - acc.frac)) + np.cumsum(
        rows[:, 1 : 1 + ACC_STEPS] * rows[:, 1 + ACC_STEPS :], axis=1
    )
    out_of_range = (exact >> (prod_f - acc.frac) > acc.raw_max) | (exact >> (prod_f - acc.frac) < acc.raw_min)
    assert N_CASES // 50 < np.count_nonzero(out_of_range.any(axis=1)) < N_CASES // 2


# ------------------------------------------------------------------------------ FixedType.parse
@pytest.mark.parametrize(
    "text", ["ap_fixed<8,10>", "ap_fixed<0,0>", "ap_fixed<65,10>", "float", "ap_fixed<16,6,AP_FOO>"]
)
def test_parse_rejects(text):
    with pytest.raises(ValueError) as e:
        FixedType.parse(text)
    assert text in str(e.value)


@pytest.mark.parametrize(
    "text, want",
    [
        ("ap_fixed<16,6>", FixedType(16, 6, True, "AP_TRN", "AP_WRAP")),
        ("ap_ufixed<8,0,AP_RND,AP_SAT>", FixedType(8, 0, False, "AP_RND", "AP_SAT")),
        ("ap_int<8>", FixedType(8, 8, True)),
        ("ap_uint<4>", FixedType(4, 4, False)),
        (
            " ap_fixed< 18 , 6 , AP_RND_CONV , AP_SAT_SYM > ",
            FixedType(18, 6, True, "AP_RND_CONV", "AP_SAT_SYM"),
        ),
        ("ap_fixed<8,-2>", FixedType(8, -2, True)),
    ],
)
def test_parse_accepts(text, want):
    t = FixedType.parse(text)
    assert t == want
    assert FixedType.parse(t.cpp()) == t


def test_from_float_keeps_shape():
    t = FixedType.parse("ap_fixed<16,6,AP_RND,AP_SAT>")
    assert fixed.from_float(0.3, t).shape == ()
    x = np.linspace(-40, 40, 24).reshape(2, 3, 4)
    got = fixed.from_float(x, t)
    assert got.shape == x.shape and got.dtype == np.int64
    np.testing.assert_array_equal(got.ravel(), fixed.from_float(x.ravel(), t))

"""Bit-accurate numpy emulator of the generated accelerator (what the C++ computes, cast for cast).

Built from a `pipeline.ir.ModelIR`: the IR the hls stage saves in the project (`Emulator.from_project`),
or the one `pipeline.hls.extract.extract_ir` reads off an hls4ml `ModelGraph` after conversion (so every
type is the one the C++ gets; see `pipeline.precision`); ``Emulator(model_graph)`` does that extraction
through the reader `pipeline.hls.register()` gives `pipeline.ir`. Supported layers: Input, Embedding,
SparseStateLSTM, Dense, Activation(relu, linear). Weights are the raw integers the C-simulation reads:
hls4ml's decimal text through a double, cast to the weight type (`pipeline.ir.read_weights`, shared
with the generator, as are the LUTs and the threshold; this module never imports hls4ml or
`pipeline.hls`).

SparseStateLSTM step (per sample, vectorised over a batch; see templates/nnet_sparse_lstm.h):

    acc  = (accum_t) b ;  acc += W_x[j] * x_t[j] (columns j ascending) ; acc += W_h[j] * h_{t-1}[j]
    i, f, o = sigmoid_table[idx_s(acc)] ; g = tanh_table[idx_t(acc)]     (table_t)
    c_t  = (cell_t)(f * c_{t-1} + i * g) ;  h_t = (result_t)(o * tanh_table[idx_t(c_t)])
    idx(v) = code of (ap_fixed<n, r+1, AP_TRN, AP_SAT>) v, plus N/2       (N = 2^n, range [-2^r, 2^r))

Accumulation: when ``accum_t`` wraps (AP_WRAP) and keeps every fractional bit of the products, the
sum is exact modulo 2^W in any order, so one float64 matmul (exact below 2^53, checked) gives the
bit-identical result ("fast" path). Otherwise every ``acc += p`` is cast in the C++ order, column by
column ("sequential" path), and the sparse mode skips the zero columns for real.

Integer widths: raw values are int64 where that is exact and Python integers (numpy object arrays)
where it is not. Each product, aligned sum and matmul checks its bound first (from the operand types, or
for a matmul from the values: max |a| * max column sum of |w|) and takes int64 only below 2^63, float64
BLAS only below 2^53; wider operands (e.g. ``ap_fixed<43,15> * ap_fixed<24,10>``, 65 bits) run exactly,
more slowly, on Python integers. `pipeline.fixed` casts follow the same rule, so no path wraps silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline import accelerator, fixed
from pipeline import ir as model_ir
from pipeline.fixed import FixedType
from pipeline.ir import LSTMIR, DenseIR, ModelIR, Tensor, quantise_threshold

SUPPORTED = ("Input", "Embedding", "SparseStateLSTM", "Dense", "Activation", "ReLU")


@dataclass
class LSTMTrace:
    """Per-sample, per-step counts of one SparseStateLSTM layer (arrays of shape (N, T))."""

    layer: str
    shape: accelerator.LayerShape
    nnz_x: np.ndarray
    nnz_h: np.ndarray
    states: np.ndarray | None = None  # (N, T, H) raw h_t, kept when asked
    weight_chunks: int = 0  # KE of the weight-sparse engine where the weights allow KE < C, else 0
    weight_density: float = 1.0  # nonzero fraction of W_x and W_h together (as stored, fixed point)
    weight_bits: tuple[int, int] = (0, 0)  # container widths of W_x and W_h values (the RTL's ROM fields)
    engine_chunks: int = 0  # KE of the project's own engine (0: dense weights), what C-simulation counts

    def engine_costs(self) -> dict:
        """`costs` of the project's own engine: the weight-sparse one when ``engine_chunks`` > 0."""
        if not self.engine_chunks:
            return self.costs()
        return accelerator.layer_costs(dataclasses.replace(self.shape, weight_chunks=self.engine_chunks),
                                       self.nnz_x, self.nnz_h)

    def costs(self) -> dict:
        return accelerator.layer_costs(self.shape, self.nnz_x, self.nnz_h)

    def weight_sparse_costs(self) -> dict | None:
        """`costs` on the weight-sparse engine (columns of KE pairs), or None where it is not built."""
        if not self.weight_chunks:
            return None
        return accelerator.layer_costs(dataclasses.replace(self.shape, weight_chunks=self.weight_chunks),
                                       self.nnz_x, self.nnz_h)


@dataclass
class EmulationResult:
    """Outputs, per-layer traces and, per overflowing tensor (``<layer>.accum|cell|result``, ``input``):
    ``overflow`` (number of values that saturated or wrapped), ``max_abs`` (largest |value| before the
    cast, as float) and ``types`` (the tensor's type); ``overflow_suggestions()`` proposes wider types."""

    output: Tensor
    traces: list[LSTMTrace]
    overflow: dict[str, int] = field(default_factory=dict)
    path: dict[str, str] = field(default_factory=dict)
    max_abs: dict[str, float] = field(default_factory=dict)
    types: dict[str, FixedType] = field(default_factory=dict)

    def values(self) -> np.ndarray:
        return self.output.value()

    def overflow_suggestions(self) -> dict[str, dict]:
        """Per overflowing tensor: ``{"count", "max_abs", "type", "suggest"}``, where ``suggest`` is the
        type with the fewest extra integer bits (same fractional bits and modes) that holds
        ``+-max_abs``, e.g. ``ap_fixed<8,2>`` with max |v| = 11.3 -> ``ap_fixed<11,5>``."""
        return suggest_types(self.overflow, self.max_abs, self.types)


def suggest_types(overflow: dict[str, int], max_abs: dict[str, float], types: dict[str, FixedType]) -> dict:
    """See `EmulationResult.overflow_suggestions` (JSON-ready: types as C++ strings)."""
    from pipeline.precision import widen_to_hold

    out = {}
    for name in sorted(overflow):
        if not overflow[name] or name not in types:
            continue
        t, m = types[name], float(max_abs.get(name, 0.0))
        wider = widen_to_hold(t, -m, m)
        layer, _, var = name.rpartition(".")
        where = ("the recipe's hls.precision (the Input layer's result type)" if name == "input" else
                 f"Precision['{var}'] of layer {layer!r} in the hls4ml config")
        out[name] = {"count": int(overflow[name]), "max_abs": m, "type": t.cpp(),
                     "suggest": wider.cpp() if wider is not None and wider != t else None, "set": where}
    return out


def _token_ids(x: Tensor, vocab: int, what: str) -> np.ndarray:
    """Token ids held in ``x`` as int64; ValueError naming ``what`` unless all are in 0..vocab-1."""
    ids = fixed.to_float(x.raw, x.type.frac).astype(np.int64)
    if ids.min() < 0 or ids.max() >= vocab:
        raise ValueError(f"{what}: token ids must be in 0..{vocab - 1}")
    return ids


def _bound(t: FixedType) -> int:
    """max |raw| over the values of type ``t`` (a Python int)."""
    return max(-t.raw_min, t.raw_max)


def _obj(a: np.ndarray) -> np.ndarray:
    """``a`` as Python integers (object array); our object arrays already hold Python ints."""
    return a if a.dtype == object else a.astype(object)


def _zeros(shape, t: FixedType) -> np.ndarray:
    return np.zeros(shape, np.int64 if fixed.fits_int64(t) else object)


def _mul(a: np.ndarray, b: np.ndarray, bound: int) -> np.ndarray:
    """Exact a * b (broadcasting); ``bound`` >= max |a * b| (from the operand types): int64 when the
    bound is below 2^63, else Python integers."""
    if bound < fixed.INT64_LIMIT and a.dtype != object and b.dtype != object:
        return a * b
    return _obj(a) * _obj(b)


def _align_add(a_raw, fa, b_raw, fb, bound_a: int | None = None, bound_b: int | None = None):
    """Exact a + b of raw integers with fa and fb fractional bits; returns (raw, frac). ``bound_a``/
    ``bound_b`` bound |a| and |b| (None: measured); int64 only when the aligned sum's bound is < 2^63."""
    f = max(fa, fb)
    ba = fixed.max_abs(a_raw) if bound_a is None else bound_a
    bb = fixed.max_abs(b_raw) if bound_b is None else bound_b
    if (ba << (f - fa)) + (bb << (f - fb)) >= fixed.INT64_LIMIT or a_raw.dtype == object or b_raw.dtype == object:
        a_raw, b_raw = _obj(np.asarray(a_raw)), _obj(np.asarray(b_raw))
    return (a_raw << (f - fa)) + (b_raw << (f - fb)), f


def _shifted_sum(terms) -> np.ndarray:
    """Exact sum of ``a << k`` over ``terms`` [(a, k), ...] (k >= 0, broadcasting): int64 when the
    measured bound (sum of max |a| * 2^k) is below 2^63, else Python integers."""
    bound = sum(fixed.max_abs(a) << k for a, k in terms)
    wide = bound >= fixed.INT64_LIMIT or any(a.dtype == object for a, _ in terms)
    total = None
    for a, k in terms:
        a = _obj(a) if wide else a.astype(np.int64, copy=False)
        part = a << k if k else a
        total = part if total is None else total + part
    return total


class _Counter:
    """Per tensor name: overflow count, the type, and the largest |value| that reached a cast of it in
    which it overflowed (the values a wider type must hold; measured only then, which keeps the
    column-by-column sequential path fast). A value that fits the type needs no wider one, so this is
    all a suggestion needs."""

    def __init__(self):
        self.counts: dict[str, int] = {}
        self.max_abs: dict[str, float] = {}
        self.types: dict[str, FixedType] = {}

    def record(self, name: str, t: FixedType, n: int, max_abs: float) -> None:
        self.types[name] = t
        if max_abs > self.max_abs.get(name, -1.0):
            self.max_abs[name] = max_abs
        if n:
            self.counts[name] = self.counts.get(name, 0) + n

    def cast(self, raw, frac, t: FixedType, name: str):
        out, n = fixed.cast_counting(raw, frac, t)
        if n:
            raw = np.asarray(raw)
            peak = max(int(raw.max()), -int(raw.min()))
            self.record(name, t, n, float(peak) * 2.0 ** -frac)
        return out


class _IntMatrix:
    """An integer weight matrix (int64, or Python integers when its values do not fit int64), kept
    also as float64, with its largest column sum of |w| as an exact Python int (for the bounds)."""

    def __init__(self, raw: np.ndarray):
        raw = np.asarray(raw)
        self.small = raw.dtype != object
        self.raw = raw.astype(np.int64) if self.small else raw
        rows = max(raw.shape[0], 1)
        if self.small and fixed.max_abs(raw) * rows < fixed.INT64_LIMIT:
            self.col_abs_sum = int(np.abs(self.raw).sum(axis=0).max(initial=0))
        else:
            self.col_abs_sum = max((sum(abs(int(v)) for v in col) for col in _obj(raw).T), default=0)
        self.f64 = self.raw.astype(np.float64) if self.small else None
        self._exact = None

    def exact(self) -> np.ndarray:
        if self._exact is None:
            self._exact = _obj(self.raw)
        return self._exact


def _exact_matmul(a_raw: np.ndarray, w: _IntMatrix) -> np.ndarray:
    """Integer a @ w, exactly. Every partial sum is bounded by B = max |a| * max column sum of |w|
    (exact Python ints): float64 BLAS when B < 2^53, int64 when B < 2^63, else Python integers."""
    bound = fixed.max_abs(a_raw) * w.col_abs_sum
    if a_raw.dtype != object and w.small:
        if bound < 2**53:
            return (a_raw.astype(np.float64) @ w.f64).astype(np.int64)
        if bound < fixed.INT64_LIMIT:
            return a_raw.astype(np.int64) @ w.raw
    return _obj(a_raw) @ w.exact()


def _fast_ok(acc_t: FixedType, *operand_fracs: int) -> bool:
    """One exact sum cast once equals the C++'s per-addition casts: a wrapping accumulator that keeps
    every fractional bit of its terms (the sum itself is exact at any width, see `_shifted_sum`)."""
    return acc_t.o_mode == "AP_WRAP" and all(acc_t.frac >= f for f in operand_fracs)


class _LSTM:
    def __init__(self, layer: LSTMIR):
        self.name = layer.name
        self.n_in = layer.n_in
        self.units = layer.units
        self.steps = layer.steps
        self.lanes = layer.lanes
        self.return_sequences = layer.return_sequences
        self.prune = layer.prune
        self.prune_last = layer.prune_last  # False: h_T is not pruned
        self.token_input = layer.token_input  # folded Embedding (pipeline.hls.fold)
        self.skip_zeros = layer.skip_zeros  # the engine's setting; `run` takes the mode
        self.kernel = layer.kernel
        self.recurrent = layer.recurrent
        self.bias = layer.bias
        self.sig = layer.sigmoid_table
        self.tanh = layer.tanh_table
        self.accum_t = layer.accum_t
        self.cell_t = layer.cell_t
        self.table_t = layer.table_t
        self.result_t = layer.result_t
        bits = layer.table_bits
        self.table_size = 1 << bits
        self.sig_index_t = FixedType(bits, 4, True, "AP_TRN", "AP_SAT")
        self.tanh_index_t = FixedType(bits, 3, True, "AP_TRN", "AP_SAT")
        thr_t = self.table_t if self.prune == "output_gate" else self.result_t
        thr = quantise_threshold(layer.threshold, thr_t)
        self.thr_raw = int(round(thr * 2.0**thr_t.frac))
        self.shape = accelerator.LayerShape(self.n_in, self.units, self.lanes, self.token_input)
        kr = self.kernel.raw.reshape(self.n_in, 4 * self.units)
        rr = self.recurrent.raw.reshape(self.units, 4 * self.units)
        self.engine_chunks = int(layer.weight_chunks)  # the project's engine: KE > 0 weight-sparse
        ke = 0 if self.token_input else accelerator.weight_chunks_for((kr, rr), self.lanes)
        # the weight-sparse engine's KE: the project's, or, where it streams dense weights, what the weights allow
        self.weight_chunks = self.engine_chunks or (ke if ke < self.shape.col_cycles else 0)
        self.weight_bits = (self.kernel.type.width + (0 if self.kernel.type.signed else 1),
                            self.recurrent.type.width + (0 if self.recurrent.type.signed else 1))
        self.weight_density = float(np.count_nonzero(kr) + np.count_nonzero(rr)) / max(1, kr.size + rr.size)
        self._w = _IntMatrix(kr)
        self._wr = _IntMatrix(rr)

    def _lut(self, table: Tensor, index_t: FixedType, raw, frac):
        """table[code + N/2], code = (ap_fixed<n, r+1, AP_TRN, AP_SAT>) raw: a floor shift and a clip
        (the same cast as `fixed.cast`, specialised: this is the emulator's hot loop)."""
        shift = frac - index_t.frac
        half = self.table_size // 2
        if raw.dtype == object or not 0 <= shift <= 62:  # Python integers, or a left shift: the exact cast
            code = fixed.cast(raw, frac, index_t)
        else:
            code = raw >> shift
            np.clip(code, -half, half - 1, out=code)
        code += half
        return table.raw[code]

    def run(self, x: Tensor, counter: _Counter, keep_states: bool, force_sequential: bool, sparse: bool):
        n, steps, h_units = x.raw.shape[0], self.steps, self.units
        fx, fh = x.type.frac, self.result_t.frac
        acc_t = self.accum_t
        fw, fwr = self.kernel.type.frac, self.recurrent.type.frac
        if self.token_input:  # token ids; the input term is the row kernel[v_t] (fx = 0: the row's own grid)
            ids = _token_ids(x, self.n_in, f"layer {self.name!r} (folded Embedding)").reshape(n, steps)
            fx = 0
            x_raw = None
        else:
            x_raw = x.raw.reshape(n, steps, self.n_in)
        fast = not force_sequential and _fast_ok(acc_t, fw + fx, fwr + fh, self.bias.type.frac)
        w = self.kernel.raw.reshape(self.n_in, 4 * h_units)
        wr = self.recurrent.raw.reshape(h_units, 4 * h_units)
        bias_acc = counter.cast(self.bias.raw, self.bias.type.frac, acc_t, f"{self.name}.accum")
        h = _zeros((n, h_units), self.result_t)
        c = _zeros((n, h_units), self.cell_t)
        nnz_x = np.zeros((n, steps), np.int64)
        nnz_h = np.zeros((n, steps), np.int64)
        outs = _zeros((n, steps, h_units), self.result_t) if (self.return_sequences or keep_states) else None
        # bounds of |raw| of every product and sum (from the types), for the int64-or-Python-int choice
        b_acc, b_tab, b_cell = _bound(acc_t), _bound(self.table_t), _bound(self.cell_t)
        b_x = _bound(self.kernel.type) if self.token_input else _bound(x.type) * _bound(self.kernel.type)
        b_h = _bound(self.result_t) * _bound(self.recurrent.type)
        ft = self.table_t.frac
        for t in range(steps):
            if self.token_input:
                nnz_x[:, t] = 1  # one row per token (a one-hot input)
                x_term = w[ids[:, t]]  # (n, 4H) raw rows, fw fractional bits
            else:
                xt = x_raw[:, t, :]
                nnz_x[:, t] = np.count_nonzero(xt, axis=1)
            nnz_h[:, t] = np.count_nonzero(h, axis=1)
            if fast:
                x_part = x_term if self.token_input else _exact_matmul(xt, self._w)
                total = _shifted_sum([(np.broadcast_to(bias_acc, (n, 4 * h_units)), 0),
                                      (x_part, acc_t.frac - fw - fx),
                                      (_exact_matmul(h, self._wr), acc_t.frac - fwr - fh)])
                acc = counter.cast(total, acc_t.frac, acc_t, f"{self.name}.accum")
            else:
                acc = np.array(np.broadcast_to(bias_acc, (n, 4 * h_units)))  # a copy, bias_acc's dtype
                if self.token_input:  # acc += row (the C++ ChunkLoop, no multiply), the same in both modes
                    s, fs = _align_add(acc, acc_t.frac, x_term, fw, b_acc, b_x)
                    acc = counter.cast(s, fs, acc_t, f"{self.name}.accum")
                streams = ([(h, wr, fwr + fh, b_h)] if self.token_input else
                           [(xt, w, fw + fx, b_x), (h, wr, fwr + fh, b_h)])
                for cols, wmat, fp, b_prod in streams:
                    for j in range(cols.shape[1]):
                        v = cols[:, j : j + 1]
                        # sparse mode streams only the nonzero columns; dense mode streams all
                        live = (v != 0).ravel() if sparse else np.ones(n, bool)
                        if not live.any():
                            continue
                        prod = _mul(v[live], wmat[j][None, :], b_prod)
                        s, fs = _align_add(acc[live], acc_t.frac, prod, fp, b_acc, b_prod)
                        acc[live] = counter.cast(s, fs, acc_t, f"{self.name}.accum")
            fa = acc_t.frac
            # i, f, o through the sigmoid LUT (one lookup over all 4H, the c columns unused), g through tanh
            sig = self._lut(self.sig, self.sig_index_t, acc, fa)
            gi, gf, go = sig[:, :h_units], sig[:, h_units : 2 * h_units], sig[:, 3 * h_units :]
            gg = self._lut(self.tanh, self.tanh_index_t, acc[:, 2 * h_units : 3 * h_units], fa)
            prune_now = self.prune_last or t + 1 < steps
            if self.prune == "output_gate" and prune_now:
                go = np.where(go > self.thr_raw, go, 0)
            s, fs = _align_add(_mul(gf, c, b_tab * b_cell), ft + self.cell_t.frac, _mul(gi, gg, b_tab * b_tab), 2 * ft,
                               b_tab * b_cell, b_tab * b_tab)
            c = counter.cast(s, fs, self.cell_t, f"{self.name}.cell")
            tc = self._lut(self.tanh, self.tanh_index_t, c, self.cell_t.frac)
            h = counter.cast(_mul(go, tc, b_tab * b_tab), 2 * ft, self.result_t, f"{self.name}.result")
            if self.prune == "state" and prune_now:
                h = np.where((h > self.thr_raw) | (h < -self.thr_raw), h, 0)
            if outs is not None:
                outs[:, t, :] = h
        trace = LSTMTrace(self.name, self.shape, nnz_x, nnz_h, outs if keep_states else None, self.weight_chunks,
                          self.weight_density, self.weight_bits, self.engine_chunks)
        out = outs.reshape(n, -1) if self.return_sequences else h
        return Tensor(out, self.result_t), trace, ("fast" if fast else "sequential")


class _Dense:
    """hls4ml Dense (dense_latency), or PointwiseConv1D (a Dense applied at every time step, which
    is what hls4ml makes of a Dense after a sequence; conv_1d_latency_cl has the same cast order)."""

    def __init__(self, layer: DenseIR):
        self.name = layer.name
        self.w = layer.weight
        self.b = layer.bias
        self.accum_t = layer.accum_t
        self.result_t = layer.result_t
        self.n_in = layer.n_in
        self.n_out = layer.n_out
        self.width = layer.width
        self._w = _IntMatrix(self.w.raw.reshape(self.n_in, self.n_out))

    def run(self, x: Tensor, counter: _Counter, force_sequential: bool):
        acc_t, fx, fw = self.accum_t, x.type.frac, self.w.type.frac
        w = self.w.raw.reshape(self.n_in, self.n_out)
        n_seq = x.raw.shape[0]
        xr = x.raw.reshape(n_seq * self.width, -1)
        n = xr.shape[0]
        if xr.shape[1] != self.n_in:
            raise ValueError(f"Dense {self.name!r}: expected {self.n_in} inputs, got {xr.shape[1]}")
        acc = np.broadcast_to(counter.cast(self.b.raw, self.b.type.frac, acc_t, f"{self.name}.accum"),
                              (n, self.n_out))
        if not force_sequential and _fast_ok(acc_t, fx + fw):
            total = _shifted_sum([(acc, 0), (_exact_matmul(xr, self._w), acc_t.frac - fx - fw)])
            acc = counter.cast(total, acc_t.frac, acc_t, f"{self.name}.accum")
            path = "fast"
        else:
            # hls4ml dense_latency: mult[i] = (accum_t)(x * w); acc = (accum_t)b; acc += mult[i] in order.
            acc = np.array(acc)  # a copy
            b_prod, b_acc = _bound(x.type) * _bound(self.w.type), _bound(acc_t)
            for j in range(self.n_in):
                prod = counter.cast(_mul(xr[:, j : j + 1], w[j][None, :], b_prod), fx + fw, acc_t, f"{self.name}.accum")
                s, fs = _align_add(acc, acc_t.frac, prod, acc_t.frac, b_acc, b_acc)
                acc = counter.cast(s, fs, acc_t, f"{self.name}.accum")
            path = "sequential"
        out = counter.cast(acc, acc_t.frac, self.result_t, f"{self.name}.result").reshape(n_seq, -1)
        return Tensor(out, self.result_t), path


def _recipe_of(project: Path) -> str:
    """The recipe name of a project folder for a hint: ``hls_project/<recipe>`` or ``.../<recipe>/seed<N>``."""
    import re

    return project.parent.name if re.fullmatch(r"seed\d+", project.name) and project.parent.name else project.name


class Emulator:
    """Emulate a generated model in both accelerator modes: from its `pipeline.ir.ModelIR` (what the hls
    stage saves, `from_project`), or from an hls4ml `ModelGraph` (read by `pipeline.hls.extract.extract_ir`,
    registered with `pipeline.ir` by `pipeline.hls.register()`, which `generate`/`convert` call)."""

    def __init__(self, model: ModelIR | object, force_sequential: bool = False):
        """``model``: a `pipeline.ir.ModelIR`, or an hls4ml ``ModelGraph`` (`pipeline.ir.from_graph`).
        ``force_sequential``: cast every addition in the C++ order even where one exact sum is equal."""
        ir = model if isinstance(model, ModelIR) else model_ir.from_graph(model)
        self.ir = ir
        self.ops = []
        self.force_sequential = force_sequential
        self.input_t = ir.input_t
        self.input_shape = tuple(ir.input_shape)
        for layer in ir.layers:
            if layer.kind == "lstm":
                self.ops.append(("lstm", _LSTM(layer)))
            elif layer.kind == "dense":
                self.ops.append(("dense", _Dense(layer)))
            elif layer.kind == "activation":
                if layer.activation not in ("relu", "linear"):
                    raise ValueError(f"layer {layer.name!r}: activation {layer.activation!r} is not supported by "
                                     "the SkipLSTM emulator (relu, linear)")
                self.ops.append((layer.activation, layer.name, layer.result_t))
            elif layer.kind == "embedding":
                self.ops.append(("embedding", layer.name, layer.embeddings, layer.result_t, layer.dim))
            else:  # pragma: no cover - ModelIR holds the four kinds only
                raise ValueError(f"layer {layer.name!r}: unknown IR layer kind {layer.kind!r}")

    @classmethod
    def from_ir(cls, ir: ModelIR, force_sequential: bool = False) -> Emulator:
        """The emulator of a `pipeline.ir.ModelIR` (e.g. `pipeline.ir.load`'s)."""
        if not isinstance(ir, ModelIR):
            raise TypeError(f"expected a pipeline.ir.ModelIR, got {type(ir).__name__}")
        return cls(ir, force_sequential=force_sequential)

    @classmethod
    def from_project(cls, project_dir: str | Path, force_sequential: bool = False,
                     skip_zeros: bool | None = None, hint: str | None = None) -> Emulator:
        """The emulator of the model the hls stage generated into ``project_dir`` (its saved IR,
        ``skiplstm_ir.json`` + ``skiplstm_ir.npz``; `pipeline.ir.load`). ``skip_zeros``: None keeps the
        generated setting, False gives the dense-only engine's IR (`ModelIR.with_skip_zeros`).

        FileNotFoundError naming the project when it holds no IR (not generated, or generated by older
        code), saying "run the hls stage first (<hint>)", ``hint`` defaulting to ``make hls MODEL=<the
        project's recipe>``; `pipeline.ir.InvalidIRError` (a ValueError) naming the file when it is not
        a valid IR."""
        project = Path(project_dir)
        hint = f"run the hls stage first ({hint or f'make hls MODEL={_recipe_of(project)}'})"
        if not (project / model_ir.IR_FILE).is_file():
            what = "does not exist" if not project.exists() else f"holds no saved IR ({model_ir.IR_FILE})"
            raise FileNotFoundError(f"generated project {str(project)!r} {what}: {hint}")
        try:
            ir = model_ir.load(project)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"generated project {str(project)!r} is incomplete ({err}): {hint}") from None
        if skip_zeros is not None:
            ir = ir.with_skip_zeros(skip_zeros)
        return cls(ir, force_sequential=force_sequential)

    def run(self, x, keep_states: bool = False, mode: str = "sparse") -> EmulationResult:
        """Run float inputs ``x`` (N, *input_shape) through the accelerator; exact fixed point.

        ``mode``: ``"sparse"`` (skip zero columns) or ``"dense"`` (stream all columns). On the fast
        path both are one exact matmul (adding 0 * w changes nothing modulo 2^W); on the sequential
        path they run different column loops.
        """
        if mode not in ("sparse", "dense"):
            raise ValueError(f"mode must be 'sparse' or 'dense', got mode={mode!r}")
        x = np.asarray(x)
        if x.dtype.kind == "c":
            raise ValueError(f"inputs must be real numbers, got complex values (dtype {x.dtype}); pass the real "
                             "part explicitly (x.real) if that is what you mean")
        if x.dtype.kind not in "biuf":  # object, strings, bytes, datetimes, structured
            raise ValueError(f"inputs must be numeric, got dtype {x.dtype} (expected a real integer or "
                             "floating-point array)")
        if x.ndim < 1 or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"inputs must have shape (N, {', '.join(map(str, self.input_shape))}), got {x.shape}")
        if x.shape[0] == 0:
            raise ValueError("inputs are empty (N = 0)")
        if not np.all(np.isfinite(x)):
            raise ValueError("inputs contain NaN or Inf")
        counter = _Counter()
        raw, n_over = fixed.from_float_counting(x.reshape(x.shape[0], -1).astype(np.float64), self.input_t)
        if n_over:
            counter.record("input", self.input_t, n_over, float(np.abs(x).max()))
        cur = Tensor(raw, self.input_t)
        traces, paths = [], {}
        for op in self.ops:
            kind = op[0]
            if kind == "lstm":
                cur, trace, paths[op[1].name] = op[1].run(cur, counter, keep_states, self.force_sequential,
                                                         mode == "sparse")
                traces.append(trace)
            elif kind == "dense":
                cur, paths[op[1].name] = op[1].run(cur, counter, self.force_sequential)
            elif kind in ("relu", "linear"):
                _, name, t = op
                r = np.where(cur.raw > 0, cur.raw, 0) if kind == "relu" else cur.raw
                cur = Tensor(counter.cast(r, cur.type.frac, t, f"{name}.result"), t)
            elif kind == "embedding":
                _, name, table, t, dim = op
                vocab = table.raw.size // dim
                ids = _token_ids(cur, vocab, f"Embedding {name!r}")
                rows = table.raw.reshape(vocab, dim)[ids]
                cur = Tensor(counter.cast(rows.reshape(ids.shape[0], -1), table.type.frac, t, f"{name}.result"), t)
        return EmulationResult(cur, traces, counter.counts, paths, counter.max_abs, counter.types)

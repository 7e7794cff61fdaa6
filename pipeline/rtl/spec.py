"""One SparseStateLSTM layer as the RTL generator sees it: sizes, raw integer weights and tables, and
the fixed-point types of every tensor, taken from the emulator's `pipeline.emulator._LSTM` (so the
RTL computes from the very integers and types the emulator and the C++ use).

`LayerSpec.from_emulator(lstm, input_type)` is the one constructor the rest of `pipeline.rtl` needs;
`check` refuses, with the type and the tensor named, what the RTL cannot build.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from pipeline import accelerator
from pipeline.fixed import O_MODES, Q_MODES, FixedType


def container_width(t: FixedType) -> int:
    """Bits of the signed two's-complement word that holds a raw value of ``t`` in the RTL:
    W for ap_fixed, W + 1 for ap_ufixed (a zero sign bit, so every product and sum is signed)."""
    return t.width + (0 if t.signed else 1)


def q_code(t: FixedType) -> int:
    """The cast module's Q_MODE parameter (index in `fixed.Q_MODES`)."""
    return Q_MODES.index(t.q_mode)


def o_code(t: FixedType) -> int:
    """The cast module's O_MODE parameter (index in `fixed.O_MODES`)."""
    return O_MODES.index(t.o_mode)


def verilog_name(name: str, prefix: str = "skiplstm_") -> str:
    """A Verilog identifier from a layer name: ASCII letters, digits and ``_`` only, behind ``prefix``
    (so it can be no keyword and never starts with a digit)."""
    body = re.sub(r"[^A-Za-z0-9_]", "_", str(name).encode("ascii", "replace").decode("ascii"))
    return f"{prefix}{body or 'layer'}"


@dataclass(frozen=True)
class LayerSpec:
    """Everything the RTL of one layer needs (raw integers: value = raw * 2^-type.frac)."""

    name: str
    n_in: int  # input columns (the vocabulary size V for token input)
    units: int  # H
    lanes: int  # P (divides H)
    steps: int  # T
    token_input: bool  # a folded Embedding: the input is one token id per step
    return_sequences: bool
    prune: str  # "state" or "output_gate"
    prune_last: bool
    thr_raw: int  # threshold, raw, in result_t (state) or table_t (output_gate)
    input_t: FixedType  # type of the layer's input tensor (token ids: an integer type)
    kernel_t: FixedType
    recurrent_t: FixedType
    bias_t: FixedType
    accum_t: FixedType
    cell_t: FixedType
    table_t: FixedType
    result_t: FixedType
    sig_index_t: FixedType
    tanh_index_t: FixedType
    table_bits: int
    kernel: np.ndarray  # (n_in, 4H) raw; rows of the folded table for token input
    recurrent: np.ndarray  # (H, 4H) raw
    bias: np.ndarray  # (4H,) raw
    sigmoid: np.ndarray  # (2^table_bits,) raw table_t
    tanh: np.ndarray  # (2^table_bits,) raw table_t
    weight_chunks: int = 0  # KE > 0: the weight-sparse engine (KE (value, row) pairs a column and lane)

    # ------------------------------------------------------------------------------------- building
    @classmethod
    def from_emulator(cls, lstm, input_type: FixedType) -> LayerSpec:
        """From an emulator layer (`pipeline.emulator._LSTM`) and the type of the tensor fed to it
        (the network input's type for the first layer, the previous layer's ``result_t`` for a
        stacked one, the token id type for a folded embedding)."""
        h = int(lstm.units)
        spec = cls(
            name=str(lstm.name), n_in=int(lstm.n_in), units=h, lanes=int(lstm.lanes), steps=int(lstm.steps),
            token_input=bool(lstm.token_input), return_sequences=bool(lstm.return_sequences),
            prune=str(lstm.prune), prune_last=bool(lstm.prune_last), thr_raw=int(lstm.thr_raw),
            input_t=input_type, kernel_t=lstm.kernel.type, recurrent_t=lstm.recurrent.type,
            bias_t=lstm.bias.type, accum_t=lstm.accum_t, cell_t=lstm.cell_t, table_t=lstm.table_t,
            result_t=lstm.result_t, sig_index_t=lstm.sig_index_t, tanh_index_t=lstm.tanh_index_t,
            table_bits=int(lstm.table_size).bit_length() - 1,
            kernel=np.asarray(lstm.kernel.raw, np.int64).reshape(int(lstm.n_in), 4 * h),
            recurrent=np.asarray(lstm.recurrent.raw, np.int64).reshape(h, 4 * h),
            bias=np.asarray(lstm.bias.raw, np.int64).reshape(4 * h),
            sigmoid=np.asarray(lstm.sig.raw, np.int64).ravel(), tanh=np.asarray(lstm.tanh.raw, np.int64).ravel(),
        )
        spec.check()
        return spec

    # ------------------------------------------------------------------------------------- derived
    @property
    def shape(self) -> accelerator.LayerShape:
        return accelerator.LayerShape(self.n_in, self.units, self.lanes, self.token_input, self.weight_chunks)

    def needed_chunks(self) -> int:
        """KE the weight-sparse engine needs for these weights (`pipeline.accelerator.weight_chunks_for`)."""
        return accelerator.weight_chunks_for((self.kernel, self.recurrent), self.lanes)

    def weight_sparse(self, chunks: int | None = None) -> LayerSpec:
        """This layer on the weight-sparse engine: KE = ``chunks`` (default: what its weights need)."""
        return replace(self, weight_chunks=self.needed_chunks() if chunks is None else int(chunks))

    @property
    def module(self) -> str:
        """The Verilog module name of this layer's engine."""
        return verilog_name(self.name)

    def types(self) -> dict[str, FixedType]:
        """Every type the RTL implements, by tensor."""
        return {"input": self.input_t, "kernel": self.kernel_t, "recurrent": self.recurrent_t,
                "bias": self.bias_t, "accum": self.accum_t, "cell": self.cell_t, "table": self.table_t,
                "result": self.result_t, "sigmoid_index": self.sig_index_t, "tanh_index": self.tanh_index_t}

    def check(self) -> None:
        """ValueError, naming the layer, the tensor and its type, for what the RTL cannot build."""
        accelerator.check_lanes(self.lanes, self.units)
        where = f"layer {self.name!r}"
        for what, t in self.types().items():
            if t.q_mode not in Q_MODES or t.o_mode not in O_MODES:  # pragma: no cover - FixedType validates
                raise ValueError(f"{where}: {what} type {t} has a mode the RTL cast does not implement "
                                 f"(supported: {Q_MODES} x {O_MODES})")
            if t.signed and t.width < 2:
                raise ValueError(f"{where}: {what} type {t} is a 1-bit signed type; the RTL needs W >= 2")
        if self.token_input and self.input_t.frac != 0:
            raise ValueError(f"{where}: token input needs an integer id type (0 fractional bits), got "
                             f"{self.input_t} for the input")
        if self.prune not in ("state", "output_gate"):
            raise ValueError(f"{where}: prune must be 'state' or 'output_gate', got {self.prune!r}")
        if self.steps < 1 or self.n_in < 1 or self.units < 1:
            raise ValueError(f"{where}: sizes must be positive (T={self.steps}, n_in={self.n_in}, H={self.units})")
        if self.weight_chunks:
            if self.token_input:
                raise ValueError(f"{where}: the weight-sparse engine does not take a folded embedding (its rows "
                                 "are dense): generate this layer with weight_chunks = 0")
            need, c = self.needed_chunks(), self.shape.col_cycles
            if not need <= self.weight_chunks <= c:
                raise ValueError(f"{where}: weight_chunks must be in [{need}, C = {c}] (the largest nonzero count of "
                                 f"a lane's share of a column, at least PICK_DEPTH = {accelerator.PICK_DEPTH}), got "
                                 f"weight_chunks = {self.weight_chunks}")
        n = 1 << self.table_bits
        if self.sigmoid.size != n or self.tanh.size != n:
            raise ValueError(f"{where}: LUTs must hold 2^table_bits = {n} entries, got "
                             f"{self.sigmoid.size} and {self.tanh.size}")
        for label, raw, t in (("kernel", self.kernel, self.kernel_t), ("recurrent", self.recurrent, self.recurrent_t),
                              ("bias", self.bias, self.bias_t), ("sigmoid table", self.sigmoid, self.table_t),
                              ("tanh table", self.tanh, self.table_t)):
            if raw.size and (int(raw.min()) < t.raw_min or int(raw.max()) > t.raw_max):
                raise ValueError(f"{where}: {label} values do not fit their type {t}")

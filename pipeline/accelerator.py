"""The sparse-state LSTM accelerator's cost model: cycles, MACs, weight reads and an energy proxy.

One source of truth: the C++ kernel (templates/nnet_sparse_lstm.h) counts, in C-simulation, every
iteration of every loop it runs plus the named drain depth of each pipelined loop it enters; the RTL
twin (pipeline/rtl) is built to the same schedule and its clock cycles are measured in Verilator; the
emulator calls the functions below; the tests hold all three equal.

One layer with n_in inputs, H units and P lanes (parallel multipliers); P must divide H (and so 4H):

    C  = 4H / P          chunks: cycles to stream one weight column (4H words) through P lanes
    U  = H / P           gate iterations: P units per cycle
    XS = ceil(n_in / P)  x-scan iterations: P inputs compared with 0 per cycle (sparse mode only;
                         0 for a folded embedding, whose input is one token id)
    G  = max(U, XS)      sparse mode (the scan of x_{t+1} runs inside the gate loop of step t)
       = U               dense mode (no scan: every column is streamed)

Per sequence (start to done):

    cycles  = INIT + sum_t cycles_t
    INIT    = G + INIT_DEPTH                 acc <- bias, c <- 0, h <- 0, masks cleared, scan of x_0
    cycles_t = [cols_t > 0] * (PICK_DEPTH + cols_t * C + MAC_DEPTH) + G + GATE_DEPTH
    cols_t  = cols_x + cols_h
    cols_x  = nnz(x_t) sparse, n_in dense    (1 in both modes for token input)
    cols_h  = nnz(h_{t-1}) sparse, H dense   (h_0 = 0)

The depths are not typed in: each is the sum of the register stages of the pipeline it drains, named
below, and the RTL twin (pipeline/rtl, templates/rtl) is built stage for stage from the same numbers
(its Verilator runs measure every step against this formula, and its accumulator monitor measures
ACC_LATENCY). Stage k of a pipeline is the k-th cycle after its issue cycle; a "latency" L means a
value presented in cycle c is available in cycle c + L.

    ROM_LATENCY   = 2  block RAM read: address sampled, then the block RAM's own output register
                       (ECP5 DP16KD REGMODE OUTREG; without it the clock-to-out alone is ~5.6 ns)
    MUL_LATENCY   = 3  multiplier: input, pipeline and output registers (ECP5 MULT18X18D; an operand
                       of 19..35 bits: two multipliers with input and output registers, then the sum)
    X_LATENCY     = 2  the sequence buffer's read (registered address -> registered data)

    PICK_DEPTH = 4     the column picker, a 4-stage pipeline run one column ahead of the stream:
                       P0 lowest mask word with a pending bit, P1 that word's bits and the operand row
                       read, P2 lowest pending bit (and m & (m - 1), the word without it), P3 write-back,
                       operand and ROM base address. A step's first column waits for it; every later
                       column was picked while the one before it streamed (C >= 4 cycles).
    MAC_DEPTH  = WEIGHT_LATENCY + 1 + MUL_LATENCY + 2 - GATE_READ_STAGE = 9
                       after the last issue: the weight word out of its ROM (WEIGHT_LATENCY = 4: the
                       address registered beside the block RAMs, their two, then the selected row's word
                       registered once more, as the weights travel across the part to the lanes), the
                       lane's own input register (1), the product (3), then one stage that reads the
                       accumulator (stage 8), one that adds (9) and one that casts and writes it (10).
                       The lanes read the accumulators GATE_READ_STAGE = 1 cycle into the gate phase
                       (they register its controls themselves), so the gate phase may begin in stage 10.
    ACC_LATENCY = ACC_WRITE_STAGE - ACC_READ_STAGE + 1 = 3
                       cycles from reading an accumulator word to its new value being readable. The
                       same word is read again C cycles later (the same chunk of the next column), so
                       the stream needs C >= ACC_LATENCY: true for every legal P (P | H gives C >= 4).
    GATE_DEPTH = 21    after the last gate issue: GATE_READ_STAGE (1: each lane registers the issue, its
                       G0, and reads its four accumulator banks); G1 LUT indices; G2-G3 LUT reads
                       (ROM_LATENCY); G4 multiplier inputs f, c_{t-1}, i, g (and o > tau for output-gate
                       pruning); G5-G6 f*c and i*g (MUL_LATENCY); G7 f*c + i*g; G8 cast to c_t; G9 c_t
                       written, tanh index; G10-G11 tanh(c_t) read; G12 multiplier inputs o, tanh(c_t);
                       G13-G14 o*tanh(c_t); G15 cast to h_t; G16 threshold compare (state pruning); G17
                       pruned h_t and its nonzero bit; G18 h_t and the output written; G19 the lanes'
                       nonzero bits gathered (registered in the engine) and written to the mask; one more
                       cycle in which the step's "any column pending" flags are complete for the next
                       step's decision.
    INIT_DEPTH = X_LATENCY + 3 = 5
                       after INIT's G issue cycles: the scan of x_0's last word (address registered,
                       X_LATENCY, nonzero bits registered, mask and flags written), then the decision.

The column stream is one flattened pipelined loop over (column, chunk) per step: it pays its picker
fill PICK_DEPTH and its drain MAC_DEPTH once per step (when it runs at all), not once per column.
The nonzero lists are bit masks (h's written P bits per gate iteration, x's P bits per scan
iteration) read by the picker: compaction costs no cycles beyond G. How the depths moved (issue 28):
the first RTL (MAC_DEPTH 3, GATE_DEPTH 7, no PICK_DEPTH or INIT_DEPTH) picked a column, read its
operand and added the ROM base address in one cycle, multiplied without the multiplier's registers and
read block RAM without its output register, which set its clock (docs/ACCELERATOR.md, "Timing").

MACs and weight-word reads per step are ``4H * cols_t`` (each weight used once per step).

The weight-sparse engine (issue 31; `LayerShape.weight_chunks` = KE > 0): a second build of the same
engine whose weight ROMs hold, per column j and lane p, KE (value, row) pairs instead of the C words
W[j][c*P + p], c = 0..C-1 (lane p owns rows c*P + p, the interleaving pipeline.weight_pruning prunes by):

    K  = max over columns j and lanes p of nnz(W[j][c*P + p] : c)   (x and h columns alike)
    KE = max(K, PICK_DEPTH)    (at most C): a column costs KE cycles, not C; lanes with fewer than K
                               nonzeros hold zero-valued padding pairs (they add an exact zero)
    cycles_t = [cols > 0] * (PICK_DEPTH + cols_t * KE + MAC_DEPTH) + G + GATE_DEPTH   (the same steps)

KE >= PICK_DEPTH because the column picker's loop-carried pending mask takes PICK_DEPTH cycles a pick
(P0..P3, one column ahead of the stream), so a column shorter than that would wait for its pick: the
model and the RTL pad it instead. Each lane adds value x operand into the accumulator word its row
names, so one word can come back one cycle after it was read (two pairs of consecutive columns): the
lane forwards its last two results into the add (distance 1 and 2 < ACC_LATENCY), which keeps the
stream at one pair a cycle and exact. Weight memory: cols * KE * P * (W + 2 + ceil(log2 U)) bits
(value, gate and unit word of the row) against cols * 4H * W dense (`weight_memory_bits`).

Energy proxy (a model, not a measurement), per step:

    E_t = MACs_t * (E_MAC + E_READ) + H * (GATE_MULS * E_MAC + GATE_LUT_READS * E_READ)

the column MACs with their weight reads, plus the gate stage that runs in both modes (per unit: 3
multiplies f*c, i*g, o*tanh(c) and 5 LUT reads i, f, g, o, tanh(c)). Per-operation
energies in the range of M. Horowitz, "Computing's energy problem (and what we can do about it)",
ISSCC 2014 (45 nm): a 16-bit multiply-accumulate ~1 pJ (8-bit mult 0.2 pJ, 32-bit mult 3.1 pJ, 32-bit
add 0.1 pJ) and ~5 pJ per 16-bit word read from a small on-chip SRAM (10 pJ per 64-bit word at 8 KB).
Only the ratio dense/sparse is reported; the gate stage keeps it below the MAC ratio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROM_LATENCY = 2  # block RAM: address sampled, data out of the output register (module docstring)
WEIGHT_LATENCY = ROM_LATENCY + 2  # weight ROMs: address registered beside the RAMs, the row's word once more
MUL_LATENCY = 3  # multiplier: input, pipeline and output registers
X_LATENCY = 2  # sequence buffer read: registered address -> registered data
PICK_DEPTH = 4  # column picker stages P0..P3 before a step's first issue
ACC_READ_STAGE = WEIGHT_LATENCY + 1 + MUL_LATENCY  # reads the accumulator (after the lane's input register)
ACC_WRITE_STAGE = ACC_READ_STAGE + 2  # stage after issue that casts and writes it (the add in between)
GATE_READ_STAGE = 1  # the lanes read the accumulators one cycle into the gate phase (they register its controls)
MAC_DEPTH = ACC_WRITE_STAGE - GATE_READ_STAGE  # column-stream drain after the last issue
ACC_LATENCY = ACC_WRITE_STAGE - ACC_READ_STAGE + 1  # read of a word -> its new value readable (C >= this)
# gate stages after issue: index cast (1), LUT read (ROM_LATENCY), multiplier inputs (1), f*c, i*g
# (MUL_LATENCY - 1 more), sum (1), cell cast + write (1), tanh index (1), tanh read (ROM_LATENCY),
# multiplier inputs (1), o*tanh (MUL_LATENCY - 1 more), result cast (1), threshold compare (1), pruned
# h_t (1), h_t written (1), its nonzero bits gathered from the lanes and written to the mask (1), flags
# complete (1)
GATE_DEPTH = GATE_READ_STAGE + 1 + ROM_LATENCY + 1 + (MUL_LATENCY - 1) + 1 + 1 + 1 + ROM_LATENCY + 1 + \
    (MUL_LATENCY - 1) + 1 + 1 + 1 + 1 + 1 + 1
INIT_DEPTH = X_LATENCY + 3  # scan of x_0's last word: address, X_LATENCY, nonzero bits, mask write
E_MAC_PJ = 1.0
E_READ_PJ = 5.0
GATE_MULS = 3
GATE_LUT_READS = 5


def model_version() -> str:
    """The cycle model's name in the results ledger (``cycle_model`` of a row): its depths, so that numbers
    worked out under other depths are recognised as such (pipeline/results.py restates them)."""
    return (f"3 (INIT_DEPTH {INIT_DEPTH}, PICK_DEPTH {PICK_DEPTH}, MAC_DEPTH {MAC_DEPTH}, GATE_DEPTH {GATE_DEPTH})")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def valid_lanes(units: int) -> list[int]:
    """The lane counts the kernel accepts for H units: the divisors of H."""
    return [p for p in range(1, units + 1) if units % p == 0]


def check_lanes(lanes: int, units: int) -> int:
    """P must divide H (so that a chunk of P words never straddles two gates and every accumulator,
    state and table bank is addressed by its lane alone); the error names the nearest valid counts."""
    if isinstance(lanes, bool) or not isinstance(lanes, int | np.integer) or lanes < 1:
        raise ValueError(f"lanes must be a positive integer dividing units = {units}, got lanes={lanes!r}")
    lanes = int(lanes)
    if units % lanes:
        ok = valid_lanes(units)
        below = [p for p in ok if p < lanes]
        above = [p for p in ok if p > lanes]
        near = ", ".join(str(p) for p in ([below[-1]] if below else []) + ([above[0]] if above else []))
        raise ValueError(f"lanes must divide units = {units} (P | H: a chunk of P gate words must not straddle "
                         f"two gates), got lanes={lanes}; nearest valid lane counts: {near}")
    return lanes


@dataclass(frozen=True)
class LayerShape:
    n_in: int
    units: int
    lanes: int
    token_input: bool = False  # a folded Embedding: one row per step, in both modes (pipeline.hls.fold)
    weight_chunks: int = 0  # KE > 0: the weight-sparse engine, KE (value, row) pairs a column and lane

    @property
    def weight_sparse(self) -> bool:
        """The weight-sparse engine (columns of KE pairs), not the dense-weight one (columns of C words)."""
        return self.weight_chunks > 0

    @property
    def stream_chunks(self) -> int:
        """Cycles a streamed column costs: KE on the weight-sparse engine, C = 4H / P otherwise."""
        return self.weight_chunks if self.weight_chunks else self.col_cycles

    @property
    def dense_cols_x(self) -> int:
        """Input columns per step in dense mode: n_in, or 1 for token input."""
        return 1 if self.token_input else self.n_in

    @property
    def col_cycles(self) -> int:
        """C = 4H / P: cycles per weight column."""
        return 4 * self.units // self.lanes

    @property
    def unit_iters(self) -> int:
        """U = H / P: gate iterations."""
        return self.units // self.lanes

    @property
    def scan_iters(self) -> int:
        """XS = ceil(n_in / P): x-scan iterations (0 for token input)."""
        return 0 if self.token_input else ceil_div(self.n_in, self.lanes)

    def gate_iters(self, sparse: bool) -> int:
        """G: iterations of the gate loop (and of the init loop): max(U, XS) sparse, U dense."""
        return max(self.unit_iters, self.scan_iters) if sparse else self.unit_iters

    def init_cycles(self, sparse: bool) -> int:
        """INIT = G + INIT_DEPTH, once per sequence."""
        return self.gate_iters(sparse) + INIT_DEPTH


def lane_nonzeros(matrix: np.ndarray, lanes: int) -> np.ndarray:
    """(n_cols, 4H) weights -> (n_cols, P) nonzero counts of each lane's share of each column (lane p
    holds rows c*P + p, c = 0..4H/P - 1)."""
    m = np.asarray(matrix)
    n_cols, rows = m.shape
    return np.count_nonzero(m.reshape(n_cols, rows // lanes, lanes), axis=1)


def weight_chunks_for(matrices, lanes: int) -> int:
    """KE = max(K, PICK_DEPTH) (at most C) for the weight-sparse engine of a layer whose streamed weight
    matrices (raw or float, (n_cols, 4H) each) are ``matrices``: K the largest nonzero count of any lane's
    share of any column."""
    ms = [np.asarray(m) for m in matrices]
    c = ms[0].shape[1] // lanes
    k = max((int(lane_nonzeros(m, lanes).max()) if m.size else 0) for m in ms)
    return min(c, max(k, PICK_DEPTH))


def row_word_bits(units: int, lanes: int) -> int:
    """Bits of the unit word in a pair's row (gate << bits | word): ceil(log2 U), at least 1."""
    return max(1, (units // lanes - 1).bit_length())


def weight_pairs(matrix: np.ndarray, lanes: int, chunks: int) -> tuple[np.ndarray, np.ndarray]:
    """The weight-sparse engine's pairs of a (n_cols, 4H) weight matrix: ``values`` and ``rows``, both
    (n_cols, KE, P): pair k of lane p in column j is the k-th nonzero W[j][c*P + p] (c ascending), its row
    ``(c // U) << row_word_bits | c % U`` (gate, unit word); lanes with fewer than KE nonzeros are padded
    with value 0, row 0 (an exact zero added to gate 0, word 0). ValueError when a lane's share of a
    column holds more than KE nonzeros."""
    m = np.asarray(matrix)
    n_cols, rows_4h = m.shape
    c_total, u = rows_4h // lanes, rows_4h // 4 // lanes
    uw = row_word_bits(rows_4h // 4, lanes)
    share = m.reshape(n_cols, c_total, lanes)  # share[j, c, p] = W[j][c*P + p]
    values = np.zeros((n_cols, chunks, lanes), m.dtype)
    rows = np.zeros((n_cols, chunks, lanes), np.int64)
    nnz = share != 0
    counts = nnz.sum(axis=1)
    if counts.size and int(counts.max()) > chunks:
        j, p = (int(v) for v in np.argwhere(counts > chunks)[0])
        raise ValueError(f"column {j}, lane {p} holds {int(counts[j, p])} nonzero weights, more than the {chunks} "
                         "pairs a column of the weight-sparse engine has")
    # position of each nonzero within its (column, lane): its rank among the nonzeros above it
    rank = np.cumsum(nnz, axis=1) - 1
    j_idx, c_idx, p_idx = np.nonzero(nnz)
    k_idx = rank[j_idx, c_idx, p_idx]
    values[j_idx, k_idx, p_idx] = share[j_idx, c_idx, p_idx]
    rows[j_idx, k_idx, p_idx] = ((c_idx // u) << uw) | (c_idx % u)
    return values, rows


def weight_memory_bits(shape: LayerShape, value_bits: tuple[int, int]) -> dict:
    """Weight ROM bits of a layer: ``dense`` = n_x * 4H * W_x + H * 4H * W_h (the dense-weight engines)
    and, with ``shape.weight_chunks`` = KE, ``sparse`` = (n_x * KE * P) (W_x + IW) + (H * KE * P) (W_h + IW),
    IW = 2 + ceil(log2 U) the row index (gate, unit word) of a pair; ``value_bits`` = (W_x, W_h). n_x = n_in
    (the folded rows, dense, for token input)."""
    wx, wh = value_bits
    h4 = 4 * shape.units
    out = {"dense": shape.n_in * h4 * wx + shape.units * h4 * wh}
    if shape.weight_chunks:
        iw = 2 + row_word_bits(shape.units, shape.lanes)
        pairs = shape.weight_chunks * shape.lanes
        out["sparse"] = shape.n_in * pairs * (wx + iw) + shape.units * pairs * (wh + iw)
        out["index_bits"] = iw
    return out


def step_cycles(shape: LayerShape, cols_x, cols_h, sparse: bool):
    """cycles_t = [cols > 0] (PICK_DEPTH + cols * C + MAC_DEPTH) + G + GATE_DEPTH, cols = cols_x + cols_h
    (vectorised; KE in place of C on the weight-sparse engine)."""
    cols = np.asarray(cols_x, np.int64) + np.asarray(cols_h, np.int64)
    stream = np.where(cols > 0, PICK_DEPTH + cols * shape.stream_chunks + MAC_DEPTH, 0)
    return stream + shape.gate_iters(sparse) + GATE_DEPTH


def step_macs(shape: LayerShape, cols_x, cols_h):
    """MACs_t = 4H * (cols_x + cols_h) (also the number of weight-word reads); P * KE * (cols_x + cols_h)
    multiplier slots on the weight-sparse engine (padding pairs included: they multiply a zero)."""
    per_col = shape.lanes * shape.weight_chunks if shape.weight_chunks else 4 * shape.units
    return per_col * (np.asarray(cols_x, np.int64) + np.asarray(cols_h, np.int64))


def energy_pj(shape: LayerShape, macs) -> float:
    """Energy proxy in pJ over the steps of ``macs``: sum_t E_t (formula in the module docstring)."""
    macs = np.asarray(macs)
    gate = shape.units * (GATE_MULS * E_MAC_PJ + GATE_LUT_READS * E_READ_PJ)
    return float(np.sum(macs)) * (E_MAC_PJ + E_READ_PJ) + macs.size * gate


def layer_costs(shape: LayerShape, nnz_x: np.ndarray, nnz_h: np.ndarray) -> dict:
    """Per-step and per-sequence costs of one layer in both modes.

    Args:
        nnz_x: (N, T) nonzero counts of x_t; nnz_h: (N, T) nonzero counts of h_{t-1}
            (h_0 = 0, so nnz_h[:, 0] == 0). For token input nnz_x is 1.

    Returns ``{mode}_cycles`` (N, T) per step, ``{mode}_init_cycles`` (per sequence, a scalar),
    ``{mode}_sequence_cycles`` (N,) = INIT + sum_t cycles_t, ``{mode}_macs`` (N, T), ``{mode}_energy_pj``.
    """
    nnz_x = np.asarray(nnz_x, np.int64)
    nnz_h = np.asarray(nnz_h, np.int64)
    sparse_x = np.ones_like(nnz_x) if shape.token_input else nnz_x
    dense_x = np.full_like(nnz_x, shape.dense_cols_x)
    dense_h = np.full_like(nnz_h, shape.units)
    out = {}
    for mode, cx, ch in (("sparse", sparse_x, nnz_h), ("dense", dense_x, dense_h)):
        cyc = step_cycles(shape, cx, ch, mode == "sparse")
        init = shape.init_cycles(mode == "sparse")
        macs = step_macs(shape, cx, ch)
        out[f"{mode}_cycles"] = cyc
        out[f"{mode}_init_cycles"] = init
        out[f"{mode}_sequence_cycles"] = init + cyc.sum(axis=-1)
        out[f"{mode}_macs"] = macs
        out[f"{mode}_energy_pj"] = energy_pj(shape, macs)
    return out


def total_cycles(costs: dict, mode: str) -> int:
    """Cycles of every sequence of one layer in ``mode``, init included: sum of ``{mode}_sequence_cycles``."""
    return int(np.sum(costs[f"{mode}_sequence_cycles"]))

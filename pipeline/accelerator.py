"""The sparse-state LSTM accelerator's cost model: cycles, MACs, weight reads and an energy proxy.

One source of truth: the C++ kernel counts the iterations of its pipelined loops (csim only) and adds
the same pipeline depths; the emulator calls `step_cycles`; tests hold the two equal.

Per time step t of one layer with n_in inputs, H units and P lanes (parallel multipliers):

    chunks(4H) = ceil(4H / P)                  cycles to stream one weight column (4H words) through P lanes
    cols_x     = nnz(x_t)      (sparse mode)   or n_in  (dense mode)
                 = 1           (both modes) for token input (an Embedding folded into one row per token)
    cols_h     = nnz(h_{t-1})  (sparse mode)   or H     (dense mode)
    cycles_t   = (cols_x + cols_h) * chunks(4H) + ceil(H / P) + MAC_DEPTH + GATE_DEPTH

``ceil(H / P)`` is the gate stage (P units per cycle: LUT sigmoid/tanh, c_t, h_t, threshold, and
the nonzero-index list of h_t); MAC_DEPTH and GATE_DEPTH are the fill latencies of the two
pipelines, paid once per step. MACs and weight-word reads per step are ``4H * (cols_x + cols_h)``
(one read per MAC: each weight is used once per step).

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

MAC_DEPTH = 4
GATE_DEPTH = 8
E_MAC_PJ = 1.0
E_READ_PJ = 5.0
GATE_MULS = 3
GATE_LUT_READS = 5


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def check_lanes(lanes: int, units: int) -> int:
    """P must be in 1 .. 4H (more lanes than a column's 4H words would idle)."""
    if isinstance(lanes, bool) or not isinstance(lanes, int | np.integer) or not 1 <= lanes <= 4 * units:
        raise ValueError(f"lanes must be an integer in 1..4*units = 1..{4 * units}, got lanes={lanes!r}")
    return int(lanes)


@dataclass(frozen=True)
class LayerShape:
    n_in: int
    units: int
    lanes: int
    token_input: bool = False  # a folded Embedding: one row per step, in both modes (pipeline.hls.fold)

    @property
    def dense_cols_x(self) -> int:
        """Input columns per step in dense mode: n_in, or 1 for token input."""
        return 1 if self.token_input else self.n_in

    @property
    def col_cycles(self) -> int:
        """ceil(4H / P): cycles per weight column."""
        return ceil_div(4 * self.units, self.lanes)

    @property
    def gate_cycles(self) -> int:
        """ceil(H / P) + MAC_DEPTH + GATE_DEPTH: the per-step overhead."""
        return ceil_div(self.units, self.lanes) + MAC_DEPTH + GATE_DEPTH


def step_cycles(shape: LayerShape, cols_x, cols_h):
    """cycles_t = (cols_x + cols_h) * ceil(4H/P) + ceil(H/P) + MAC_DEPTH + GATE_DEPTH (vectorised)."""
    return (np.asarray(cols_x, np.int64) + np.asarray(cols_h, np.int64)) * shape.col_cycles + shape.gate_cycles


def step_macs(shape: LayerShape, cols_x, cols_h):
    """MACs_t = 4H * (cols_x + cols_h) (also the number of weight-word reads)."""
    return 4 * shape.units * (np.asarray(cols_x, np.int64) + np.asarray(cols_h, np.int64))


def energy_pj(shape: LayerShape, macs) -> float:
    """Energy proxy in pJ over the steps of ``macs``: sum_t E_t (formula in the module docstring)."""
    macs = np.asarray(macs)
    gate = shape.units * (GATE_MULS * E_MAC_PJ + GATE_LUT_READS * E_READ_PJ)
    return float(np.sum(macs)) * (E_MAC_PJ + E_READ_PJ) + macs.size * gate


def layer_costs(shape: LayerShape, nnz_x: np.ndarray, nnz_h: np.ndarray) -> dict:
    """Per-step and total costs of one layer in both modes.

    Args:
        nnz_x: (N, T) nonzero counts of x_t; nnz_h: (N, T) nonzero counts of h_{t-1}
            (h_0 = 0, so nnz_h[:, 0] == 0).
    """
    nnz_x = np.asarray(nnz_x, np.int64)
    nnz_h = np.asarray(nnz_h, np.int64)
    dense_x = np.full_like(nnz_x, shape.dense_cols_x)
    dense_h = np.full_like(nnz_h, shape.units)
    sparse_cycles = step_cycles(shape, nnz_x, nnz_h)
    dense_cycles = step_cycles(shape, dense_x, dense_h)
    sparse_macs = step_macs(shape, nnz_x, nnz_h)
    dense_macs = step_macs(shape, dense_x, dense_h)
    return {
        "sparse_cycles": sparse_cycles,
        "dense_cycles": dense_cycles,
        "sparse_macs": sparse_macs,
        "dense_macs": dense_macs,
        "sparse_energy_pj": energy_pj(shape, sparse_macs),
        "dense_energy_pj": energy_pj(shape, dense_macs),
    }

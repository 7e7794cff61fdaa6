"""Column-balanced weight pruning (issue 31): which weights each lane of the accelerator keeps.

The engine streams a weight matrix column by column (a column: one input x_j or state h_j; its 4H gate
rows in Keras' order i, f, c, o), in C = 4H / P chunks of P words, word p of each chunk to lane p
(`pipeline.rtl.generate.weight_words`): lane p holds the gate rows r = c * P + p of every column. Pruning
every lane's share of every column to the same count K keeps the P lanes in lock step, so a column can
cost K cycles instead of C (Spartus' column-balanced targeted dropout, Gao et al., IEEE TNNLS 2022).
The masks live in `pipeline.layers.SparseStateLSTM` (``weight_prune_lanes``), the schedule in
`pipeline.callbacks.WeightPruning`.
"""

from __future__ import annotations

import math

import numpy as np


def keep_per_lane(sparsity: float, rows: int, lanes: int) -> int:
    """K = ceil((1 - s_w) * rows / P): the weights each of the P lanes keeps in each streamed column of a
    matrix with ``rows`` gate rows (4H), under column-balanced pruning to weight sparsity ``s_w``; at
    least 1 for s_w < 1 (issue 31). ``rows / P`` (= C) is what a lane holds of a column unpruned."""
    if isinstance(sparsity, bool) or not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"weight sparsity must be in [0, 1), got weight sparsity={sparsity!r}")
    if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1 or rows % lanes:
        raise ValueError(f"lanes must be a positive integer dividing the {rows} gate rows, got lanes={lanes!r}")
    chunks = rows // lanes
    return max(1, math.ceil(round((1.0 - float(sparsity)) * chunks, 9)))


def column_balanced_mask(weights: np.ndarray, lanes: int, sparsity: float) -> np.ndarray:
    """0/1 mask (``weights``' shape, (n_cols, 4H), Keras' kernel layout) of column-balanced magnitude
    pruning: in each row j (one column the engine streams) and for each lane p, whose share of it is
    the gate rows r = c * P + p, c < C = 4H / P (`pipeline.rtl.generate.weight_words`: chunk c of P
    words goes to the P lanes), keep the K = `keep_per_lane` largest |W[j, r]| (ties: the lower r) and
    drop the rest. Every lane then holds K weights of every column, and the lanes stay in lock step."""
    w = np.abs(np.asarray(weights, np.float64))
    if w.ndim != 2:
        raise ValueError(f"weights must be a (columns, gate rows) matrix, got shape {w.shape}")
    n, rows = w.shape
    k = keep_per_lane(sparsity, rows, lanes)
    chunks = rows // lanes
    grouped = w.reshape(n, chunks, lanes)  # [j, c, p] = W[j, c * P + p]
    order = np.argsort(-grouped, axis=1, kind="stable")  # per (j, p): chunks by falling magnitude
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(chunks)[None, :, None], order.shape), axis=1)
    return (ranks < k).reshape(n, rows).astype(np.float32)

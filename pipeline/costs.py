"""Totals of the cycle model over a model's layers and sequences, and the densities a run expects.

Everything here is arithmetic on `pipeline.accelerator`'s per-layer costs (`layer_costs`,
`step_cycles`): no cycle is counted twice and no formula is restated.

- `cost_totals`: sums over layers and sequences, speedup = dense / sparse cycles, ideal speedup =
  dense / sparse MACs, energy ratio = dense / sparse energy (the proxy of `accelerator.energy_pj`).
- `folded_totals`: the same totals for a model whose Embedding feeds the first SparseStateLSTM as if
  ``hls.fold_embedding = true`` (bit-identical states: only the first layer's input term changes).
- `mean_column_cycles`: a sequence's cycles from a mean column count per step (restating a ledger row
  that kept only means, `pipeline.results.restate_speedup`).
- `expected_densities`: the (input, state) densities of each SparseStateLSTM that size the kernel's
  LOOP_TRIPCOUNT averages.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from pipeline import accelerator


def cost_totals(costs: Sequence[Mapping]) -> dict:
    """Sums over layers and sequences of `accelerator.layer_costs` dicts: ``cycles_<mode>`` (start to
    done, init included) and ``macs_<mode>`` per mode, ``speedup = cycles_dense / cycles_sparse``,
    ``ideal_speedup = macs_dense / max(macs_sparse, 1)`` and ``energy_ratio_model = E_dense / E_sparse``."""
    tot = {f"{q}_{mode}": sum(int(np.sum(c[f"{mode}_{key}"])) for c in costs)
           for q, key in (("cycles", "sequence_cycles"), ("macs", "macs")) for mode in ("sparse", "dense")}
    e_s, e_d = (sum(c[f"{mode}_energy_pj"] for c in costs) for mode in ("sparse", "dense"))
    return {**tot, "speedup": tot["cycles_dense"] / tot["cycles_sparse"],
            "ideal_speedup": tot["macs_dense"] / max(tot["macs_sparse"], 1), "energy_ratio_model": e_d / e_s}


FOLDED_KEYS = ("cycles_sparse", "cycles_dense", "speedup", "ideal_speedup", "energy_ratio_model")


def folded_totals(traces: Sequence, has_embedding: bool) -> dict | None:
    """For a model whose Embedding feeds the first SparseStateLSTM unfolded (``has_embedding`` and the
    first trace's ``shape.token_input`` false): the `cost_totals` (``FOLDED_KEYS``) the same run would
    have with ``hls.fold_embedding = true``, its first layer reading one row per step (nnz_x = 1) with
    the same states; None otherwise. ``traces``: `pipeline.emulator.LSTMTrace` per layer, in order."""
    if not traces or traces[0].shape.token_input or not has_embedding:
        return None
    first = traces[0]
    folded = accelerator.layer_costs(dataclasses.replace(first.shape, token_input=True), np.ones_like(first.nnz_x),
                                     first.nnz_h)
    totals = cost_totals([folded] + [tr.costs() for tr in traces[1:]])
    return {k: totals[k] for k in FOLDED_KEYS}


def mean_column_cycles(shape: accelerator.LayerShape, steps: int, cols: float, sparse: bool) -> float:
    """Cycles of one sequence of ``steps`` steps that each stream ``cols`` columns (a mean, >= 1, need
    not be whole): ``INIT + steps * cycles(cols)``, where ``cycles(cols)`` interpolates
    `accelerator.step_cycles` linearly between the whole column counts around ``cols`` (it is linear
    in the columns wherever a step streams any)."""
    if not math.isfinite(cols) or cols < 1:
        raise ValueError(f"cols must be a mean column count >= 1 per step, got cols={cols!r}")
    k = math.floor(cols)
    at_k, at_next = (int(accelerator.step_cycles(shape, 0, n, sparse)) for n in (k, k + 1))
    return shape.init_cycles(sparse) + steps * (at_k + (cols - k) * (at_next - at_k))


def expected_densities(layers: Sequence[str], state_sparsity: Mapping[str, float], input_density: float) -> dict:
    """Per SparseStateLSTM (in model order): ``(input density, state density)``, the fractions of
    nonzero x_t and h_{t-1} entries that size the LOOP_TRIPCOUNT averages. The state density is
    ``1 - state_sparsity[layer]`` (0 when the layer was not measured: density 1); the first layer's
    input density is ``input_density`` (the nonzero fraction of its inputs, 1 for token ids), a later
    layer's the state density of the layer before it."""
    out = {}
    x_density = float(input_density)
    for name in layers:
        state = 1.0 - float(state_sparsity.get(name, 0.0))
        out[name] = (x_density, state)
        x_density = state
    return out

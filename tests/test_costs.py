"""pipeline/costs.py: totals over `pipeline.accelerator`'s costs, worked out by hand on small cases."""

from __future__ import annotations

import types

import numpy as np
import pytest

from pipeline import accelerator, costs


def test_mean_column_cycles_by_hand():
    # n_in 28, H 8, P 4: C = 4H/P = 8 chunks, U = H/P = 2, XS = ceil(28/4) = 7; G = 7 sparse, 2 dense
    shape = accelerator.LayerShape(28, 8, 4)
    # the depths of docs/ACCELERATOR.md: INIT_DEPTH 5, PICK_DEPTH 4, MAC_DEPTH 9, GATE_DEPTH 21
    # dense: INIT (G 2 + 5) + 28 steps * (4 + 36 columns * 8 + 9 + G 2 + 21) = 7 + 28 * 324
    assert costs.mean_column_cycles(shape, 28, 36, sparse=False) == 9079
    # sparse, 4.5 columns a step on average: (7 + 5) + 28 * (4 + 4.5 * 8 + 9 + 7 + 21) = 12 + 28 * 77
    assert costs.mean_column_cycles(shape, 28, 4.5, sparse=True) == pytest.approx(2168)
    # a whole column count equals the model's own step cycles
    cyc = accelerator.step_cycles(shape, np.full((1, 28), 3), np.full((1, 28), 2), True)
    assert costs.mean_column_cycles(shape, 28, 5, sparse=True) == shape.init_cycles(True) + int(cyc.sum())
    for bad in (0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match=rf"cols must be a mean column count >= 1 per step, got cols={bad!r}"):
            costs.mean_column_cycles(shape, 28, bad, sparse=True)


def test_cost_totals_and_folded_totals_by_hand():
    shape = accelerator.LayerShape(3, 4, 4)  # C = 4, U = 1, XS = 1: G = 1 both modes
    nnz_x, nnz_h = np.array([[2, 0]]), np.array([[0, 1]])
    c = accelerator.layer_costs(shape, nnz_x, nnz_h)
    tot = costs.cost_totals([c, c])
    # sparse: init (1 + 5) + (4 + 2 * 4 + 9 + 1 + 21) + (4 + 1 * 4 + 9 + 1 + 21) = 6 + 43 + 39 = 88, per layer
    # dense:  init 6 + 2 * (4 + (3 + 4) * 4 + 9 + 1 + 21) = 6 + 2 * 63 = 132, per layer
    assert (tot["cycles_sparse"], tot["cycles_dense"]) == (176, 264)
    assert tot["macs_sparse"] == 2 * 16 * 3 and tot["macs_dense"] == 2 * 16 * 14
    assert tot["speedup"] == 264 / 176 and tot["ideal_speedup"] == 14 / 3
    trace = types.SimpleNamespace(shape=shape, nnz_x=nnz_x, nnz_h=nnz_h, costs=lambda: c)
    assert costs.folded_totals([trace], has_embedding=False) is None
    folded = costs.folded_totals([trace], has_embedding=True)
    # folded: one row a step in both modes, no x scan (G = 1); sparse 6 + (4 + 1 * 4 + 9 + 1 + 21)
    # + (4 + 2 * 4 + 9 + 1 + 21) = 6 + 39 + 43 = 88; dense 6 + 2 * (4 + (1 + 4) * 4 + 9 + 1 + 21) = 116
    assert folded["cycles_sparse"] == 88 and folded["cycles_dense"] == 116
    assert set(folded) == set(costs.FOLDED_KEYS)


def test_expected_densities_chain_the_layers():
    got = costs.expected_densities(["a", "b", "c"], {"a": 0.9, "b": 0.25}, 0.3)
    assert got == {"a": (0.3, pytest.approx(0.1)), "b": (pytest.approx(0.1), 0.75), "c": (0.75, 1.0)}

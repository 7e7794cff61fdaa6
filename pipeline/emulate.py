"""The emulate stage's record: what one emulation of a data split says about the run.

`emulate_record` turns an `pipeline.emulator.EmulationResult` (``keep_states=True``) of a split, the
float model's logits on the same inputs and the targets into the JSON the emulate stage writes
(``emulate.json``; the stage adds its key, the run and the split):

- ``float`` / ``fixed``: the task metric (`pipeline.metrics.task_metric`) of the float and the
  fixed-point logits, and the max / mean absolute difference between them;
- ``layers``: per SparseStateLSTM, its state sparsity (`pipeline.sparsity.sequence_state_sparsity`),
  cycles per mode (init included), init cycles, mean cycles per step, and its shape;
- the totals over layers and sequences (`pipeline.costs.cost_totals`: cycles, MACs, speedup, ideal
  speedup, energy ratio), the per-sequence cycles (min / avg / max) summed over the layers, and, for an
  unfolded Embedding, the totals folded (`pipeline.costs.folded_totals`);
- overflows per tensor with the wider types they suggest, the accumulation path per layer, and the
  emulator's pace (time steps per second, summed over the layers).

Numpy only: no TensorFlow, Keras or hls4ml here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from pipeline import accelerator, costs
from pipeline.emulator import EmulationResult
from pipeline.metrics import task_metric
from pipeline.sparsity import sequence_state_sparsity


def layer_entry(trace) -> dict:
    """One SparseStateLSTM's part of the record, from its `pipeline.emulator.LSTMTrace` (states kept)."""
    if trace.states is None:
        raise ValueError(f"layer {trace.layer!r}: its states were not kept; run the emulator with keep_states=True")
    c = trace.costs()
    return {
        "state_sparsity": sequence_state_sparsity(trace.states),
        "cycles_sparse": accelerator.total_cycles(c, "sparse"), "cycles_dense": accelerator.total_cycles(c, "dense"),
        "init_cycles_sparse": int(c["sparse_init_cycles"]), "init_cycles_dense": int(c["dense_init_cycles"]),
        "per_step_cycles_sparse": c["sparse_cycles"].mean(axis=0).tolist(),
        "per_step_cycles_dense": c["dense_cycles"].mean(axis=0).tolist(),
        "lanes": trace.shape.lanes, "units": trace.shape.units, "n_in": trace.shape.n_in,
        "token_input": trace.shape.token_input, "weight_density": trace.weight_density,
        **weight_sparse_entry(trace),
    }


def weight_sparse_entry(trace) -> dict:
    """The weight-sparse engine's part of a layer entry (empty where it is not built: KE = C, or token
    input): KE, its cycles in both modes (init included), its weight ROM bits against the dense ones
    (`pipeline.accelerator.weight_memory_bits`, value and index widths of the stored types)."""
    ws = trace.weight_sparse_costs()
    if ws is None:
        return {}
    shape = dataclasses.replace(trace.shape, weight_chunks=trace.weight_chunks)
    bits = accelerator.weight_memory_bits(shape, trace.weight_bits)
    return {"weight_chunks": trace.weight_chunks,
            "cycles_weight_sparse": accelerator.total_cycles(ws, "sparse"),
            "cycles_weight_dense": accelerator.total_cycles(ws, "dense"),
            "weight_memory_bits": bits, "weight_memory_ratio": bits["sparse"] / bits["dense"]}


def emulate_record(result: EmulationResult, float_logits: np.ndarray, y: np.ndarray, task: str, wall_s: float,
                   has_embedding: bool) -> dict:
    """The emulate record of one split (module docstring) from the emulation ``result`` of its inputs,
    the float model's ``float_logits`` on them, the targets ``y``, the ``task`` ("classify" or "lm"),
    the emulation's wall time and whether the model has an Embedding in front of its first layer."""
    float_logits = np.asarray(float_logits)
    fixed_logits = result.values().reshape(float_logits.shape)
    layer_costs = [tr.costs() for tr in result.traces]
    steps = sum(tr.nnz_x.size for tr in result.traces)
    record = {
        "float": task_metric(float_logits, y, task),
        "fixed": task_metric(fixed_logits, y, task),
        "max_abs_err_vs_float": float(np.abs(fixed_logits - float_logits).max()),
        "mean_abs_err_vs_float": float(np.abs(fixed_logits - float_logits).mean()),
        "layers": {tr.layer: layer_entry(tr) for tr in result.traces},
        **costs.cost_totals(layer_costs),
        # per sequence, summed over the SparseStateLSTM layers, start to done (what csynth/cosim latency is set beside)
        "sequence_cycles": {mode: {"min": int(seq.min()), "avg": float(seq.mean()), "max": int(seq.max())}
                            for mode in ("sparse", "dense")
                            for seq in [sum(c[f"{mode}_sequence_cycles"] for c in layer_costs)]},
        "overflow": result.overflow, "overflow_suggestions": result.overflow_suggestions(), "paths": result.path,
        "emulator_steps_per_s": round(steps / max(wall_s, 1e-9), 1),
    }
    if any(tr.weight_chunks for tr in result.traces):
        # the weight-sparse engine where a layer has one, the sparse-state engine elsewhere; the ideal bound
        # streams only the nonzero weights of the nonzero columns: sparse MACs x weight density
        ws = [tr.weight_sparse_costs() or c for tr, c in zip(result.traces, layer_costs, strict=True)]
        cycles_ws = sum(accelerator.total_cycles(c, "sparse") for c in ws)
        ideal = sum(float(np.sum(c["sparse_macs"])) * tr.weight_density for tr, c in zip(result.traces, layer_costs,
                                                                                         strict=True))
        record["cycles_weight_sparse"] = cycles_ws
        record["speedup_weight_sparse"] = record["cycles_dense"] / cycles_ws
        record["ideal_speedup_weight_sparse"] = record["macs_dense"] / max(ideal, 1.0)
    folded = costs.folded_totals(result.traces, has_embedding)
    if folded:
        record["folded_embedding"] = folded
    return record

"""Verification: C-simulation vs emulator (bit for bit, outputs and per-step cycles), sparse vs dense.

`compare` returns a verdict dict and raises `VerificationError` naming the first differing tensor,
sample, step and values, so a mismatch can never be reported as a pass.
"""

from __future__ import annotations

import numpy as np

from pipeline.csim import CsimResult
from pipeline.emulator import EmulationResult


class VerificationError(AssertionError):
    """A bit-exactness or cycle check failed; the message names the first difference."""


def _first_diff(a: np.ndarray, b: np.ndarray) -> tuple:
    idx = np.argwhere(a != b)[0]
    return tuple(int(i) for i in idx), a[tuple(idx)], b[tuple(idx)]


def compare(csim: CsimResult, emu: EmulationResult, layer_ids: list[int]) -> dict:
    """Check csim sparse == csim dense == emulator outputs, and cycles/nnz per step against the model."""
    checks = {}
    ev = emu.values()
    if csim.sparse.shape != ev.shape:
        raise VerificationError(f"output shapes differ: csim {csim.sparse.shape} vs emulator {ev.shape}")
    for name, a, b in (("csim sparse vs csim dense", csim.sparse, csim.dense),
                       ("csim sparse vs emulator", csim.sparse, ev)):
        if not np.array_equal(a, b):
            (s, k), va, vb = _first_diff(a, b)
            raise VerificationError(f"{name}: output differs first at sample {s}, output {k}: {va!r} vs {vb!r}")
        checks[name] = "bit-identical"
    for trace, lid in zip(emu.traces, layer_ids, strict=True):
        costs = trace.engine_costs()  # the project's engine (the weight-sparse one where WeightChunks > 0)
        for mode in ("sparse", "dense"):
            rows = csim.layer_steps(mode, lid)
            n, t = trace.nnz_x.shape
            if rows.shape[0] != n * t:
                raise VerificationError(f"layer {trace.layer}: csim logged {rows.shape[0]} steps, expected {n * t}")
            got = {"nnz_x": rows[:, 3].reshape(n, t), "nnz_h": rows[:, 4].reshape(n, t),
                   "cycles": rows[:, 7].reshape(n, t)}
            want = {"nnz_x": trace.nnz_x, "nnz_h": trace.nnz_h, "cycles": costs[f"{mode}_cycles"]}
            for key in got:
                if not np.array_equal(got[key], want[key]):
                    (s, step), va, vb = _first_diff(got[key], want[key])
                    raise VerificationError(
                        f"layer {trace.layer} ({mode} mode): {key} differs first at sample {s}, step {step}: "
                        f"csim {va} vs emulator/model {vb}"
                    )
            seq = csim.layer_sequences(mode, lid)
            if seq.shape[0] != n:
                raise VerificationError(f"layer {trace.layer}: csim logged {seq.shape[0]} sequences, expected {n}")
            for col, key in ((2, "init_cycles"), (3, "sequence_cycles")):
                want_seq = np.broadcast_to(costs[f"{mode}_{key}"], (n,))
                if not np.array_equal(seq[:, col], want_seq):
                    s = int(np.argwhere(seq[:, col] != want_seq)[0][0])
                    raise VerificationError(f"layer {trace.layer} ({mode} mode): {key} differs first at sample {s}: "
                                            f"csim {seq[s, col]} vs model {want_seq[s]}")
            checks[f"{trace.layer} {mode} cycles"] = "equal"
    return checks

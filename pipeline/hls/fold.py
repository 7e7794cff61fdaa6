"""Fold an Embedding into the next SparseStateLSTM's input kernel (a rewrite of the hls4ml graph).

``Embedding(V, E) -> SparseStateLSTM(H)`` streams, per step, the E columns of the input kernel:

    x_t = (result_t) E[v_t]               acc += sum_j W_x[j] * x_t[j]    (E * ceil(4H/P) cycles)

Folded, the LSTM reads the token id v_t itself and adds one precomputed row of 4H words:

    F[v] = sum_j x(v)[j] * W_x[j]          (V x 4H, computed once, here, in exact integers)
    acc += F[v_t]                          (ceil(4H/P) cycles, additions only)

F is stored in the narrowest ``ap_fixed`` that holds it with every fractional bit of the products
(f_F = f_x + f_W), so it is exact. When the accumulator wraps (AP_WRAP) and keeps those fractional
bits (the default exact accumulator does), addition is exact modulo 2^W in any order, so the folded
layer is bit-identical to the unfolded one: same outputs, same states, fewer cycles. A saturating or
rounding accumulator would make the order matter, so folding refuses it.

Cost: the per-step input work drops from E columns to 1 row, in both modes (so the dense/sparse
ratio becomes about (1 + H) / (1 + nnz(h))); the memory holds V * 4H words of W_F bits instead of
V * E embedding words and E * 4H kernel words (`fold_report`).
"""

from __future__ import annotations

import numpy as np

from pipeline import fixed
from pipeline.ir import read_weights
from pipeline.precision import to_fixed

LSTM_CLASS = "SparseStateLSTMLayer"


def _consumers(hls_model, node) -> list:
    out = node.outputs[0]
    return [n for n in hls_model.get_layers() if out in n.inputs]


def folded_row_type(raw: np.ndarray, frac: int) -> fixed.FixedType:
    """The narrowest signed ``ap_fixed<W, W - frac>`` (at least one integer bit) holding every raw value
    of ``raw`` (with ``frac`` fractional bits) exactly."""
    peak = int(max(int(np.max(raw, initial=0)), -int(np.min(raw, initial=0)) - 1, 0))
    width = max(peak.bit_length() + 1, frac + 1)
    return fixed.FixedType(width, width - frac, True, "AP_TRN", "AP_WRAP")


def fold_embeddings(hls_model) -> list[dict]:
    """Fold every Embedding of ``hls_model`` into the SparseStateLSTM it feeds; returns one
    `fold_report` per folded pair. Raises ValueError (naming the layer and the type) when there is no
    Embedding, when an Embedding feeds anything but one SparseStateLSTM, or when the LSTM's accumulator
    is not exact (AP_WRAP and at least f_x + f_W fractional bits)."""
    from hls4ml.backends.vivado.passes.transform_types import TransformTypes
    from hls4ml.model.types import FixedPrecisionType

    from pipeline.hls import layer as hls_layer

    embeddings = [n for n in hls_model.get_layers() if n.class_name == "Embedding"]
    if not embeddings:
        raise ValueError("hls fold_embedding = true needs an Embedding layer before the first SparseStateLSTM; "
                         "this model has none (set fold_embedding = false)")
    reports = []
    for emb in embeddings:
        users = _consumers(hls_model, emb)
        if len(users) != 1 or users[0].class_name != LSTM_CLASS:
            names = [f"{u.name} ({u.class_name})" for u in users]
            raise ValueError(f"Embedding {emb.name!r} feeds {names}; folding needs it to feed exactly one "
                             "SparseStateLSTM")
        lstm = users[0]
        if lstm.get_attr("weight_chunks", 0):
            raise ValueError(f"SparseStateLSTM {lstm.name!r} runs the weight-sparse engine (WeightChunks = "
                             f"{lstm.get_attr('weight_chunks')}); a folded embedding's rows are dense: set WeightChunks = 0 "
                             "or hls fold_embedding = false")
        table = read_weights(emb.get_weights("embeddings"))
        dim = int(emb.get_attr("n_out"))
        vocab = table.raw.size // dim
        x_t = to_fixed(emb.get_output_variable().type.precision)
        x_raw = fixed.cast(table.raw.reshape(vocab, dim), table.type.frac, x_t).astype(np.int64)
        kernel = read_weights(lstm.get_weights("weight"))
        units = int(lstm.get_attr("n_out"))
        w_raw = kernel.raw.reshape(dim, 4 * units).astype(np.int64)
        frac = x_t.frac + kernel.type.frac
        acc_t = to_fixed(lstm.get_attr("accum_t").precision)
        if acc_t.o_mode != "AP_WRAP" or acc_t.frac < frac:
            raise ValueError(
                f"layer {lstm.name!r}: folding the Embedding needs an exact accumulator (AP_WRAP with >= {frac} "
                f"fractional bits), got accum {acc_t.cpp()}; drop hls accum_precision or set fold_embedding = false"
            )
        bound = float(np.abs(x_raw).max(initial=0)) * float(np.abs(w_raw).sum(axis=0).max(initial=0))
        if bound >= 2.0**62:
            raise ValueError(f"layer {lstm.name!r}: the folded rows need more than 62 bits; use narrower types "
                             "or set fold_embedding = false")
        rows = x_raw @ w_raw  # (V, 4H), exact in int64
        row_t = folded_row_type(rows, frac)
        prec = FixedPrecisionType(width=row_t.width, integer=row_t.integer, signed=True)
        lstm.add_weights_variable(name="weight", var_name="w{index}", type_name=f"{lstm.name}_folded_t",
                                  precision=prec, data=(rows.astype(np.float64) * 2.0**-frac))
        # the backend's type pass has already run on this graph: give the new weights its C++ definition
        lstm.set_attr("weight", TransformTypes().weight_var_converter.convert(lstm.get_attr("weight")))
        lstm.set_attr("n_in", vocab)
        lstm.set_attr("token_input", True)
        lstm.set_attr("folded_embedding", emb.name)
        lstm.inputs[0] = emb.inputs[0]
        del hls_model.graph[emb.name]
        hls_model.output_vars.pop(emb.outputs[0], None)
        for template in hls_layer.TEMPLATES:  # the config and call text were rendered at conversion
            template().transform(hls_model, lstm)
        reports.append(fold_report(emb.name, lstm.name, vocab, dim, units, table.type, kernel.type, row_t))
    return reports


def fold_report(embedding: str, lstm: str, vocab: int, dim: int, units: int, emb_t: fixed.FixedType,
                w_t: fixed.FixedType, row_t: fixed.FixedType) -> dict:
    """Memory of the input path before and after folding, in bits:
    before ``V*E*W_E + E*4H*W_W``, after ``V*4H*W_F``."""
    before = vocab * dim * emb_t.width + dim * 4 * units * w_t.width
    after = vocab * 4 * units * row_t.width
    return {"embedding": embedding, "lstm": lstm, "vocab": vocab, "embedding_dim": dim, "units": units,
            "row_type": row_t.cpp(), "bits_before": before, "bits_after": after}

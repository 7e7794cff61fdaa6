"""The Keras model a recipe describes (all hardware-mappable, see `pipeline.hls`):

* classify: ``Input(T, F) -> SparseStateLSTM(H1) [-> SparseStateLSTM(H2) ...] -> Dense(classes)``
* lm:       ``Input(T,) int -> Embedding(V, E) -> SparseStateLSTM(H, seq) -> Dense(V)`` per step

The head outputs logits (the accelerator needs no softmax: argmax and cross-entropy are taken from
logits). With ``[quant] enabled`` the layers are quantisation-aware (`pipeline.quantizers`): each
SparseStateLSTM gets ``quant=`` (`QuantConfig.lstm`) and the head is a `pipeline.layers.QuantDense`.
"""

from __future__ import annotations

from pipeline import data as data_mod
from pipeline.recipes import Recipe


def lstm_input_shape(recipe: Recipe) -> tuple[int, int]:
    """``(steps T, inputs n_in)`` of the first SparseStateLSTM of the model a recipe describes, without
    loading the data: image rows ``(IMAGE_ROWS, IMAGE_COLS)`` (one row a step), characters
    ``(data.seq_len, model.embedding)`` (the Embedding's output)."""
    d = recipe.data
    if d.name in data_mod.IMAGE_TASKS:
        return data_mod.IMAGE_ROWS, data_mod.IMAGE_COLS
    if d.name == "ptb_chars":
        return int(d.seq_len), int(recipe.model.embedding)
    raise ValueError(f"unknown dataset {d.name!r}; expected one of {data_mod.IMAGE_TASKS + ('ptb_chars',)}")


def build_model(recipe: Recipe, dataset: data_mod.Dataset):
    """The Keras model a recipe describes (uncompiled)."""
    import keras

    from pipeline.layers import QuantDense, SparseStateLSTM

    m = recipe.model
    if dataset.task == "lm":
        inp = keras.Input(shape=(dataset.train.x.shape[1],), dtype="int32", name="chars")
        if not m.embedding:
            raise ValueError("a language-model recipe needs model.embedding > 0")
        x = keras.layers.Embedding(dataset.n_classes, m.embedding, name="embedding")(inp)
    else:
        inp = keras.Input(shape=dataset.train.x.shape[1:], name="rows")
        x = inp
    units = m.units
    final_seq = bool(m.return_sequences) or dataset.task == "lm"
    for k, h in enumerate(units):
        last = k == len(units) - 1
        x = SparseStateLSTM(
            h, threshold=float(recipe.sparsity.threshold or m.threshold), prune=m.prune,
            gate_l1=m.gate_l1, return_sequences=(not last) or final_seq, name=f"sparse_lstm_{k}",
            prune_last=m.prune_last if last else True,
            quant=recipe.quant.lstm(k) if recipe.quant.enabled else None,
            weight_prune_lanes=int(recipe.sparsity.weight_lanes) if recipe.sparsity.weight_target > 0 else 0,
        )(x)
    if recipe.quant.enabled:
        out = QuantDense(dataset.n_classes, quant=recipe.quant.head(), name="logits")(x)
    else:
        out = keras.layers.Dense(dataset.n_classes, name="logits")(x)
    return keras.Model(inp, out, name=recipe.name)

"""The language-model path end to end on a tiny text: a user's ``ptb.{train,valid,test}.txt`` folder ->
`pipeline.data`'s character stream -> Embedding -> SparseStateLSTM -> Dense trained one epoch by the
train stage -> the BPC it reports, checked against BPC computed here from the model's logits."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

WORDS = ["the", "market", "fell", "sharply", "on", "monday", "as", "investors", "sold", "bonds", "and", "stocks",
         "<unk>", "N", "million", "shares", "were", "traded", "quiz", "jump", "vex", "by", "of", "a"]
SEQ_LEN = 20


def _text(rng: np.random.RandomState, lines: int) -> str:
    return "".join(" " + " ".join(rng.choice(WORDS, size=rng.randint(4, 12))) + " \n" for _ in range(lines))


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    from pipeline import stages

    base = tmp_path_factory.mktemp("lm")
    root = base / "ptb"
    root.mkdir()
    rng = np.random.RandomState(0)
    for split, lines in (("train", 400), ("valid", 40), ("test", 40)):
        (root / f"ptb.{split}.txt").write_text(_text(rng, lines), encoding="utf-8")
    recipe = base / "tiny_ptb.toml"
    recipe.write_text(f"""
seeds = [0]

[data]
name = "ptb_chars"
root = "{root}"
seq_len = {SEQ_LEN}

[model]
embedding = 8
units = [16]
prune = "state"

[train]
epochs = 1
batch_size = 32
learning_rate = 0.01

[sparsity]
schedule = "constant"
target = 0.3
begin_epoch = 0

[hls]
precision = "ap_fixed<16,6>"
lanes = 4
""", encoding="utf-8")
    out = base / "out"
    metrics = stages.run_train(str(recipe), out=out)
    return root, recipe, out, metrics


def _bpc(logits: np.ndarray, y: np.ndarray) -> float:
    """Mean over characters of -log2 softmax(logits)[y], in float64."""
    z = logits.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log2_p = (z - np.log(np.exp(z).sum(axis=-1, keepdims=True))) / math.log(2.0)
    return float(-np.take_along_axis(log2_p, y[..., None].astype(np.int64), axis=-1).mean())


def test_ptb_folder_is_read_as_the_character_stream(lm_run):
    from pipeline.data import load_ptb_chars

    root, *_ = lm_run
    ds = load_ptb_chars(root=root, seq_len=SEQ_LEN)
    train = (root / "ptb.train.txt").read_text(encoding="utf-8")
    chars = "".join("_".join(line.split()) + "\n" for line in train.split("\n") if line.strip())
    assert ds.task == "lm" and ds.vocab == sorted(set(chars)) and ds.n_classes == len(ds.vocab)
    ids = np.array([ds.vocab.index(c) for c in chars])
    n = (len(ids) - 1) // SEQ_LEN
    assert ds.train.x.shape == (n, SEQ_LEN)
    assert np.array_equal(ds.train.x.ravel(), ids[: n * SEQ_LEN]) and np.array_equal(ds.train.y.ravel(), ids[1: n * SEQ_LEN + 1])


def test_reported_bpc_matches_bpc_from_the_logits(lm_run):
    import keras

    import pipeline.layers  # noqa: F401 (registers SparseStateLSTM for loading)
    from pipeline.data import load_ptb_chars
    from pipeline.keras_metrics import BitsPerChar

    root, recipe, out, metrics = lm_run
    saved = json.loads((out / "tiny_ptb" / "seed0" / "train_metrics.json").read_text(encoding="utf-8"))
    assert saved["test"]["metric"] == "bpc" and saved["test"] == metrics["test"]
    assert len(saved["history"]["bpc"]) == 1 and len(saved["history"]["val_bpc"]) == 1
    model = keras.models.load_model(out / "tiny_ptb" / "seed0" / "model.keras", compile=False)
    assert [layer.__class__.__name__ for layer in model.layers] == ["InputLayer", "Embedding", "SparseStateLSTM", "Dense"]
    test = load_ptb_chars(root=root, seq_len=SEQ_LEN).test
    logits = model.predict(test.x, batch_size=64, verbose=0)
    assert logits.shape == (*test.x.shape, model.output_shape[-1])
    want = _bpc(logits, test.y)
    assert 0.5 < want < math.log2(model.output_shape[-1]) + 1  # learned something, and a sane number
    assert saved["test"]["value"] == pytest.approx(want, rel=1e-6)
    # the Keras metric used in training (mean over characters and batches), float32
    metric = BitsPerChar()
    for k in range(0, len(test.x), 7):  # uneven batches
        metric.update_state(test.y[k:k + 7], logits[k:k + 7])
    assert float(metric.result()) == pytest.approx(want, rel=1e-5)
    assert 0.0 <= saved["test"]["state_sparsity"]["sparse_lstm_0"] <= 1.0


def test_emulated_lm_reports_bpc_at_fixed_point(lm_run):
    from pipeline import stages

    root, recipe, out, metrics = lm_run
    stages.run_hls(str(recipe), out=out, root=root.parent / "hls")  # the emulate stage reads the project's saved IR
    emu = stages.run_emulate(str(recipe), out=out, root=root.parent / "hls")
    assert emu["float"] == {"metric": "bpc", "value": pytest.approx(metrics["test"]["value"], rel=1e-6)}
    assert emu["fixed"]["metric"] == "bpc"
    assert emu["fixed"]["value"] == pytest.approx(emu["float"]["value"], rel=0.02)
    # dense mode: per sequence U + INIT_DEPTH + T (PICK_DEPTH + (E + H) C + MAC_DEPTH + U + GATE_DEPTH)
    # cycles; E = 8 embedding columns, H = 16, P = 4 lanes: U = H / P = 4 gate iterations, C = 4H / P = 16
    # cycles a column; the depths of docs/ACCELERATOR.md: INIT 5, PICK 4, MAC 9, GATE 21
    assert emu["cycles_dense"] == emu["n"] * (4 + 5 + SEQ_LEN * (4 + (8 + 16) * 16 + 9 + 4 + 21))

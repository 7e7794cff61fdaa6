"""Project generation: Keras model -> hls4ml config -> hls4ml project + SkipLSTM csim driver.

`make_config` builds the hls4ml config a recipe's ``[hls]`` section describes; `convert` returns the
hls4ml `ModelGraph` (used by both the writer and the emulator, so both see the same types);
`generate` writes ``<root>/<name>/`` atomically (a failed generation leaves the old project, or none).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

from pipeline.hls.layer import register, render
from pipeline.util import check_output_dir, cpp_identifier, replace_dir

SUPPORTED_KERAS = ("InputLayer", "Embedding", "SparseStateLSTM", "Dense")


def check_supported(model) -> None:
    """Refuse models outside Input/Embedding -> SparseStateLSTM+ -> Dense(linear/relu)+."""
    import keras

    from pipeline.layers import SparseStateLSTM

    seen_lstm = False
    for layer in model.layers:
        cls = type(layer).__name__
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.layers.Embedding):
            if seen_lstm:
                raise ValueError(f"layer {layer.name!r}: an Embedding must come before the SparseStateLSTM layers")
            if getattr(layer, "mask_zero", False):
                raise ValueError(f"layer {layer.name!r}: Embedding(mask_zero=True) is not supported (no masking)")
            continue
        if isinstance(layer, SparseStateLSTM):
            seen_lstm = True
            continue
        if isinstance(layer, keras.layers.Dense):
            act = getattr(layer.activation, "__name__", str(layer.activation))
            if act not in ("linear", "relu"):
                raise ValueError(
                    f"layer {layer.name!r}: Dense activation {act!r} is not supported; use 'linear' or 'relu' "
                    "(a final softmax is not needed: argmax and cross-entropy work on logits)"
                )
            continue
        raise ValueError(
            f"layer {layer.name!r} ({cls}) is not supported; supported: Input or Embedding -> one or more "
            "SparseStateLSTM -> Dense (linear/relu)"
        )
    if not seen_lstm:
        raise ValueError(f"model {model.name!r} has no SparseStateLSTM layer")


def make_config(model, hls: dict) -> dict:
    """The hls4ml config for ``model`` from a recipe's ``[hls]`` section.

    Every precision is explicit (no 'auto'): inputs and weights take ``precision``; Dense layers get an
    exact accumulator (the emulator's fast path); an Embedding's token input is ``ap_uint``.
    """
    import hls4ml
    import keras

    from pipeline.layers import SparseStateLSTM
    from pipeline.precision import exact_accum, to_fixed

    register()
    default = hls["precision"]
    to_fixed(default)  # validates the string
    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", default_precision=default)
    cfg["Model"]["Strategy"] = "Latency"
    layers = cfg["LayerName"]
    state_t = to_fixed("ap_fixed<16,2,AP_RND,AP_SAT>")
    prev_t = to_fixed(default)
    for layer in model.layers:
        entry = layers.get(layer.name)
        if entry is None:
            continue
        prec = entry.setdefault("Precision", {})
        if isinstance(layer, keras.layers.InputLayer):
            has_embedding = any(isinstance(lyr, keras.layers.Embedding) for lyr in model.layers)
            if has_embedding:
                vocab = next(lyr for lyr in model.layers if isinstance(lyr, keras.layers.Embedding)).input_dim
                prec["result"] = f"ap_uint<{max(1, math.ceil(math.log2(vocab)))}>"
            else:
                prec["result"] = default
        elif isinstance(layer, SparseStateLSTM):
            for key in list(prec):
                if prec[key] == "auto":
                    del prec[key]
            entry["Lanes"] = int(hls["lanes"])
            entry["TableSize"] = int(hls["table_size"])
            entry.setdefault("SkipZeros", True)
            prev_t = to_fixed(prec.get("result", "ap_fixed<16,2,AP_RND,AP_SAT>")) if prec else state_t
        elif isinstance(layer, keras.layers.Dense):
            w_t = to_fixed(default)
            prec.update({"weight": default, "bias": default})
            acc = exact_accum([(w_t, prev_t)], w_t, layer.kernel.shape[0])
            prec["accum"] = acc.cpp()
            prec["result"] = acc.cpp() if layer.activation.__name__ == "linear" else default
            prev_t = to_fixed(prec["result"])
            for sub, sub_entry in layers.items():
                if sub.startswith(f"{layer.name}_") and sub != layer.name:
                    sub_entry.setdefault("Precision", {})["result"] = default
                    prev_t = to_fixed(default)
        elif isinstance(layer, keras.layers.Embedding):
            prec.update({"embeddings": default, "result": default})
            prev_t = to_fixed(default)
    return cfg


def convert(model, hls: dict, output_dir: str | Path, skip_zeros: bool = True):
    """hls4ml ``ModelGraph`` of a supported Keras model (not written)."""
    import hls4ml

    register()
    check_supported(model)
    cfg = make_config(model, hls)
    from pipeline.layers import SparseStateLSTM

    for layer in model.layers:
        if isinstance(layer, SparseStateLSTM):
            cfg["LayerName"][layer.name]["SkipZeros"] = bool(skip_zeros)
    return hls4ml.converters.convert_from_keras_model(
        model, hls_config=cfg, output_dir=str(output_dir), backend="Vivado", io_type="io_parallel",
        project_name=cpp_identifier(model.name, prefix="m_"), part=hls.get("part", "xcvu13p-flga2577-2-e"),
        clock_period=hls.get("clock_period", 5),
    )


def _io_info(hls_model) -> dict:
    inp = hls_model.get_input_variables()[0]
    out = hls_model.get_output_variables()[0]
    return {
        "project": hls_model.config.get_project_name(),
        "input_t": inp.type.name,
        "output_t": out.type.name,
        "in_size": int(np.prod(inp.shape)),
        "out_size": int(np.prod(out.shape)),
    }


def _make_deterministic(tmp: Path, final: Path, hls_model) -> None:
    """hls4ml writes a random 8-hex 'Stamp' (library name), the temporary output path and a copy of the
    Keras model (a zip whose config holds memory addresses and a save date): replace the stamp by a
    content hash and the path by the final one, and drop the copy and its reference (the trained model
    stays in out/<recipe>/model.keras), so that the same model gives byte-identical projects."""
    import hashlib

    (tmp / "keras_model.keras").unlink(missing_ok=True)
    digest = hashlib.sha256()
    for p in sorted((tmp / "firmware").rglob("*")):
        if p.is_file() and "ap_types" not in p.parts:
            digest.update(p.relative_to(tmp).as_posix().encode() + b"\0" + p.read_bytes())
    old_stamp = str(hls_model.config.get_config_value("Stamp"))
    new_stamp = "s" + digest.hexdigest()[:7]
    hls_model.config.config["Stamp"] = new_stamp
    for name in ("hls4ml_config.yml", "build_lib.sh"):
        f = tmp / name
        if f.exists():
            text = f.read_text(encoding="utf-8").replace(str(tmp), str(final))
            text = text.replace(f"'{old_stamp}'", new_stamp).replace(old_stamp, new_stamp)
            text = "".join(line for line in text.splitlines(keepends=True) if not line.startswith("KerasModel:"))
            f.write_text(text, encoding="utf-8")


def generate(model, hls: dict, root: str | Path, name: str | None = None) -> Path:
    """Write the hls4ml project plus the SkipLSTM csim driver to ``<root>/<name>/``, atomically."""
    root = check_output_dir(root)
    name = cpp_identifier(name or model.name, prefix="m_")
    final = root / name
    tmp = root / f".{name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        hls_model = convert(model, hls, tmp)
        hls_model.write()
        info = _io_info(hls_model)
        (tmp / "skiplstm_csim.cpp").write_text(render("skiplstm_csim.cpp.j2", **info), encoding="utf-8")
        _make_deterministic(tmp, final, hls_model)
        lstm = [
            {"name": n.name, "layer_id": n.index, "n_in": n.get_attr("n_in"), "units": n.get_attr("n_out"),
             "lanes": n.get_attr("lanes"), "steps": n.get_attr("n_timesteps"), "prune": n.get_attr("prune"),
             "threshold": n.get_attr("threshold")}
            for n in hls_model.get_layers() if n.class_name == "SparseStateLSTMLayer"
        ]
        manifest = {**info, "model": model.name, "lstm_layers": lstm, "hls": {k: hls[k] for k in sorted(hls)}}
        (tmp / "skiplstm_manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final

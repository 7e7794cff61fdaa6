"""Project generation: Keras model -> hls4ml config -> hls4ml project + SkipLSTM csim driver.

`make_config` builds the hls4ml config a recipe's ``[hls]`` section describes; `convert` registers the
extension (`pipeline.hls.register`) and returns the hls4ml `ModelGraph`; `extract_ir`
(`pipeline.hls.extract`) reads off it what the emulator needs (`pipeline.ir.ModelIR`, so the emulator
sees the very types and integers the C++ gets); `generate` writes ``<root>/<name>/``
atomically (a failed generation leaves the old project, or none), the IR included
(``skiplstm_ir.json`` + ``.npz``, `pipeline.ir.save`). The generator never runs the emulator: the
expected outputs of hls4ml's testbench are the caller's (`write_tb_outputs`).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from pipeline import ir as model_ir
from pipeline.hls.checks import check_quantised_types, check_weight_ranges
from pipeline.hls.extract import extract_ir  # noqa: F401 (re-exported: the generator's reader of its own graph)
from pipeline.hls.fold import fold_embeddings
from pipeline.hls.registration import register
from pipeline.hls.synth_check import check_project
from pipeline.templating import render
from pipeline.util import c_name_reserved, check_output_dir, cpp_identifier, replace_dir, shadows_header

SUPPORTED_KERAS = ("InputLayer", "Embedding", "SparseStateLSTM", "Dense")

# Identifiers hls4ml generates itself (types, variables, weight arrays, configs) and macro-like
# all-caps names: a layer must not be named like one, since the Input layer's name becomes a C++
# variable and every layer's name a prefix of its type names.
_RESERVED = re.compile(
    r"(input_t|result_t|model_default_t|loaded_weights|config\d+|layer\d+_(t|out|index)|(w|wr|b|s|z)\d+"
    r"|(sigmoid|tanh)_table\d+|[A-Z][A-Z0-9_]*)"
)


def check_hls(hls) -> dict:
    """Validate a recipe's ``[hls]`` section (or the dict given to `generate`/`convert`, possibly partial);
    return it as a plain dict with the defaults filled in. The rules are the recipe schema's
    (`pipeline.recipes.HlsConfig`); errors name the key, the value and what is expected."""
    from pipeline.recipes import HlsConfig

    if not isinstance(hls, Mapping):
        raise TypeError(f"hls options must be a dict like pipeline.recipes.DEFAULTS['hls'], got {type(hls).__name__}")
    return HlsConfig.check(hls)


def _layer_identifier(name: str) -> str:
    """A layer name as a safe identifier: `cpp_identifier`, then an ``l_`` prefix for hls4ml's own
    identifiers and for `pipeline.util.c_name_reserved` names (keywords, C/C++/POSIX macros, functions and
    types, all-caps names). The Input layer's name is a variable of the top function, every layer's name
    the prefix of its type names."""
    text = cpp_identifier(name, prefix="l_").rstrip("_") or "unnamed"
    return "l_" + text if _RESERVED.fullmatch(text) or c_name_reserved(text) else text


def project_identifier(name: str) -> str:
    """The model's name as the hls4ml project name, which becomes the top function, ``firmware/<name>.h``
    and ``.cpp``, ``<name>_test.cpp`` and ``<name>_bridge.cpp``: the layer rules (`_layer_identifier`,
    ``m_`` prefix) plus no file name that shadows a system, ap_types or hls4ml header on the include path
    (``features`` -> ``m_features``: firmware/features.h would replace glibc's <features.h>)."""
    text = cpp_identifier(name, prefix="m_").rstrip("_") or "unnamed"
    if _RESERVED.fullmatch(text) or c_name_reserved(text) or shadows_header(text):
        text = "m_" + text
    return text


def layer_names(model) -> dict[str, str]:
    """Original Keras layer name -> the C++-safe, unique name the generated project uses.

    Names that are already valid, non-reserved identifiers stay as they are; the others are sanitised
    with `pipeline.util.cpp_identifier` (spaces, quotes, unicode, ';' -> '_'; keywords and hls4ml's own
    identifiers get an ``l_`` prefix) and made unique (case-insensitively: hls4ml looks precisions up by
    lower-cased name) with a ``_<k>`` suffix. Also kept free: ``<name>_<activation>``, the name hls4ml
    gives the activation it splits off a Dense layer.
    """
    import keras

    layers = list(model.layers)
    inputs = [t._keras_history.operation for t in model.inputs]
    layers = [lyr for lyr in inputs if lyr not in layers] + layers
    taken: set[str] = set()
    mapping: dict[str, str] = {}

    def derived(layer, name):
        act = getattr(getattr(layer, "activation", None), "__name__", "linear")
        return [f"{name}_{act}".lower()] if isinstance(layer, keras.layers.Dense) and act != "linear" else []

    pending = []
    for layer in layers:  # first keep every name that is fine as it is
        name = layer.name
        names = [name.lower(), *derived(layer, name)]
        if _layer_identifier(name) == name and not taken.intersection(names):
            mapping[name] = name
            taken.update(names)
        else:
            pending.append(layer)
    for layer in pending:
        base = _layer_identifier(layer.name)
        name, k = base, 0
        while taken.intersection([name.lower(), *derived(layer, name)]):
            k += 1
            name = f"{base}_{k}"
        mapping[layer.name] = name
        taken.update([name.lower(), *derived(layer, name)])
    return mapping


def sanitised_model(model):
    """``(model, names)``: the model itself when every layer name is C++-safe, otherwise a clone with the
    sanitised names of `layer_names` (same architecture, same weights, thresholds included)."""
    import keras

    names = layer_names(model)
    if all(k == v for k, v in names.items()):
        return model, names

    def clone_layer(layer):
        config = layer.get_config()
        config["name"] = names[layer.name]
        return layer.__class__.from_config(config)

    def new_input(t):
        return keras.Input(batch_shape=t.shape, dtype=t.dtype, name=names[t._keras_history.operation.name])

    if isinstance(model, keras.Sequential):
        inp = new_input(model.inputs[0])
        y = inp
        for layer in model.layers:
            y = clone_layer(layer)(y)
        clone = keras.Model(inp, y, name=model.name)
    else:
        inputs = keras.tree.map_structure(new_input, model.input)
        clone = keras.models.clone_model(model, input_tensors=inputs, clone_function=clone_layer)
    for layer in model.layers:
        if not isinstance(layer, keras.layers.InputLayer) and layer.weights:
            clone.get_layer(names[layer.name]).set_weights(layer.get_weights())
    return clone, names


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


def _quant_types(layer) -> dict[str, str]:
    """A quantised SparseStateLSTM's types by hls4ml Precision name, ``input`` included
    (`pipeline.hls.layer.quant_attributes`)."""
    from pipeline.hls.layer import quant_attributes

    return dict(quant_attributes(layer)["quant_types"])


def make_config(model, hls: dict) -> dict:
    """The hls4ml config for ``model`` from a recipe's ``[hls]`` section.

    Keys are ``model``'s layer names: `convert` calls it on the model of `sanitised_model`, so the
    config it uses holds the sanitised names. Every precision is explicit (no 'auto'): inputs and weights take ``precision``; Dense layers get an
    exact accumulator (the emulator's fast path); an Embedding's token input is ``ap_uint``.

    Quantised layers (``quant=``, `pipeline.quantizers`) bring their own types: a SparseStateLSTM's weights,
    accumulator, table, cell, state and table size, a `pipeline.layers.QuantDense`'s weight, bias and
    result, and the first SparseStateLSTM's input type (the Input layer's, or the Embedding's table and
    output). ``hls.precision`` types only what is not quantised; an ``[hls]`` key that names a quantised
    layer's type differently (``state_precision``, ``cell_precision``, ``table_precision``,
    ``accum_precision``, a non-default ``table_size``) is refused, naming both.
    """
    import hls4ml
    import keras

    from pipeline.layers import SparseStateLSTM
    from pipeline.precision import exact_accum, to_fixed
    from pipeline.recipes import DEFAULTS

    register()
    default = hls["precision"]
    to_fixed(default)  # validates the string
    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", default_precision=default)
    cfg["Model"]["Strategy"] = "Latency"
    layers = cfg["LayerName"]
    state_t = to_fixed("ap_fixed<16,2,AP_RND,AP_SAT>")
    prev_t = to_fixed(default)
    lstms = [lyr for lyr in model.layers if isinstance(lyr, SparseStateLSTM)]
    first_quant = lstms[0].quant if lstms else None
    input_t = first_quant.input.cpp() if first_quant is not None else default  # x as the first LSTM reads it
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
                prec["result"] = input_t
        elif isinstance(layer, SparseStateLSTM):
            for key in list(prec):
                if prec[key] == "auto":
                    del prec[key]
            quant = layer.quant
            types = _quant_types(layer) if quant is not None else {}
            for key, var in (("state_precision", "result"), ("cell_precision", "cell"),
                             ("table_precision", "table"), ("accum_precision", "accum")):
                if hls.get(key):
                    if quant is not None and to_fixed(hls[key]) != to_fixed(types[var]):
                        raise ValueError(f"layer {layer.name!r}: hls {key} = {hls[key]!r} contradicts the type the layer "
                                         f"was trained with, {var} = {types[var]!r}; drop hls.{key} "
                                         "(a quantised layer brings its own types)")
                    prec[var] = hls[key]
            entry["Lanes"] = int(hls["lanes"])
            entry["TableSize"] = int(hls["table_size"])
            if quant is not None:
                prec.update({var: t for var, t in types.items() if var != "input"})  # input: the Input layer's
                # hls table_size at its default defers to the layer's own
                if int(hls["table_size"]) not in (quant.table_size, DEFAULTS["hls"]["table_size"]):
                    raise ValueError(f"layer {layer.name!r}: hls table_size = {hls['table_size']} contradicts the table "
                                     f"size the layer was trained with, {quant.table_size}; drop hls.table_size")
                entry["TableSize"] = int(quant.table_size)
            entry.setdefault("SkipZeros", True)
            if hls.get("weight_sparse"):
                entry["WeightChunks"] = -1  # the weight-sparse engine, KE as the quantised weights need
            prev_t = to_fixed(prec.get("result", "ap_fixed<16,2,AP_RND,AP_SAT>")) if prec else state_t
        elif isinstance(layer, keras.layers.Dense):
            quant = getattr(layer, "quant", None)
            act = layer.activation.__name__
            if quant is not None:
                w_t, b_t, out = quant.weight, quant.bias, quant.result.cpp()
                prec.update({"weight": w_t.cpp(), "bias": b_t.cpp()})
            else:
                w_t = b_t = to_fixed(default)
                prec.update({"weight": default, "bias": default})
            try:
                acc = exact_accum([(w_t, prev_t)], b_t, layer.kernel.shape[0], cap=quant is None)
            except ValueError as err:
                raise ValueError(f"layer {layer.name!r}: {err}") from None
            prec["accum"] = acc.cpp()
            if quant is None:
                out = acc.cpp() if act == "linear" else default
            prec["result"] = out
            reuse = int(hls.get("dense_reuse_factor", 1))
            if reuse > 1:  # a readout that runs once a sequence: few multipliers, reused (the sums wrap: exact in any order)
                entry["Strategy"] = "Resource"
                entry["ReuseFactor"] = reuse
            prev_t = to_fixed(prec["result"])
            sub_entry = layers.get(f"{layer.name}_{act}")
            if act != "linear" and sub_entry is not None:  # hls4ml's split-off activation
                sub = default if quant is None else out
                sub_entry.setdefault("Precision", {})["result"] = sub
                prev_t = to_fixed(sub)
        elif isinstance(layer, keras.layers.Embedding):
            emb_t = input_t if first_quant is not None else default  # the quantised LSTM's input type
            prec.update({"embeddings": emb_t, "result": emb_t})
            prev_t = to_fixed(emb_t)
    return cfg


def convert(model, hls: dict, output_dir: str | Path, skip_zeros: bool = True, densities: Mapping | None = None):
    """hls4ml ``ModelGraph`` of a supported Keras model (not written).

    Layer names are sanitised first (`sanitised_model`; the mapping is the graph's ``skiplstm_names``),
    and weights that their types cannot hold are refused (`check_weight_ranges`). ``densities`` maps a
    SparseStateLSTM's Keras name to its measured (input, state) density (fractions of nonzero x_t and
    h_{t-1}): the StreamLoop's LOOP_TRIPCOUNT average (default 1, 1: dense)."""
    import hls4ml

    register()
    hls = check_hls(hls)
    check_supported(model)
    model, names = sanitised_model(model)
    cfg = make_config(model, hls)
    from pipeline.layers import SparseStateLSTM

    original = {v: k for k, v in names.items()}
    for layer in model.layers:
        if isinstance(layer, SparseStateLSTM):
            cfg["LayerName"][layer.name]["SkipZeros"] = bool(skip_zeros)
            dens = (densities or {}).get(original.get(layer.name, layer.name))
            if dens is not None:
                cfg["LayerName"][layer.name]["ExpectedInputDensity"] = float(dens[0])
                cfg["LayerName"][layer.name]["ExpectedStateDensity"] = float(dens[1])
    hls_model = hls4ml.converters.convert_from_keras_model(
        model, hls_config=cfg, output_dir=str(output_dir), backend="Vivado", io_type="io_parallel",
        project_name=project_identifier(model.name), part=hls["part"], clock_period=hls["clock_period"],
    )
    _quantise_embedding_tables(hls_model)
    check_quantised_types(hls_model, names)
    check_weight_ranges(hls_model, names)
    hls_model.skiplstm_names = names
    hls_model.skiplstm_folds = fold_embeddings(hls_model) if hls["fold_embedding"] else []
    return hls_model


def _quantise_embedding_tables(hls_model) -> None:
    """An Embedding feeding a quantised SparseStateLSTM stores its table as that layer's input quantiser sees
    it (each entry on the input type's grid: hls4ml's decimal text of it is exact, and the C++ reads exactly
    the values the Keras layer multiplies)."""
    from pipeline.precision import to_fixed
    from pipeline.quantizers import quantize_numpy

    for node in hls_model.get_layers():
        if node.class_name != "Embedding":
            continue
        users = [n for n in hls_model.get_layers() if node.outputs[0] in n.inputs]
        if not any(n.get_attr("quant_types") for n in users):
            continue
        var = node.get_weights("embeddings")
        var.data = quantize_numpy(var.data, to_fixed(var.type.precision))
        var.min, var.max = float(np.min(var.data)), float(np.max(var.data))


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
    stays in out/<recipe>/model.keras), so that the same model gives byte-identical projects. (The saved
    IR, written after this, is deterministic by construction: sorted JSON, no paths, fixed zip times.)"""
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


TB_INPUTS = "tb_input_features.dat"
TB_OUTPUTS = "tb_output_predictions.dat"
_TB_AXES = {2: ("sample", "step"), 3: ("sample", "step", "feature")}


def check_tb_inputs(x) -> np.ndarray:
    """``x`` as the float32 array hls4ml's testbench reads (atof, then float), refusing non-numeric and
    complex arrays and any entry that is NaN or infinite as float32 (a finite float64 beyond float32's
    range included); the error names the first bad entry in C order, its index and its value."""
    raw = np.asarray(x)
    if raw.dtype.kind not in "biuf":
        raise ValueError(f"tb_inputs must be a real numeric array (integer or floating point), got dtype {raw.dtype}")
    with np.errstate(over="ignore"):
        x32 = raw.astype(np.float32)
    bad = ~np.isfinite(x32)
    if bad.any():
        index = tuple(int(i) for i in np.argwhere(bad)[0])
        value = float(raw[index])
        where = f"tb_inputs[{', '.join(map(str, index))}] = {value!r}"
        if raw.ndim in _TB_AXES:
            where += " (" + ", ".join(f"{a} {i}" for a, i in zip(_TB_AXES[raw.ndim], index, strict=True)) + ")"
        why = (f", beyond the range of the float32 the testbench reads (|x| <= {np.finfo(np.float32).max:.6g})"
               if np.isfinite(value) else "")
        raise ValueError(f"tb_inputs must be finite numbers (hls4ml's testbench reads them as float32), got "
                         f"{where}{why}; {int(bad.sum())} of {bad.size} entries are not")
    return x32


def write_tb_data(project: Path, x, expected=None) -> None:
    """Fill ``tb_data/`` for hls4ml's testbench (``<project>_test.cpp``, what Vitis csim/cosim run):
    the inputs ``x`` (N, *input shape) as ``tb_input_features.dat``, one sample a line, ``%.9g``
    (float32 exactly: the testbench reads floats, atof then float -> input_t), and, when given, the
    expected predictions (`write_tb_outputs`). A new input file removes an older predictions file."""
    x = check_tb_inputs(x)
    tb = Path(project) / "tb_data"
    tb.mkdir(exist_ok=True)
    np.savetxt(tb / TB_INPUTS, x.reshape(len(x), -1), fmt="%.9g")
    (tb / TB_OUTPUTS).unlink(missing_ok=True)
    if expected is not None:
        write_tb_outputs(project, expected)


def read_tb_inputs(project: str | Path) -> np.ndarray:
    """The test vectors of ``tb_data/tb_input_features.dat`` as the testbench reads them: float32, shape
    (N, *input shape) (the manifest's ``input_shape``); exactly ``np.float32(tb_inputs)`` of `generate`
    (``%.9g`` round-trips float32). What the expected outputs are computed from::

        x = read_tb_inputs(project)
        write_tb_outputs(project, Emulator.from_project(project).run(x).values())
    """
    project = Path(project)
    shape = json.loads((project / "skiplstm_manifest.json").read_text())["input_shape"]
    x = np.loadtxt(project / "tb_data" / TB_INPUTS, dtype=np.float64, ndmin=2).astype(np.float32)  # atof, float
    return x.reshape(len(x), *shape)


def write_tb_outputs(project: str | Path, outputs) -> Path:
    """Write the expected predictions of hls4ml's testbench, ``tb_data/tb_output_predictions.dat``: one
    sample a line, ``%.17g`` (float64 exactly), e.g. the emulator's ``run(x).values()`` for the inputs
    `write_tb_data` wrote (one row each; ValueError otherwise). Atomic; returns the file's path."""
    from pipeline.util import atomic_write_text

    tb = Path(project) / "tb_data"
    inputs = tb / TB_INPUTS
    if not inputs.is_file():
        raise FileNotFoundError(f"{inputs} not found: generate the project with tb_inputs first")
    outputs = np.asarray(outputs, dtype=np.float64)
    with inputs.open(encoding="ascii") as f:
        n = sum(1 for line in f if line.strip())
    if outputs.ndim < 1 or len(outputs) != n:
        raise ValueError(f"expected outputs for the {n} test vectors of {inputs}, got an array of shape "
                         f"{outputs.shape}")
    import io

    buf = io.StringIO()
    np.savetxt(buf, outputs.reshape(n, -1), fmt="%.17g")
    path = tb / TB_OUTPUTS
    atomic_write_text(path, buf.getvalue())
    return path


def generate(model, hls: dict, root: str | Path, name: str | None = None, tb_inputs=None,
             densities: Mapping | None = None, tb_outputs=None, folder: str | Path | None = None) -> Path:
    """Write the hls4ml project plus the SkipLSTM csim driver and the model IR (``skiplstm_ir.json`` +
    ``skiplstm_ir.npz``, what `pipeline.emulator.Emulator.from_project` reads) to ``<root>/<name>/``,
    atomically.

    ``tb_inputs`` (N, *input shape), when given, become hls4ml's ``tb_data/`` test vectors
    (`write_tb_data`); an entry that is not a finite float32 is refused before anything is written
    (`check_tb_inputs`). The generator does not compute expected outputs: pass them as ``tb_outputs``
    (N rows, computed from ``np.float32(tb_inputs)``, what the testbench reads) or, usually, write them
    afterwards from the emulator of the written IR::

        project = generate(model, hls, root, tb_inputs=x)
        x32 = read_tb_inputs(project)  # np.float32(x), exactly
        write_tb_outputs(project, Emulator.from_project(project).run(x32).values())

    ``name`` (default: the model's name) is sanitised into one C++ identifier (the project's top
    function and file names), so the project is always a direct child of ``root``; ``folder``, when
    given, is the project's folder instead (``root`` is then ignored), e.g. the stages' per-seed
    ``hls_project/<recipe>/seed<N>/``. Everything is written to ``<parent>/.<folder name>.partial`` and
    renamed into place at the end: a failure leaves the previous project as it was and no ``.partial``
    folder.
    """
    if tb_outputs is not None and tb_inputs is None:
        raise ValueError("tb_outputs need the tb_inputs they belong to")
    if tb_inputs is not None:
        tb_inputs = check_tb_inputs(tb_inputs)  # before any folder exists: a refusal leaves nothing behind
    hls = check_hls(hls)
    check_supported(model)
    name = cpp_identifier(name or model.name, prefix="m_")
    if folder is None:
        root = check_output_dir(root)
        final = root / name
    else:
        root = check_output_dir(Path(folder).parent)
        final = root / Path(folder).name
    tmp = root / f".{final.name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    for stale in sorted(root.glob(f".{final.name}.old.*"), key=os.path.getmtime, reverse=True):  # a run killed mid-swap
        if not final.exists():
            os.replace(stale, final)  # that run's previous project was the last complete one
        else:
            shutil.rmtree(stale, ignore_errors=True)
    try:
        hls_model = convert(model, hls, tmp, densities=densities)
        hls_model.write()
        info = _io_info(hls_model)
        (tmp / "skiplstm_csim.cpp").write_text(render("skiplstm_csim.cpp.j2", **info), encoding="utf-8")
        check_project(tmp)  # the rules Vitis HLS imposes (pipeline.hls.synth_check); refuse before writing
        _make_deterministic(tmp, final, hls_model)
        model_ir.save(extract_ir(hls_model), tmp)  # no paths or stamps in it: deterministic
        if tb_inputs is not None:
            write_tb_data(tmp, tb_inputs, tb_outputs)
        lstm = [
            {"name": n.name, "layer_id": n.index, "n_in": n.get_attr("n_in"), "units": n.get_attr("n_out"),
             "lanes": n.get_attr("lanes"), "steps": n.get_attr("n_timesteps"), "prune": n.get_attr("prune"),
             "prune_last": bool(n.get_attr("prune_last", True)),
             "threshold": n.get_attr("threshold"), "token_input": bool(n.get_attr("token_input", False))}
            for n in hls_model.get_layers() if n.class_name == "SparseStateLSTMLayer"
        ]
        dense = []
        for n in hls_model.get_layers():
            if n.class_name == "Dense":  # what the head costs: hls4ml's multipliers, n_in x n_out / reuse
                n_in, n_out = int(n.get_attr("n_in")), int(n.get_attr("n_out"))
                reuse = int(n.get_attr("reuse_factor", 1))
                dense.append({"name": n.name, "n_in": n_in, "n_out": n_out, "strategy": str(n.get_attr("strategy")),
                              "reuse_factor": reuse, "multipliers": -(-n_in * n_out // reuse)})
        manifest = {**info, "model": model.name, "lstm_layers": lstm, "dense_layers": dense,
                    "hls": {k: hls[k] for k in sorted(hls)},
                    "input_shape": [int(d) for d in hls_model.get_input_variables()[0].shape],
                    "names": hls_model.skiplstm_names, "folded_embeddings": hls_model.skiplstm_folds}
        (tmp / "skiplstm_manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        replace_dir(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final

"""Checks that hold on both routes to a project: `pipeline.hls.project.generate` and the plain hls4ml
route of the README (``convert_from_keras_model`` + ``write()``/``compile()``).

`register_checks` adds one model pass, ``skiplstm_check_weight_ranges``, at the front of the Vivado and
Vitis backends' ``write`` flow, so every ``hls_model.write()`` (and ``compile()``, which writes first)
refuses weights that their types cannot hold (`check_weight_ranges`) and types that contradict a
quantised layer's (`check_quantised_types`) before a file is written. `generate`/`convert` run the same check earlier, at conversion, with the Keras layer names.
"""

from __future__ import annotations

import numpy as np

PASS_NAME = "skiplstm_check_weight_ranges"
_DONE = False


def check_weight_ranges(hls_model, names: dict[str, str] | None = None) -> None:
    """Refuse weights that the weight types cannot hold (they would wrap or saturate silently).

    For each weight tensor of each layer (the LUTs excepted: they are quantised into their type by
    construction), ``max |w|`` must lie in the type's range; the error names the layer, the tensor,
    max |w| and the type, and suggests a type with enough integer bits."""
    from pipeline.precision import to_fixed, widen_to_hold

    original = {v: k for k, v in (names or {}).items()}
    for node in hls_model.get_layers():
        for key, var in node.weights.items():
            if key.endswith("_table"):
                continue
            try:
                t = to_fixed(var.type.precision)
            except ValueError:
                continue
            data = np.asarray(var.data, dtype=np.float64)
            if data.size == 0:
                continue
            low, high = float(data.min()), float(data.max())
            if t.min_value <= low and high <= t.max_value:
                continue
            who = f"layer {node.name!r}"
            if original.get(node.name, node.name) != node.name:
                who += f" (Keras layer {original[node.name]!r})"
            wider = widen_to_hold(t, low, high)
            hint = (f"use a type with at least {wider.integer} integer bits, e.g. {wider.cpp()!r} (the recipe's "
                    f"hls.precision, or Precision['{key}'] of this layer in the hls4ml config)" if wider else
                    "no fixed-point type of <= 64 bits holds them; rescale the model")
            raise ValueError(
                f"{who}: weight tensor {key!r} has max |w| = {max(abs(low), abs(high)):.6g} (values in "
                f"[{low:.6g}, {high:.6g}]), beyond the range [{t.min_value:.6g}, {t.max_value:.6g}] of its type "
                f"{t.cpp()}, which would {'saturate' if t.o_mode != 'AP_WRAP' else 'wrap'} them; {hint}"
            )


def check_quantised_types(hls_model, names: dict[str, str] | None = None) -> None:
    """Refuse a graph whose types contradict a quantised Keras layer's (``quant=``, `pipeline.quantizers`):
    for each layer with ``quant_types`` (set by its handler), every explicit ``Precision`` entry of the hls4ml
    config and every weight and output type must be the layer's; the error names the layer, the tensor, the
    config's or graph's type and the layer's."""
    from pipeline.precision import to_fixed

    original = {v: k for k, v in (names or {}).items()}
    conv = hls_model.config.backend.convert_precision_string
    for node in hls_model.get_layers():
        quant = node.get_attr("quant_types")
        if not quant:
            continue
        who = f"layer {node.name!r}"
        if original.get(node.name, node.name) != node.name:
            who += f" (Keras layer {original[node.name]!r})"
        for var, layer_type in quant.items():
            if var == "input":
                continue
            explicit = hls_model.config.layer_name_precision.get(f"{node.name.lower()}_{var}")
            if explicit not in (None, "auto") and to_fixed(conv(explicit)) != to_fixed(layer_type):
                raise ValueError(f"{who}: the hls4ml config sets Precision['{var}'] = {explicit!r}, but the layer was "
                                 f"trained quantised with {var} = {layer_type!r}; drop the entry or set the layer's type")
            if var == "weight" and node.get_attr("token_input", False):
                continue  # folded: the rows E[v] @ W_x replaced W_x, exactly (pipeline.hls.fold)
            if var == "result":
                actual = node.get_output_variable().type.precision
            elif var == "accum" and node.get_attr("accum_t") is not None and node.class_name != "SparseStateLSTMLayer":
                actual = node.get_attr("accum_t").precision
            elif var in node.weights:
                actual = node.weights[var].type.precision
            else:
                continue
            if to_fixed(actual) != to_fixed(layer_type):
                raise ValueError(f"{who}: its {var} type is {to_fixed(actual).cpp()} in the hls4ml graph, but the layer "
                                 f"was trained quantised with {var} = {layer_type!r}; set Precision['{var}'] of this "
                                 "layer in the hls4ml config to it (config_from_keras_model(model, granularity='name') "
                                 "does)")


def _check(model) -> bool:
    check_quantised_types(model, getattr(model, "skiplstm_names", None))
    check_weight_ranges(model, getattr(model, "skiplstm_names", None))
    return False  # nothing changed


def register_checks() -> None:
    """Register the pass and put it first in each backend's write flow (idempotent)."""
    global _DONE
    if _DONE:
        return
    from hls4ml.model.flow.flow import get_flow
    from hls4ml.model.optimizer.optimizer import ModelOptimizerPass, optimizer_map, register_pass

    if PASS_NAME not in optimizer_map:
        register_pass(PASS_NAME, ModelOptimizerPass(PASS_NAME, _check))
    for backend in ("vivado", "vitis"):
        try:
            flow = get_flow(f"{backend}:write")
        except Exception:  # noqa: BLE001 - a backend this hls4ml does not have
            continue
        if PASS_NAME not in flow._optimizers:
            flow._optimizers.insert(0, PASS_NAME)
    _DONE = True

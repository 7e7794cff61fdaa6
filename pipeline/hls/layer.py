"""hls4ml extension for `SparseStateLSTM`: Keras-3 handler, IR layer, Jinja2 templates, kernel source.

The handler, IR layer and templates are module-level classes; importing this module registers nothing.
`pipeline.hls.register()` (idempotent; `generate` and `convert` call it) registers them with hls4ml, and
`pipeline.hls.extract.extract_ir` with `pipeline.ir`, so ``pipeline.emulator.Emulator(model_graph)``
reads an hls4ml graph. After that a Keras author uses the hls4ml calls they know::

    import pipeline.hls
    pipeline.hls.register()  # SparseStateLSTM with hls4ml (idempotent)
    config = hls4ml.utils.config_from_keras_model(model, granularity="name")
    hls_model = hls4ml.converters.convert_from_keras_model(model, hls_config=config, output_dir=...)
    hls_model.compile(); hls_model.predict(x)

Per-layer config keys (``config["LayerName"][name]``): ``Precision`` entries ``weight``,
``recurrent_weight``, ``bias``, ``accum``, ``cell``, ``table``, ``result``; ``Lanes`` (P, a divisor
of H); ``SkipZeros`` (True: sparse mode, False: dense mode); ``TableSize`` (power of two, 64..65536);
``ExpectedInputDensity`` / ``ExpectedStateDensity`` (fractions of nonzero x_t / h_{t-1} entries, 0..1,
default 1: the StreamLoop's LOOP_TRIPCOUNT average); ``WeightChunks`` (0: dense weights; KE > 0: the
weight-sparse engine, W_x and W_h as KE (value, row) pairs a column and lane, KE at least what the weights
need and PICK_DEPTH, at most 4H/P; -1: as the quantised weights need).

hls4ml settings the kernel has one answer to: the layer's ``Strategy`` is ``Resource`` (the column
stream; set for it when the config leaves it unset, which also makes hls4ml's top function DATAFLOW
instead of PIPELINE); ``Latency`` or any other explicit value, ``PipelineStyle: pipeline``,
``IOType: io_stream`` and ``ReuseFactor`` other than 1 (the reuse is set by ``Lanes``: each multiplier
serves 4H/P words per column, so ReuseFactor R corresponds to Lanes = 4H/R) are refused.
"""

from __future__ import annotations

import math

import numpy as np
from hls4ml.backends.template import FunctionCallTemplate, LayerConfigTemplate
from hls4ml.converters.keras_v3._base import KerasV3LayerHandler
from hls4ml.model.attributes import Attribute, ConfigurableAttribute, TypeAttribute, WeightAttribute
from hls4ml.model.layers import Layer

from pipeline import accelerator, fixed
from pipeline.ir import (  # noqa: F401 (shared with the emulator; re-exported)
    PRUNE_MODES,
    SIGMOID_RANGE,
    TANH_RANGE,
    check_table_size,
    lut_values,
    quantise_threshold,
)
from pipeline.precision import DEFAULT_CELL, DEFAULT_STATE, DEFAULT_TABLE, exact_accum, to_fixed
from pipeline.templating import _jinja_env, check_density, render, template_dir  # noqa: F401 (re-exported)

KERAS_CLASS = "pipeline.layers.SparseStateLSTM"
KERAS_QUANT_DENSE = "pipeline.layers.QuantDense"


def check_hls4ml_settings(config, layer: str, units: int, reuse_factor) -> None:
    """Refuse the hls4ml settings the SparseStateLSTM kernel does not implement (module docstring)."""
    io_type = config.get_config_value("IOType")
    if io_type != "io_parallel":
        raise ValueError(f"IOType {io_type!r} is not supported: the SparseStateLSTM kernel implements "
                         "io_parallel only")
    strategy = config.layer_name_strategy.get(layer.lower())
    if strategy is not None and str(strategy).lower() != "resource":
        raise ValueError(f"Strategy {strategy!r} is not supported for a SparseStateLSTM layer: its kernel is a "
                         "column stream (Strategy 'Resource'); leave the layer's Strategy unset or set 'Resource'")
    style = str(config.pipeline_style or "auto").lower()
    if style == "pipeline":
        raise ValueError("PipelineStyle 'pipeline' is not supported with a SparseStateLSTM layer: a pipelined "
                         "top function would unroll the data-dependent column loops; use 'dataflow' or 'auto'")
    if isinstance(reuse_factor, bool) or not isinstance(reuse_factor, int | np.integer) or reuse_factor != 1:
        r = reuse_factor if isinstance(reuse_factor, int | np.integer) and reuse_factor > 0 else None
        maps = r is not None and (4 * units) % r == 0 and units % (4 * units // r) == 0
        hint = (f"ReuseFactor {r} corresponds to Lanes = 4H/R = {4 * units // r}" if maps else
                f"ReuseFactor R corresponds to Lanes = 4H/R, and Lanes must divide H = {units}: "
                f"valid Lanes {accelerator.valid_lanes(units)}")
        raise ValueError(f"ReuseFactor={reuse_factor!r} is not supported for a SparseStateLSTM layer: set Lanes "
                         f"instead (each of the P multipliers serves 4H/P words of every column; {hint})")


def kernel_constants(node) -> dict:
    """The schedule constants and narrow types of one layer's CONFIG_T (see nnet_sparse_lstm.h)."""
    from pipeline.precision import covering_type, index_bits

    n_in, h, lanes = node.get_attr("n_in"), node.get_attr("n_out"), node.get_attr("lanes")
    token = bool(node.get_attr("token_input", False))
    shape = accelerator.LayerShape(n_in, h, lanes, token, int(node.get_attr("weight_chunks", 0) or 0))
    x_t = to_fixed(node.get_input_variable().type.precision)
    h_t = to_fixed(node.get_output_variable().type.precision)
    w_t = to_fixed(node.get_attr("weight").type.precision)
    wr_t = to_fixed(node.get_attr("recurrent_weight").type.precision)
    x_cols = shape.dense_cols_x
    avg_x = x_cols if token else node.get_attr("expected_input_density", 1.0) * n_in
    avg_h = node.get_attr("expected_state_density", 1.0) * h
    return {
        "mac_value_t": covering_type([h_t], hold_one=True) if token else covering_type([x_t, h_t]),
        "mac_weight_t": covering_type([w_t, wr_t]),
        "col_bits": index_bits(max(n_in, h)), "count_bits": index_bits(x_cols + h),
        "iter_bits": index_bits((x_cols + h) * shape.stream_chunks), "chunk_bits": index_bits(shape.stream_chunks),
        "gate_iter_bits": index_bits(shape.gate_iters(True)),
        "chunks": shape.stream_chunks, "avg_cols_x": f"{avg_x:.4g}", "avg_cols_h": f"{avg_h:.4g}",
        "stream_avg": int(round((avg_x + avg_h) * shape.stream_chunks)), "stream_max": (x_cols + h) * shape.stream_chunks,
        "gate_iters_dense": shape.gate_iters(False), "gate_iters_sparse": shape.gate_iters(True),
        "init_depth": accelerator.INIT_DEPTH, "pick_depth": accelerator.PICK_DEPTH,
        "mac_depth": accelerator.MAC_DEPTH, "gate_depth": accelerator.GATE_DEPTH,
        "acc_latency": accelerator.ACC_LATENCY,
    }


class FixedQuantizer:
    """An hls4ml-style quantizer (``hls_type``, callable on data) for one `pipeline.fixed.FixedType`: what a
    quantised layer's handler puts in the parsed layer (``<var>_quantizer``), so that hls4ml's
    ``config_from_keras_model`` writes the layer's types into the config it returns, and hls4ml's own
    layers (Dense) type and quantise their weights with them."""

    def __init__(self, t):
        from hls4ml.model.types import FixedPrecisionType

        self.fixed = t
        self.bits = t.width
        self.hls_type = FixedPrecisionType(t.width, t.integer, t.signed, rounding_mode=t.q_mode[3:],
                                           saturation_mode=t.o_mode[3:])

    def __call__(self, data):
        from pipeline.quantizers import quantize_numpy

        return quantize_numpy(data, self.fixed)

    def serialize_state(self):
        return {"type": self.fixed.cpp()}


def quant_attributes(layer) -> dict:
    """The attributes a quantised SparseStateLSTM's handler adds: ``quant_types`` (Precision name -> C++
    type, the accumulator as the layer derives it, and ``input``), ``quant_table_size``, ``table_size``
    and one `FixedQuantizer` per type (``<var>_quantizer``, read by hls4ml's ``config_from_keras_model``)."""
    cell = layer.cell
    q = cell.quant
    types = {"input": q.input, "weight": q.weight, "recurrent_weight": q.recurrent_weight, "bias": q.bias,
             "accum": cell.accum_type, "table": q.table, "cell": q.cell, "result": q.result}
    out = {"quant_types": {k: t.cpp() for k, t in types.items()}, "quant_table_size": int(q.table_size),
           "table_size": int(q.table_size)}
    for var, t in types.items():
        if var != "input":
            out[f"{var}_quantizer"] = FixedQuantizer(t)
    return out


class QuantDenseHandler(KerasV3LayerHandler):
    """Keras-3 handler of `pipeline.layers.QuantDense`: hls4ml's Dense with the layer's quantised weights
    and types (``weight_quantizer``, ``bias_quantizer``, ``result_quantizer`` and ``quant_types``)."""

    def default_class_name(self, layer) -> str:
        return "Dense"

    def handle(self, layer, in_tensors, out_tensors):
        weights = layer.quantised_weights()
        q = layer.quant
        n_in = int(weights[0].shape[0])
        types = {k: getattr(q, k) for k in q.KEYS}
        source = getattr(getattr(in_tensors[0], "_keras_history", None), "operation", None)
        x_quant = getattr(getattr(source, "cell", None), "quant", None)
        if x_quant is not None:  # a quantised SparseStateLSTM feeds it: the exact accumulator of its state type
            types["accum"] = q.accumulator(x_quant.result, n_in)
        config = {"data_format": "channels_last", "weight_data": weights[0],
                  "bias_data": weights[1] if layer.use_bias else None, "n_in": n_in, "n_out": int(weights[0].shape[1]),
                  "quant_types": {k: t.cpp() for k, t in types.items()}}
        for var, t in types.items():
            config[f"{var}_quantizer"] = FixedQuantizer(t)
        return config


class SparseStateLSTMHandler(KerasV3LayerHandler):
    """Keras-3 handler of `KERAS_CLASS`. It declares no ``handles``: hls4ml's handler metaclass would
    register a class that does when it is defined (at import); `register` registers it instead."""


    def handle(self, layer, in_tensors, out_tensors):
        if len(in_tensors[0].shape) != 3:
            raise ValueError(f"layer {layer.name!r}: expected a (batch, time, features) input")
        n_steps, n_in = in_tensors[0].shape[1], in_tensors[0].shape[2]
        if n_steps is None:
            raise ValueError(
                f"layer {layer.name!r}: the accelerator needs a fixed sequence length; build the model "
                "with keras.Input(shape=(T, features)) and a concrete T"
            )
        cell = layer.cell
        quant = getattr(cell, "quant", None)
        weights = layer.lstm_weights() if quant is None else layer.quantised_lstm_weights()
        bias = weights[2] if cell.use_bias else np.zeros(4 * cell.units, np.float32)
        config = dict(self.default_config)
        config.update({
            "class_name": "SparseStateLSTM",
            "n_timesteps": int(n_steps),
            "n_in": int(n_in),
            "n_out": int(cell.units),
            "return_sequences": bool(layer.return_sequences),
            "prune": cell.prune,
            "prune_last": bool(layer.prune_last),
            "threshold": float(np.asarray(cell.threshold.numpy())),
            "weight_data": np.asarray(weights[0]),
            "recurrent_weight_data": np.asarray(weights[1]),
            "bias_data": np.asarray(bias),
        })
        if quant is not None:
            config.update(quant_attributes(layer))
        return (config,)


class SparseStateLSTMLayer(Layer):
    _expected_attributes = [
        Attribute("n_in"),
        Attribute("n_out"),
        Attribute("n_timesteps"),
        Attribute("return_sequences", value_type=bool, default=False),
        Attribute("prune", value_type=str, default="state"),
        Attribute("prune_last", value_type=bool, default=True),  # False: h_T leaves unpruned
        Attribute("threshold", value_type=float, default=0.0),
        Attribute("token_input", value_type=bool, default=False),  # set by pipeline.hls.fold
        ConfigurableAttribute("lanes", value_type=int, default=16),
        ConfigurableAttribute("skip_zeros", value_type=bool, default=True),
        ConfigurableAttribute("table_size", value_type=int, default=1024),
        ConfigurableAttribute("expected_input_density", value_type=float, default=1.0),
        ConfigurableAttribute("expected_state_density", value_type=float, default=1.0),
        ConfigurableAttribute("weight_chunks", value_type=int, default=0),  # KE > 0: the weight-sparse engine
        WeightAttribute("weight"),
        WeightAttribute("recurrent_weight"),
        WeightAttribute("bias"),
        TypeAttribute("weight"),
        TypeAttribute("recurrent_weight"),
        TypeAttribute("bias"),
        TypeAttribute("accum"),
        TypeAttribute("cell"),
        TypeAttribute("table"),
    ]

    def _explicit(self, var: str) -> str | None:
        cfg = self.model.config.layer_name_precision
        value = cfg.get(f"{self.name.lower()}_{var}")
        value = None if value in (None, "auto") else value
        quant = self.get_attr("quant_types")
        if quant and var in quant:  # a quantised layer: its own type, which the config may only repeat
            conv = self.model.config.backend.convert_precision_string
            if value is not None and to_fixed(conv(value)) != to_fixed(quant[var]):
                raise ValueError(
                    f"layer {self.name!r}: the hls4ml config sets Precision['{var}'] = {value!r}, but the layer was "
                    f"trained quantised with {var} = {quant[var]!r}; drop the config entry or set it to the layer's type")
            return quant[var]
        return value

    def _check_quant(self) -> None:
        """A quantised layer: its table size and input type must be the accelerator's (refused otherwise,
        naming both)."""
        quant = self.get_attr("quant_types")
        if not quant:
            return
        size, trained = self.get_attr("table_size"), self.get_attr("quant_table_size")
        if size != trained:
            raise ValueError(f"layer {self.name!r}: the hls4ml config sets TableSize = {size}, but the layer was trained "
                             f"quantised with table_size = {trained}; set TableSize = {trained} or drop it")
        x_prec = self.get_input_variable().type.precision
        if type(x_prec).__name__ != "UnspecifiedPrecisionType" and to_fixed(x_prec) != to_fixed(quant["input"]):
            raise ValueError(
                f"layer {self.name!r}: its input arrives as {to_fixed(x_prec).cpp()}, but the layer was trained "
                f"quantised with input = {quant['input']!r}; set the previous layer's result type (the Input "
                f"layer's Precision['result'] in the hls4ml config) to {quant['input']!r}")

    def initialize(self):
        h = self.get_attr("n_out")
        try:
            accelerator.check_lanes(self.get_attr("lanes"), h)
            n_bits = int(math.log2(check_table_size(self.get_attr("table_size"))))
            check_hls4ml_settings(self.model.config, self.name, h, self.get_attr("reuse_factor", 1))
            for key in ("expected_input_density", "expected_state_density"):
                check_density(key, self.get_attr(key))
        except ValueError as err:
            raise ValueError(f"layer {self.name!r} (units={h}): {err}") from None
        self._check_quant()
        # the kernel's one strategy; unset, hls4ml's auto pipeline style then picks DATAFLOW
        self.model.config.layer_name_strategy[self.name.lower()] = "resource"
        self.set_attr("table_bits", n_bits)
        if self.get_attr("prune") not in PRUNE_MODES:
            raise ValueError(f"layer {self.name!r}: unknown prune mode {self.get_attr('prune')!r}")
        conv = self.model.config.backend.convert_precision_string
        shape = [self.get_attr("n_timesteps"), h] if self.get_attr("return_sequences") else [h]
        result = self._explicit("result") or DEFAULT_STATE
        self.add_output_variable(shape, precision=conv(result))
        default = self.model.config.model_precision.get("default", "ap_fixed<16,6>")
        for var, var_name in (("weight", "w{index}"), ("recurrent_weight", "wr{index}"), ("bias", "b{index}")):
            prec = conv(self._explicit(var) or default)
            self.add_weights_variable(name=var, var_name=var_name, type_name=f"{self.name}_{var}_t",
                                      precision=prec)
        table_prec = conv(self._explicit("table") or DEFAULT_TABLE)
        self.set_attr("table_t", self._wrap_precision_to_type(f"{self.name}_table_t", table_prec))
        table_t = to_fixed(table_prec)
        size = self.get_attr("table_size")
        for kind in ("sigmoid", "tanh"):
            values = fixed.quantise_value(lut_values(kind, size), table_t)
            self.add_weights_variable(name=f"{kind}_table", var_name=f"{kind}_table{{index}}",
                                      type_name=f"{self.name}_table_t", precision=table_prec, data=values)
        self._add_weight_pairs()
        cell = self._explicit("cell") or DEFAULT_CELL
        self.set_attr("cell_t", self._wrap_precision_to_type(f"{self.name}_cell_t", conv(cell)))
        accum = self._explicit("accum")
        if accum is None:
            x_prec = self.get_input_variable().type.precision
            if type(x_prec).__name__ == "UnspecifiedPrecisionType":
                x_prec = conv(default)
            x_t = to_fixed(x_prec)
            h_t = to_fixed(conv(result))
            w_t = to_fixed(self.get_attr("weight").type.precision)
            wr_t = to_fixed(self.get_attr("recurrent_weight").type.precision)
            b_t = to_fixed(self.get_attr("bias").type.precision)
            try:
                accum = exact_accum([(w_t, x_t), (wr_t, h_t)], b_t, self.get_attr("n_in") + h).cpp()
            except ValueError as err:
                raise ValueError(f"layer {self.name!r}: {err}") from None
        self.set_attr("accum_t", self._wrap_precision_to_type(f"{self.name}_accum_t", conv(accum)))


def _pairs_of(layer, var: str, chunks: int):
    """The (values, rows) of one weight matrix for the weight-sparse engine, from its values as stored
    (quantised to its type), flattened in the kernel's order ((j * KE + k) * P + p)."""
    w = layer.get_attr(var)
    t = to_fixed(w.type.precision)
    n_cols = layer.get_attr("n_in") if var == "weight" else layer.get_attr("n_out")
    matrix = fixed.quantise_value(np.asarray(w.data, np.float64), t).reshape(n_cols, 4 * layer.get_attr("n_out"))
    values, rows = accelerator.weight_pairs(matrix, layer.get_attr("lanes"), chunks)
    return values.reshape(-1), rows.reshape(-1)


def _weight_pairs_method(self) -> None:
    """``WeightChunks`` = KE > 0: add the pair arrays of W_x and W_h (values in their own types, rows as
    ``ap_uint<2 + UW>``) that the kernel's PairLoop reads (`pipeline.accelerator.weight_pairs`); refused
    for a folded embedding and for a KE outside [what the weights need, C]."""
    ke = self.get_attr("weight_chunks")
    if isinstance(ke, bool) or not isinstance(ke, int | np.integer) or ke < -1:
        raise ValueError(f"layer {self.name!r}: WeightChunks must be 0 (dense weights), -1 (as the weights need) or "
                         f"a pair count KE > 0, got {ke!r}")
    if not ke:
        return
    if self.get_attr("token_input", False):
        raise ValueError(f"layer {self.name!r}: WeightChunks needs dense input columns, not a folded embedding")
    from hls4ml.model.types import IntegerPrecisionType

    h, lanes = self.get_attr("n_out"), self.get_attr("lanes")
    c = 4 * h // lanes
    mats = [fixed.quantise_value(np.asarray(self.get_attr(v).data, np.float64),
                                 to_fixed(self.get_attr(v).type.precision)).reshape(-1, 4 * h)
            for v in ("weight", "recurrent_weight")]
    need = accelerator.weight_chunks_for(mats, lanes)
    if ke == -1:
        ke = need
        self.set_attr("weight_chunks", int(ke))
    if not need <= ke <= c:
        raise ValueError(f"layer {self.name!r}: WeightChunks must be in [{need}, C = {c}] (the largest nonzero count of "
                         f"a lane's share of a column, at least PICK_DEPTH = {accelerator.PICK_DEPTH}), got {ke}")
    row_prec = IntegerPrecisionType(width=2 + accelerator.row_word_bits(h, lanes), signed=False)
    for var, prec_of in (("weight", "weight"), ("recurrent_weight", "recurrent_weight")):
        values, rows = _pairs_of(self, var, ke)
        stem = "kernel" if var == "weight" else "recurrent"
        self.add_weights_variable(name=f"{stem}_pairs", var_name=f"{stem[0]}p{{index}}",
                                  type_name=f"{self.name}_{prec_of}_t", precision=self.get_attr(var).type.precision,
                                  data=values)
        self.add_weights_variable(name=f"{stem}_rows", var_name=f"{stem[0]}r{{index}}", type_name=f"{self.name}_row_t",
                                  precision=row_prec, data=rows)


SparseStateLSTMLayer._add_weight_pairs = _weight_pairs_method


class SparseStateLSTMConfigTemplate(LayerConfigTemplate):
    def __init__(self):
        super().__init__(SparseStateLSTMLayer)

    def format(self, node):
        params = self._default_config_params(node)
        state_t = to_fixed(node.get_output_variable().type.precision)
        table_t = to_fixed(node.get_attr("table_t").precision)
        thr_t = table_t if node.get_attr("prune") == "output_gate" else state_t
        thr = quantise_threshold(node.get_attr("threshold"), thr_t)
        return render(
            "sparse_lstm_config.h.j2", **kernel_constants(node),
            name=node.name, index=params["index"], n_in=node.get_attr("n_in"), n_state=node.get_attr("n_out"),
            n_timesteps=node.get_attr("n_timesteps"), n_lanes=node.get_attr("lanes"),
            table_size=node.get_attr("table_size"), table_bits=node.get_attr("table_bits"),
            skip_zeros=node.get_attr("skip_zeros"), prune=node.get_attr("prune"),
            prune_last=node.get_attr("prune_last", True),
            token_input=node.get_attr("token_input", False), folded=node.get_attr("folded_embedding", ""),
            return_sequences=node.get_attr("return_sequences"),
            weight_t=node.get_attr("weight").type.name, recurrent_weight_t=node.get_attr("recurrent_weight").type.name,
            bias_t=node.get_attr("bias").type.name, accum_t=node.get_attr("accum_t").name,
            cell_t=node.get_attr("cell_t").name, table_t=node.get_attr("table_t").name,
            threshold_t=thr_t.cpp(), threshold_literal=repr(thr), threshold_text=f"{node.get_attr('threshold'):.6g}",
            weight_chunks=node.get_attr("weight_chunks", 0),
            row_t=node.get_weights("kernel_rows").type.name if node.get_attr("weight_chunks", 0) else "",
            row_word_bits=accelerator.row_word_bits(node.get_attr("n_out"), node.get_attr("lanes")),
        )


class SparseStateLSTMFunctionTemplate(FunctionCallTemplate):
    def __init__(self):
        super().__init__(SparseStateLSTMLayer, include_header=["nnet_utils/nnet_sparse_lstm.h"])

    def format(self, node):
        params = self._default_function_params(node)
        return render(
            "sparse_lstm_function.j2", input_t=params["input_t"], output_t=params["output_t"],
            config=params["config"], input=params["input"], output=params["output"],
            w=node.get_weights("weight").name, wr=node.get_weights("recurrent_weight").name,
            b=node.get_weights("bias").name, sig=node.get_weights("sigmoid_table").name,
            tanh=node.get_weights("tanh_table").name,
            pairs=[node.get_weights(k).name for k in ("kernel_pairs", "kernel_rows", "recurrent_pairs", "recurrent_rows")]
            if node.get_attr("weight_chunks", 0) else [],
        ).rstrip("\n")


TEMPLATES = (SparseStateLSTMConfigTemplate, SparseStateLSTMFunctionTemplate)

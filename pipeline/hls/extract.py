"""What the emulator needs of a converted hls4ml ``ModelGraph``, read off it: `extract_ir`.

`pipeline.hls.register` registers `extract_ir` with `pipeline.ir` (`register_graph_reader`), so that
``pipeline.emulator.Emulator(model_graph)`` reads an hls4ml graph; the generator saves its result in the
project (`pipeline.ir.save`), which the emulator, csim and RTL stages read back. Nothing here imports
hls4ml: a graph is read through its attributes.
"""

from __future__ import annotations

import numpy as np

from pipeline import ir as model_ir

_LSTM_CLASSES = ("SparseStateLSTMLayer", "SparseStateLSTM")


def extract_ir(hls_model) -> model_ir.ModelIR:
    """What the emulator needs of a converted hls4ml ``ModelGraph`` (after `convert`, folding included),
    as a `pipeline.ir.ModelIR`: per layer the weights as raw integers of their types, read the way the
    C-simulation reads them (`pipeline.ir.read_weights`), every tensor's type (`pipeline.precision.to_fixed`)
    and the attributes (sizes, lanes, LUT size, threshold, pruning rule, skip_zeros, token input).
    Supported layers: Input, Embedding, SparseStateLSTM, Dense / PointwiseConv1D, Activation / ReLU
    (relu, linear); anything else is a ValueError naming the layer."""
    from pipeline.ir import LSTMIR, ActivationIR, DenseIR, EmbeddingIR, ModelIR, Tensor, read_weights
    from pipeline.precision import to_fixed

    def result_t(node):
        return to_fixed(node.get_output_variable().type.precision)

    layers = []
    inputs = []
    for node in hls_model.get_layers():
        cls = node.class_name
        if cls == "Input":
            inputs.append((node.name, result_t(node), tuple(int(d) for d in node.get_output_variable().shape)))
        elif cls in _LSTM_CLASSES:
            layers.append(LSTMIR(
                name=node.name, n_in=int(node.get_attr("n_in")), units=int(node.get_attr("n_out")),
                steps=int(node.get_attr("n_timesteps")), lanes=int(node.get_attr("lanes")),
                return_sequences=bool(node.get_attr("return_sequences")), prune=str(node.get_attr("prune")),
                prune_last=bool(node.get_attr("prune_last", True)),
                token_input=bool(node.get_attr("token_input", False)),
                skip_zeros=bool(node.get_attr("skip_zeros", True)), table_bits=int(node.get_attr("table_bits")),
                threshold=float(node.get_attr("threshold")),
                kernel=read_weights(node.get_weights("weight")),
                recurrent=read_weights(node.get_weights("recurrent_weight")),
                bias=read_weights(node.get_weights("bias")),
                sigmoid_table=read_weights(node.get_weights("sigmoid_table")),
                tanh_table=read_weights(node.get_weights("tanh_table")),
                accum_t=to_fixed(node.get_attr("accum_t").precision), cell_t=to_fixed(node.get_attr("cell_t").precision),
                table_t=to_fixed(node.get_attr("table_t").precision), result_t=result_t(node),
                weight_chunks=int(node.get_attr("weight_chunks", 0) or 0),
            ))
        elif cls in ("Dense", "PointwiseConv1D"):
            pointwise = cls == "PointwiseConv1D"
            n_in = int(node.get_attr("n_chan" if pointwise else "n_in"))
            n_out = int(node.get_attr("n_filt" if pointwise else "n_out"))
            weight = read_weights(node.get_weights("weight"))
            if node.get_attr("_weights_transposed", False):  # hls4ml's Resource strategy stores W^T (n_out x n_in)
                weight = Tensor(np.asarray(weight.raw).reshape(n_out, n_in).T.reshape(-1), weight.type)
            layers.append(DenseIR(
                name=node.name, n_in=n_in, n_out=n_out,
                width=int(node.get_attr("out_width")) if pointwise else 1, pointwise=pointwise,
                weight=weight, bias=read_weights(node.get_weights("bias")),
                accum_t=to_fixed(node.get_attr("accum_t").precision), result_t=result_t(node),
            ))
        elif cls in ("Activation", "ReLU") and node.get_attr("activation", "").lower() in ("relu", "linear"):
            layers.append(ActivationIR(node.name, node.get_attr("activation").lower(), result_t(node)))
        elif cls == "Embedding":
            layers.append(EmbeddingIR(node.name, int(node.get_attr("n_out")),
                                      read_weights(node.get_weights("embeddings")), result_t(node)))
        else:
            raise ValueError(
                f"layer {node.name!r} ({cls}{', ' + node.get_attr('activation') if cls == 'Activation' else ''}) "
                f"is not supported by the SkipLSTM emulator; supported: Input, Embedding, SparseStateLSTM, "
                "Dense, Activation(relu/linear)"
            )
    if not inputs:
        raise ValueError("the hls4ml model has no Input layer")
    name, input_t, shape = inputs[-1]
    return ModelIR(name=str(hls_model.config.get_project_name()), input_name=name, input_t=input_t,
                   input_shape=shape, layers=tuple(layers))

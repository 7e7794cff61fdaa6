"""Registration of the SparseStateLSTM extension with hls4ml: one explicit, idempotent call.

`register` adds to hls4ml's global registries: the Keras-3 handler of `pipeline.layers.SparseStateLSTM`
(`pipeline.hls.layer.SparseStateLSTMHandler`) and of `pipeline.layers.QuantDense` (hls4ml's Dense with the layer's quantised weights and types), the IR layer, the config and function templates and the
kernel header for the Vivado and Vitis backends, and the weight-range pass at the front of their write
flows (`pipeline.hls.checks`); and it gives `pipeline.ir` the reader of an hls4ml graph
(`pipeline.hls.extract.extract_ir`), so ``pipeline.emulator.Emulator(model_graph)`` works. Importing
any module of `pipeline.hls` changes none of that: a process that never converts a model keeps hls4ml
as it found it. `pipeline.hls.project.generate` and `convert` call `register` themselves; a Keras
author who converts with hls4ml's own calls calls ``pipeline.hls.register()`` first.
"""

from __future__ import annotations

_REGISTERED = False


def register() -> None:
    """Register the handler, IR layer, templates, kernel header and write-time checks with hls4ml, and the
    graph reader with `pipeline.ir`. Idempotent: a second call does nothing."""
    global _REGISTERED
    if _REGISTERED:
        return
    import hls4ml
    from hls4ml.converters.keras_v3._base import registry as keras_v3_handlers

    from pipeline import ir
    from pipeline.hls import layer
    from pipeline.hls.checks import register_checks
    from pipeline.hls.extract import extract_ir
    from pipeline.templating import template_dir

    keras_v3_handlers[layer.KERAS_CLASS] = layer.SparseStateLSTMHandler()
    keras_v3_handlers[layer.KERAS_QUANT_DENSE] = layer.QuantDenseHandler()
    hls4ml.model.layers.register_layer("SparseStateLSTM", layer.SparseStateLSTMLayer)
    for backend_name in ("Vivado", "Vitis"):
        backend = hls4ml.backends.get_backend(backend_name)
        for template in layer.TEMPLATES:
            backend.register_template(template)
        backend.register_source(str(template_dir() / "nnet_sparse_lstm.h"))
    register_checks()  # weight ranges at write()/compile(), on both routes
    ir.register_graph_reader(extract_ir)  # Emulator(model_graph) reads the graph through it
    _REGISTERED = True

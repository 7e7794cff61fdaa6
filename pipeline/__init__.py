"""SkipLSTM: learned hidden-state pruning for LSTMs and a sparse-state FPGA accelerator generator.

After Ardakani, Ji, Gross, "Learning to Skip Ineffectual Recurrent Computations in LSTMs",
DATE 2019 (arXiv:1811.10396).

The public surface, one import away (``import pipeline``; then ``pipeline.<name>``)::

    model      SparseStateLSTM, SparseStateLSTMCell            Keras 3 layer (pipeline.layers)
               QuantDense                                      quantisation-aware Dense head (quant=)
    training   SparsityController                              threshold controller (pipeline.callbacks)
               WeightPruning, column_balanced_mask             column-balanced weight pruning (issue 31)
               polynomial_decay, constant_sparsity             tfmot schedules (pipeline.sparsity)
               state_sparsity, task_metric                     measurements
               load_mnist_rows, load_ptb_chars, load_dataset   bundled, offline data (pipeline.data)
    hardware   register                                        SparseStateLSTM into hls4ml (idempotent)
               hls_options, generate, convert                  the [hls] options; project / ModelGraph
               read_tb_inputs, write_tb_outputs                hls4ml testbench vectors
               Emulator                                        bit-accurate numpy emulator
               simulate_csim, compare                          g++ C-simulation; csim vs emulator
               simulate_rtl                                    Verilog twin in Verilator vs emulator
               place_and_route                                 each layer on an ECP5: Fmax, latency, bitstreams
    recipes    load_recipe, Recipe                             typed, frozen task recipes (models/)
    stages     run_train, run_sweep, run_hls, run_csim, run_emulate, run_rtl, run_pnr, run_report, run_demo,
               run_synth, run_results, record_status

Every name is imported on first use (a module ``__getattr__``): ``import pipeline`` and
``pipeline.load_recipe`` import no TensorFlow, Keras or hls4ml; ``pipeline.SparseStateLSTM`` imports
Keras, ``pipeline.generate`` hls4ml. Importing changes nothing in hls4ml: `register` (which `generate`
and `convert` call) does. Each stage function takes a `Recipe` or a recipe name or path.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> (module, attribute in it)
_PUBLIC = {
    "SparseStateLSTM": ("pipeline.layers", "SparseStateLSTM"),
    "SparseStateLSTMCell": ("pipeline.layers", "SparseStateLSTMCell"),
    "QuantDense": ("pipeline.layers", "QuantDense"),
    "SparsityController": ("pipeline.callbacks", "SparsityController"),
    "WeightPruning": ("pipeline.callbacks", "WeightPruning"),
    "column_balanced_mask": ("pipeline.weight_pruning", "column_balanced_mask"),
    "polynomial_decay": ("pipeline.sparsity", "polynomial_decay"),
    "constant_sparsity": ("pipeline.sparsity", "constant_sparsity"),
    "state_sparsity": ("pipeline.sparsity", "state_sparsity"),
    "task_metric": ("pipeline.metrics", "task_metric"),
    "load_mnist_rows": ("pipeline.data", "load_mnist_rows"),
    "load_ptb_chars": ("pipeline.data", "load_ptb_chars"),
    "load_dataset": ("pipeline.data", "load_dataset"),
    "register": ("pipeline.hls", "register"),
    "hls_options": ("pipeline.recipes", "hls_options"),
    "generate": ("pipeline.hls.project", "generate"),
    "convert": ("pipeline.hls.project", "convert"),
    "read_tb_inputs": ("pipeline.hls.project", "read_tb_inputs"),
    "write_tb_outputs": ("pipeline.hls.project", "write_tb_outputs"),
    "Emulator": ("pipeline.emulator", "Emulator"),
    "simulate_csim": ("pipeline.csim", "run"),
    "compare": ("pipeline.verify", "compare"),
    "simulate_rtl": ("pipeline.rtl.sim", "run_model"),
    "load_recipe": ("pipeline.recipes", "load_recipe"),
    "Recipe": ("pipeline.recipes", "Recipe"),
    "run_train": ("pipeline.stages", "run_train"),
    "run_sweep": ("pipeline.stages", "run_sweep"),
    "run_hls": ("pipeline.stages", "run_hls"),
    "run_csim": ("pipeline.stages", "run_csim"),
    "run_emulate": ("pipeline.stages", "run_emulate"),
    "run_rtl": ("pipeline.stages", "run_rtl"),
    "run_pnr": ("pipeline.stages", "run_pnr"),
    "place_and_route": ("pipeline.rtl.pnr", "run_model"),
    "run_report": ("pipeline.stages", "run_report"),
    "run_demo": ("pipeline.stages", "run_demo"),
    "run_synth": ("pipeline.synth", "run"),
    "run_results": ("pipeline.results", "main"),
    "record_status": ("pipeline.records", "record_status"),
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    try:
        module, attr = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module 'pipeline' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value  # the next lookup does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))

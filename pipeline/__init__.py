"""SkipLSTM: learned hidden-state pruning for LSTMs and a sparse-state FPGA accelerator generator.

After Ardakani, Ji, Gross, "Learning to Skip Ineffectual Recurrent Computations in LSTMs",
DATE 2019 (arXiv:1811.10396).

The package imports nothing heavy at import time: `pipeline.layers` (Keras), `pipeline.hls`
(hls4ml), `pipeline.emulator` (numpy only) are imported where used.
"""

__version__ = "0.1.0"

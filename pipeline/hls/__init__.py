"""HLS code generation: the hls4ml extension for SparseStateLSTM and project generation.

Importing this package registers `SparseStateLSTM` with hls4ml (handler, IR layer, templates, kernel).
"""

from pipeline.hls.layer import register

register()

__all__ = ["register"]

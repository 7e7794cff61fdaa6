"""HLS code generation: the hls4ml extension for SparseStateLSTM and project generation.

- `pipeline.hls.register()`: registers `SparseStateLSTM` with hls4ml (handler, IR layer, templates,
  kernel, write-time checks; `pipeline.hls.registration`). Explicit and idempotent: importing this
  package, or any module in it, changes nothing in hls4ml; `generate` and `convert` call it.
- `pipeline.hls.project`: `generate(model, hls, root)` (the project, its csim driver and saved IR),
  `convert` (the hls4ml ModelGraph), `make_config`.
- `pipeline.hls.layer` (the extension's classes), `pipeline.hls.fold` (folding an Embedding),
  `pipeline.hls.extract` (the IR the emulator reads), `pipeline.hls.checks`, `pipeline.hls.synth_check`.
"""

from __future__ import annotations

__all__ = ["register"]


def register() -> None:
    """Register SparseStateLSTM with hls4ml (idempotent; `pipeline.hls.registration.register`)."""
    from pipeline.hls.registration import register as _register

    _register()

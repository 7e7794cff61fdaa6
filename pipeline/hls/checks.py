"""Checks that hold on both routes to a project: `pipeline.hls.project.generate` and the plain hls4ml
route of the README (``convert_from_keras_model`` + ``write()``/``compile()``).

`register_checks` adds one model pass, ``skiplstm_check_weight_ranges``, at the front of the Vivado and
Vitis backends' ``write`` flow, so every ``hls_model.write()`` (and ``compile()``, which writes first)
refuses weights that their types cannot hold (`pipeline.hls.project.check_weight_ranges`) before a file
is written. `generate`/`convert` run the same check earlier, at conversion, with the Keras layer names.
"""

from __future__ import annotations

PASS_NAME = "skiplstm_check_weight_ranges"
_DONE = False


def _check(model) -> bool:
    from pipeline.hls.project import check_weight_ranges

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

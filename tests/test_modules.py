"""Module boundaries: the emulator reads the IR through `pipeline.ir` and never pulls in hls4ml or the
hls4ml extension (`pipeline.hls`, which registers itself with hls4ml on import)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_importing_the_emulator_imports_no_hls4ml():
    """In a fresh interpreter (this test process has imported hls4ml elsewhere)."""
    code = ("import sys, pipeline.emulator, pipeline.ir\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('hls4ml', 'tensorflow', 'keras')"
            " or m.startswith('pipeline.hls'))\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _imports(path: Path) -> set[str]:
    """Every module a file imports (top level or inside functions), with ``from x import y`` as ``x.y``."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_emulator_and_ir_import_nothing_from_the_generator():
    for name in ("emulator.py", "ir.py"):
        bad = {m for m in _imports(REPO / "pipeline" / name)
               if m.startswith(("hls4ml", "pipeline.hls", "tensorflow", "keras"))}
        assert not bad, f"pipeline/{name} imports {sorted(bad)}"
    # the generator takes nothing private from the emulator
    for path in sorted((REPO / "pipeline" / "hls").glob("*.py")):
        private = {m for m in _imports(path) if m.startswith("pipeline.emulator._")}
        assert not private, f"{path.name} imports {sorted(private)}"


def test_shared_names_are_one_definition_reexported_by_the_generator():
    import pipeline.hls.fold  # noqa: F401
    from pipeline import ir
    from pipeline.hls import layer

    for name in ("quantise_threshold", "lut_values", "SIGMOID_RANGE", "TANH_RANGE"):
        assert getattr(layer, name) is getattr(ir, name), name
    from pipeline import emulator

    assert emulator.Tensor is ir.Tensor

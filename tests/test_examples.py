"""The runnable example (examples/bring_your_own_model.py) end to end, and the README's copy of it:
the code the README shows uses only names it defines or `pipeline` exports, and its `pipeline` lines are
the example's own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "bring_your_own_model.py"


def _readme_blocks() -> list[str]:
    """The Python blocks of the README's "Bring your own Keras model" section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Bring your own Keras model", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_readme_example_uses_defined_names_and_the_examples_lines(tmp_path):
    """The first block is self-contained (ruff finds no undefined or unused name: F821, F841, F401), every
    ``pipeline.<name>`` it or the second block uses is public, and each line of the first block that
    calls `pipeline` is a line of examples/bring_your_own_model.py (the README cannot drift from the
    code a test runs). The second block continues the first (``model``, ``x``)."""
    import pipeline

    blocks = _readme_blocks()
    assert len(blocks) == 2, len(blocks)
    first = tmp_path / "readme_example.py"
    first.write_text(blocks[0])
    both = tmp_path / "readme_both.py"
    both.write_text(blocks[0] + "\n" + blocks[1])
    for path in (first, both):
        proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated",
                               "--select", "F821,F841,F401,F811", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    used = set(re.findall(r"\bpipeline\.([A-Za-z_]+)", blocks[0] + blocks[1]))
    assert used and used <= set(pipeline.__all__), used - set(pipeline.__all__)
    example = {line.strip() for line in EXAMPLE.read_text().splitlines()}
    for line in blocks[0].splitlines():
        if "pipeline." in line:
            assert line.strip() in example, line


@pytest.mark.slow
def test_bring_your_own_model_example_runs(tmp_path):
    """``python examples/bring_your_own_model.py``: trains, generates, and its checks pass (csim ==
    emulator and RTL == emulator bit for bit, cycles == the model: each raises otherwise); the figures it
    prints are the ones a trained, pruned model gives."""
    proc = subprocess.run([sys.executable, str(EXAMPLE), "--out", str(tmp_path / "byo"), "--epochs", "8"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line and not line.startswith(" "))
    assert float(lines["test accuracy (float)"]) > 0.5  # chance is 0.1
    assert 0.2 < float(lines["state sparsity (test)"]) < 0.8  # the schedule's target is 0.5
    assert "'csim sparse vs emulator': 'bit-identical'" in lines["checks"]
    assert lines["rtl check"] == "{'sparse': 'equal', 'dense': 'equal', 'dense_only': 'equal'}"
    assert float(lines["speedup (RTL, these vectors)"]) > 1.0
    assert (tmp_path / "byo" / "hls" / "byo" / "skiplstm_ir.json").is_file()

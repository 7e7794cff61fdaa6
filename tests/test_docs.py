"""The README's measured numbers: the block between ``<!-- measured`` and ``<!-- end measured -->`` holds
only numbers that the committed record it cites (bench/results.json) gives, each computed here from that
record, and no other number."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _block() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- measured:.*?-->\n(.*?)<!-- end measured -->", text, flags=re.S)
    assert match, "README.md has no measured block"
    return " ".join(match.group(1).split())  # line breaks do not count


def _expected() -> list[str]:
    """The strings the block must contain, from bench/results.json and the demo recipe."""
    from pipeline.recipes import load_recipe

    bench = json.loads((REPO / "bench" / "results.json").read_text())
    (demo,) = [v for k, v in bench["trained"]["result"].items() if k.split("/")[0] == "mnist_rows_demo"]
    (sparsity,) = demo["state_sparsity"].values()
    minutes, seconds = divmod(round(bench["wall_s"]), 60)
    recipe = load_recipe("mnist_rows_demo")
    keras_acc, fixed_acc = 100 * demo["float_metric"]["value"], 100 * demo["fixed_metric"]["value"]
    if recipe.quant.enabled:  # Keras computes the fixed point itself: "float" would be the wrong word
        metrics = [f"accuracy {keras_acc:.1f}% in Keras", f"{fixed_acc:.1f}% at `{recipe.quant.weight}` weights and state"]
    else:
        metrics = [f"accuracy {keras_acc:.1f}% float", f"{fixed_acc:.1f}% at `{recipe.hls.precision}`"]
    out = [f"state sparsity {100 * sparsity:.1f}%", *metrics,
           f"{demo['speedup']:.2f}x modelled", f"bound {demo['ideal_bound']:.2f}x", f"{minutes} min {seconds} s"]
    rows = {u: min(bench["accelerator"]["result"][u], key=lambda r: abs(r["target"] - 0.9)) for u in ("64", "256")}
    assert rows["64"]["lanes"] == rows["256"]["lanes"]
    out.append(f"~{100 * rows['64']['target']:.0f}% state sparsity and {rows['64']['lanes']} lanes")
    for u, r in rows.items():
        bound = "the bound " if u == "64" else ""
        out.append(f"H = {u} {r['speedup']:.2f}x of {bound}{r['ideal_bound']:.2f}x ({100 * r['fraction_of_bound']:.0f}%)")
    return out


def test_readme_measured_numbers_are_the_records():
    block = _block()
    rest = block
    for text in _expected():
        assert text in block, f"README's measured block: expected {text!r} (bench/results.json)"
        rest = rest.replace(text, "")
    rest = re.sub(r"seed 0|bench/results\.json", "", rest)
    assert not re.findall(r"\d", rest), f"numbers in the measured block that no record gives: {rest!r}"

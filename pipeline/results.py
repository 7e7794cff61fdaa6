"""``make results``: the paper-results table and plot from every trained recipe under ``out/``.

For each recipe with ``out/<recipe>/model.keras``: the train metrics, and the emulate stage (run
if missing or stale) for the fixed-point metric and the modelled speedup. Writes
``docs/results_table.md`` (included by hand in docs/RESULTS.md) and ``docs/results_<task>.png``
(state sparsity vs metric, dense baselines as horizontal lines).
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.recipes import MODELS_DIR, load_recipe
from pipeline.util import atomic_write_text, stage


def collect(out="out") -> list[dict]:
    from pipeline.stages import run_emulate

    rows = []
    for path in sorted(MODELS_DIR.glob("*.toml")):
        name = path.stem
        if name == "mnist_rows_demo" or not (Path(out) / name / "model.keras").is_file():
            continue
        recipe = load_recipe(name)
        train = json.loads((Path(out) / name / "train_metrics.json").read_text())
        emu = run_emulate(name, out=out)
        sparsity = list(train["test"]["state_sparsity"].values())[0]
        s = recipe["sparsity"]
        rows.append({
            "recipe": name, "task": recipe["data"]["name"], "units": recipe["model"]["units"][0],
            "prune": "none" if s["schedule"] == "fixed" and not s["threshold"] else recipe["model"]["prune"],
            "gate_l1": recipe["model"]["gate_l1"],
            "target": None if s["schedule"] == "fixed" else s["target"],
            "sparsity": sparsity, "metric": train["test"]["metric"], "float": train["test"]["value"],
            "fixed": emu["fixed"]["value"], "speedup": emu["speedup"], "ideal": emu["ideal_speedup"],
            "energy": emu["energy_ratio_model"], "epochs": train["epochs"], "wall_s": train["wall_s"],
            "seed": train["seed"],
        })
    return rows


def _baseline(rows, row):
    """The dense run of the same task, width, budget (epochs) and seed."""
    for r in rows:
        if r["prune"] == "none" and all(r[k] == row[k] for k in ("task", "units", "epochs", "seed")):
            return r
    return None


def table(rows: list[dict]) -> str:
    lines = ["| recipe | units | epochs | seed | pruning | target | state sparsity | float | fixed point "
             "| vs dense (same size, epochs, seed) | speedup (ideal) | energy ratio | train wall |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = _baseline(rows, r)
        if base is None or base is r:
            delta = "baseline" if base is r else "n/a"
        elif r["metric"] == "accuracy":
            delta = f"{100 * (r['float'] - base['float']):+.1f} pts"
        else:
            delta = f"{100 * (r['float'] / base['float'] - 1):+.1f}% BPC"
        prune = r["prune"] if r["prune"] != "output_gate" else f"output gate, L1 {r['gate_l1']:g}"
        tgt = "-" if r["target"] is None else f"{r['target']:.2f}"
        lines.append(
            f"| `{r['recipe']}` | {r['units']} | {r['epochs']} | {r['seed']} | {prune} | {tgt} | {r['sparsity']:.1%} | {r['metric']} {r['float']:.4f} "
            f"| {r['fixed']:.4f} | {delta} | {r['speedup']:.2f}x ({r['ideal']:.2f}x) | {r['energy']:.2f}x "
            f"| {r['wall_s']:.0f} s |")
    return "\n".join(lines)


def plot(rows: list[dict], task: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = [r for r in rows if r["task"] == task]
    if not sel:
        return
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for prune, marker in (("state", "o"), ("output_gate", "s")):
        for units in sorted({r["units"] for r in sel}):
            pts = [r for r in sel if r["prune"] == prune and r["units"] == units]
            if pts:
                ax.scatter([100 * r["sparsity"] for r in pts], [r["float"] for r in pts], marker=marker,
                           label=f"{prune} pruning, H={units}")
    for r in sel:
        if r["prune"] == "none":
            ax.axhline(r["float"], ls="--", lw=0.8, color="gray")
            ax.annotate(f"dense H={r['units']}, {r['epochs']} epochs, seed {r['seed']}", (0.01, r["float"]), xycoords=ax.get_yaxis_transform(),
                        fontsize=7, color="gray", va="bottom")
    ax.axvline(90, ls=":", color="k", lw=0.8)
    ax.set_xlabel("state sparsity (%)")
    ax.set_ylabel(sel[0]["metric"] + " (test, float)")
    ax.set_title(f"{task}: state sparsity vs {sel[0]['metric']}")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(out="out", docs="docs") -> list[dict]:
    rows = collect(out)
    atomic_write_text(Path(docs) / "results_table.md", table(rows) + "\n")
    for task in sorted({r["task"] for r in rows}):
        plot(rows, task, Path(docs) / f"results_{task}.png")
    stage(f"results: {len(rows)} trained recipes -> {docs}/results_table.md and plots")
    return rows

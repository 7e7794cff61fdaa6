"""Task recipes: one TOML file per task in ``models/`` (data, model size, schedule, budget, precision).

A recipe is looked up by name (``models/<name>.toml``) or given as a path. Unknown sections or keys are
errors, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import math
import os
import tomllib
from pathlib import Path

DEFAULTS: dict[str, dict] = {
    "data": {"name": "mnist_rows", "source": "auto", "root": None, "seq_len": 100,
             "max_train_chars": None, "max_eval_chars": 400000, "limit": None},
    "model": {"units": [128], "prune": "state", "embedding": 0, "return_sequences": False,
              "gate_l1": 0.0, "threshold": 0.0,
              # false: the last layer's last state h_T is left unpruned (it feeds no recurrent product)
              "prune_last": True},
    "train": {"epochs": 10, "batch_size": 64, "learning_rate": 0.002, "seed": 0, "distribute": "none",
              "max_steps_per_epoch": None,
              # learning rate over the run: "constant", or "cosine" (Keras CosineDecay over all training
              # steps: lr(t) = lr0 * (a + (1 - a) * (1 + cos(pi * t / T)) / 2), a = lr_min_fraction)
              "lr_schedule": "constant", "lr_min_fraction": 0.0,
              # "step": lr0 before epoch lr_drop_epoch (0-based), lr0 * lr_drop_factor from it on
              "lr_drop_epoch": 0, "lr_drop_factor": 0.1,
              # distillation: a trained teacher (recipe name -> <out>/<name>/model.keras, or a .keras
              # path); loss += distill_weight * T^2 * KL(softmax(teacher / T) || softmax(model / T))
              "teacher": "", "distill_weight": 1.0, "distill_temperature": 2.0,
              # fine-tuning: start from a trained model's weights (recipe name or .keras path)
              "init_from": "",
              # training-set augmentation for image rows: each epoch every training image moves by a random
              # (dy, dx), uniform in {-k..k}^2, zero fill (pipeline.data.shift_images); 0: none
              "augment_shift": 0},
    "sparsity": {"schedule": "fixed", "threshold": 0.0, "initial": 0.0, "target": 0.9,
                 "begin_epoch": 0, "end_epoch": 1, "gain": 0.05, "max_threshold": 0.95,
                 # epoch from which model.gate_l1 is applied (0: from the start; before it the
                 # output-gate model trains without the penalty)
                 "l1_begin_epoch": 0},
    "hls": {"precision": "ap_fixed<16,6>", "lanes": 32, "test_vectors": 16, "io_type": "io_parallel",
            "table_size": 1024, "part": "xcvu13p-flga2577-2-e", "clock_period": 5,
            # SparseStateLSTM types; "" keeps the defaults of pipeline.precision (h ap_fixed<16,2,AP_RND,AP_SAT>,
            # cell ap_fixed<24,8,AP_RND,AP_SAT>, LUT ap_fixed<18,2,AP_RND,AP_SAT>, exact accumulator)
            "state_precision": "", "cell_precision": "", "table_precision": "", "accum_precision": "",
            # fold an Embedding into the first SparseStateLSTM's input kernel: one exact row
            # E[v] @ W_x per step instead of E input columns (pipeline.hls.fold)
            "fold_embedding": False,
            # the rtl stage's Yosys resource estimate: each SparseStateLSTM built with this many lanes
            # (a divisor of its units; its own lane count for the full design); 0: no estimate
            "rtl_synth_lanes": 0},
}

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

# Range of every numeric key: (kind, low, high, low_open, high_open); kind "int" (bools refused) or "num"
# (int or float, finite). Keys whose default is None take an integer or may be left out.
_INF = math.inf
RANGES: dict[tuple[str, str], tuple[str, float, float, bool, bool]] = {
    ("data", "seq_len"): ("int", 1, _INF, False, True),
    ("data", "max_train_chars"): ("int", 1, _INF, False, True),
    ("data", "max_eval_chars"): ("int", 1, _INF, False, True),
    ("data", "limit"): ("int", 1, _INF, False, True),
    ("model", "embedding"): ("int", 0, _INF, False, True),
    ("model", "gate_l1"): ("num", 0, _INF, False, True),
    ("model", "threshold"): ("num", 0, _INF, False, True),
    ("train", "epochs"): ("int", 1, _INF, False, True),
    ("train", "batch_size"): ("int", 1, _INF, False, True),
    ("train", "learning_rate"): ("num", 0, _INF, True, True),
    ("train", "seed"): ("int", 0, 2**32 - 1, False, False),
    ("train", "max_steps_per_epoch"): ("int", 1, _INF, False, True),
    ("train", "lr_min_fraction"): ("num", 0, 1, False, False),
    ("train", "lr_drop_epoch"): ("int", 0, _INF, False, True),
    ("train", "lr_drop_factor"): ("num", 0, 1, True, False),
    ("train", "distill_weight"): ("num", 0, _INF, False, True),
    ("train", "distill_temperature"): ("num", 0, _INF, True, True),
    ("train", "augment_shift"): ("int", 0, _INF, False, True),
    ("sparsity", "threshold"): ("num", 0, _INF, False, True),
    ("sparsity", "initial"): ("num", 0, 1, False, True),
    ("sparsity", "target"): ("num", 0, 1, False, True),
    ("sparsity", "begin_epoch"): ("num", 0, _INF, False, True),
    ("sparsity", "end_epoch"): ("num", 0, _INF, False, True),
    ("sparsity", "gain"): ("num", 0, 1, True, False),
    ("sparsity", "max_threshold"): ("num", 0, 1, True, True),
    ("sparsity", "l1_begin_epoch"): ("int", 0, _INF, False, True),
    ("hls", "lanes"): ("int", 1, _INF, False, True),
    ("hls", "test_vectors"): ("int", 1, _INF, False, True),
    ("hls", "rtl_synth_lanes"): ("int", 0, _INF, False, True),
    ("hls", "clock_period"): ("num", 0, _INF, True, True),
}


def _check_range(path, section: str, key: str, value) -> None:
    kind, low, high, low_open, high_open = RANGES[(section, key)]
    if value is None and DEFAULTS[section][key] is None:
        return
    ok_type = not isinstance(value, bool) and isinstance(value, int if kind == "int" else int | float)
    if ok_type and kind == "num" and not math.isfinite(value):
        ok_type = False
    in_range = ok_type and (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    if not in_range:
        what = "an integer" if kind == "int" else "a finite number"
        lo = f"({low:g}" if low_open else f"[{low:g}"
        hi = "inf)" if high == _INF else (f"{high:g})" if high_open else f"{high:g}]")
        raise ValueError(f"recipe {path}: {section}.{key} must be {what} in {lo}, {hi}, got {section}.{key} = {value!r}")


def _check_table_size(path, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= 65536 or value & (value - 1):
        raise ValueError(f"recipe {path}: hls.table_size: TableSize must be a power of two in 64..65536, "
                         f"got TableSize={value!r}")


def recipe_path(name_or_path: str | os.PathLike) -> Path:
    """``models/<name>.toml`` for a bare name; the path itself otherwise."""
    text = str(name_or_path)
    if not text:
        raise ValueError("MODEL is empty: give a recipe name from models/ or a .toml path")
    path = Path(text)
    if path.suffix == ".toml" or path.parent != Path("."):
        candidate = path
    else:
        candidate = MODELS_DIR / f"{text}.toml"
    if not candidate.is_file():
        known = sorted(p.stem for p in MODELS_DIR.glob("*.toml"))
        raise FileNotFoundError(f"recipe {text!r} not found (looked for {candidate}); known recipes: {known}")
    return candidate


def load_recipe(name_or_path: str | os.PathLike) -> dict:
    """Read a recipe, check its keys against `DEFAULTS`, and fill in the defaults."""
    path = recipe_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"recipe {path} is not valid TOML: {err}") from None
    recipe = copy.deepcopy(DEFAULTS)
    for section, values in raw.items():
        if section not in DEFAULTS:
            raise ValueError(f"recipe {path}: unknown section [{section}]; expected one of {sorted(DEFAULTS)}")
        for key, value in values.items():
            if key not in DEFAULTS[section]:
                raise ValueError(
                    f"recipe {path}: unknown key {section}.{key}; expected one of {sorted(DEFAULTS[section])}"
                )
            recipe[section][key] = value
    units = recipe["model"]["units"]
    if isinstance(units, int):
        recipe["model"]["units"] = units = [units]
    if not units or any(not isinstance(u, int) or u <= 0 for u in units):
        raise ValueError(f"recipe {path}: model.units must be positive integers, got {units!r}")
    for section, key in RANGES:
        _check_range(path, section, key, recipe[section][key])
    _check_table_size(path, recipe["hls"]["table_size"])
    if not isinstance(recipe["model"]["prune_last"], bool):
        raise ValueError(f"recipe {path}: model.prune_last must be true or false, got {recipe['model']['prune_last']!r}")
    from pipeline.util import cpp_identifier

    folder = cpp_identifier(path.stem, prefix="m_")
    if folder != path.stem:  # the hls stage's folder and the later stages' lookup would differ
        raise ValueError(f"recipe {path}: the recipe name {path.stem!r} must be a plain identifier (letters, digits, "
                         f"'_'; not a C++ keyword), since it names out/<recipe>/ and hls_project/<recipe>/; rename "
                         f"the file, e.g. to {folder}.toml")
    recipe["name"] = path.stem
    recipe["path"] = str(path)
    return recipe

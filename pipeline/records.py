"""Stage records and their keys: where each stage of a run keeps its record, what makes it up to date.

A stage's record is a JSON file whose ``inputs`` is the stage's key (`stage_key`): everything the stage
consumed. The stage is skipped while the key it would compute now equals the stored one
(`stage_record`); `record_status` says ``"up to date"``, ``"missing"`` or ``"stale"`` without running
anything (what ``make results`` and ``make bench`` read).

What keys what:

- train: the sections of the recipe that change the trained weights (`TRAIN_SECTIONS`: ``[data]``,
  ``[model]``, ``[train]``, ``[sparsity]``, ``[quant]``, normalised by `pipeline.recipes.Recipe.config`), the seed,
  the ``epochs``/``limit`` overrides and the sha256 of the teacher's and the starting (``init_from``)
  model. Not ``[hls]`` (`HARDWARE_SECTIONS`): a hardware edit reruns the stages it feeds, never
  training. Not the training code either: retraining hours of runs on every edit of train.py is not
  wanted (the results ledger keys rows by the whole normalised recipe).
- hls, csim, emulate, rtl, pnr: the sha256 of the trained model, the ``[hls]`` and ``[data]`` sections,
  and a digest of the code that computes the record (`code_digest`, over `STAGE_CODE`); csim also the
  generated project's sources; csim, emulate, rtl and pnr the project's saved IR; emulate the data
  split; pnr the ``[fpga]`` section.

This module imports no TensorFlow, Keras or hls4ml (a test holds it): reading records must stay cheap.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeline.recipes import Recipe, run_dir, run_label
from pipeline.util import stage

HLS_ROOT = Path("hls_project")
STAGES = ("train", "hls", "csim", "emulate", "rtl", "pnr")

# Every recipe section is one or the other (a test holds it, so that a new section is a decision):
TRAIN_SECTIONS = ("data", "model", "train", "sparsity", "quant")  # change the trained weights: key training
HARDWARE_SECTIONS = ("hls", "fpga")  # feed the stages after training only

# The record file of each stage: in the run's folder (<out>/<recipe>/seed<N>/), the hls stage's in its project
RECORD_FILES = {"train": ".train_inputs.json", "hls": "skiplstm_inputs.json", "csim": "csim.json",
                "emulate": "emulate.json", "rtl": "rtl.json", "pnr": "pnr.json"}

# The code each stage's record depends on besides its inputs (paths under pipeline/): part of the
# stage's key, so that a record written by older code is recomputed, not reused (e.g. cycles of an
# older cycle model).
_NUMERICS = ("accelerator.py", "costs.py", "emulator.py", "fixed.py", "ir.py", "precision.py", "data.py")
_GENERATOR = ("hls/layer.py", "hls/project.py", "hls/fold.py", "hls/synth_check.py", "hls/checks.py",
              "hls/extract.py", "hls/registration.py", "templating.py", "quantizers.py")
_RTL = ("rtl/__init__.py", "rtl/spec.py", "rtl/generate.py", "rtl/memories.py", "rtl/sim.py", "rtl/synth.py")
STAGE_CODE = {
    "hls": _NUMERICS + _GENERATOR,
    "csim": _NUMERICS + _GENERATOR + ("csim.py", "verify.py"),
    "emulate": _NUMERICS + _GENERATOR + ("emulate.py", "sparsity.py", "metrics.py"),
    "rtl": _NUMERICS + _GENERATOR + _RTL,
    "pnr": _NUMERICS + _GENERATOR + _RTL + ("rtl/pnr.py",),
}


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _section_hash(recipe: Recipe, section: str) -> str:
    """sha256 of one section of the validated recipe, defaults filled in (comments and key order do not
    count, a changed value does)."""
    return hashlib.sha256(json.dumps(recipe.config()[section], sort_keys=True).encode()).hexdigest()


def code_digest(stage_name: str) -> str:
    """Content hash of the modules (and, for hls, csim and rtl, the templates) that compute a stage's record."""
    from pipeline.templating import template_dir
    from pipeline.util import sha256_files

    here = Path(__file__).resolve().parent
    files = [here / f for f in STAGE_CODE[stage_name]]
    templates = Path(str(template_dir()))
    if stage_name in ("hls", "csim"):
        files += sorted(p for p in templates.glob("*") if p.suffix in (".j2", ".h", ".cpp"))
    if stage_name in ("rtl", "pnr"):
        files += sorted((templates / "rtl").glob("*"))
    return sha256_files([f for f in files if f.is_file()])


def project_dir(recipe: Recipe, root=HLS_ROOT) -> Path:
    """``<root>/<recipe>/seed<N>/``: the generated HLS project of one run."""
    return Path(root) / recipe.name / f"seed{recipe.seed}"


def hint(recipe: Recipe, target: str) -> str:
    """The make command that runs one stage of this run, e.g. ``make train MODEL=x SEED=3``."""
    seed = "" if recipe.seed == recipe.seeds[0] else f" SEED={recipe.seed}"
    return f"make {target} MODEL={recipe.name}{seed}"


# ------------------------------------------------------------------------- the models training reads
def _trained_model_path(recipe: Recipe, key: str, out: str | Path) -> Path | None:
    """The trained model a recipe names in ``train.<key>``: for a recipe name, that recipe's run of the
    same seed, ``<out>/<name>/seed<N>/model.keras``; the path itself for a name ending in ``.keras``;
    None for "". A missing file is an error naming the value and the command that trains it."""
    value = getattr(recipe.train, key)
    if not value:
        return None
    path = Path(value) if value.endswith(".keras") else Path(out) / value / f"seed{recipe.seed}" / "model.keras"
    if not path.is_file():
        hint_text = "" if value.endswith(".keras") else f"; train it first: make train MODEL={value} SEED={recipe.seed}"
        raise FileNotFoundError(f"recipe {recipe.name}: train.{key} model {path} not found{hint_text}")
    return path


def teacher_model_path(recipe: Recipe, out: str | Path) -> Path | None:
    """The teacher model of a distilled recipe (``train.teacher``), or None without one.

    A name ending in ``.keras`` is a path; any other name is a recipe whose trained model is
    ``<out>/<name>/seed<N>/model.keras`` at this run's seed. Missing files and bad weights are errors naming the value (the
    distillation weight and temperature were checked when the recipe was loaded).
    """
    return _trained_model_path(recipe, "teacher", out)


def init_model_path(recipe: Recipe, out: str | Path) -> Path | None:
    """The trained model whose weights start a fine-tuning recipe (``train.init_from``), or None."""
    return _trained_model_path(recipe, "init_from", out)


# ----------------------------------------------------------------------------------- records and keys
def record_path(stage_name: str, recipe: Recipe, out="out", root=HLS_ROOT) -> Path:
    """Where a stage keeps its record (the JSON whose ``inputs`` is the stage's key)."""
    if stage_name not in RECORD_FILES:
        raise ValueError(f"unknown stage {stage_name!r}; expected one of {STAGES}")
    folder = project_dir(recipe, root) if stage_name == "hls" else run_dir(recipe, out)
    return folder / RECORD_FILES[stage_name]


def train_config(recipe: Recipe) -> dict:
    """The part of the normalised recipe that keys training: its `TRAIN_SECTIONS`."""
    config = recipe.config()
    return {section: config[section] for section in TRAIN_SECTIONS}


def stage_key(stage_name: str, recipe: Recipe, out="out", root=HLS_ROOT, **options) -> dict:
    """The key a stage's record must carry to be up to date: everything the stage consumes (see the
    module docstring for what keys each stage)."""
    if stage_name == "train":
        key = {"config": train_config(recipe), "seed": recipe.seed, "epochs": options.get("epochs"),
               "limit": options.get("limit")}
        for name, path in (("teacher", teacher_model_path(recipe, out)), ("init_from", init_model_path(recipe, out))):
            if path is not None:
                key[name] = _sha(path)
        return key
    if stage_name not in RECORD_FILES:
        raise ValueError(f"unknown stage {stage_name!r}; expected one of {STAGES}")
    model = run_dir(recipe, out) / "model.keras"
    key = {"model": _sha(model) if model.is_file() else None, "hls": _section_hash(recipe, "hls"),
           "data": _section_hash(recipe, "data"), "code": code_digest(stage_name)}
    project = project_dir(recipe, root)
    if stage_name == "csim":
        from pipeline import csim

        key["project"] = csim.source_digest(project) if project.is_dir() else None
    if stage_name == "pnr":
        key["fpga"] = _section_hash(recipe, "fpga")
    if stage_name in ("csim", "emulate", "rtl", "pnr"):  # what they read: the IR the hls stage saved
        from pipeline import ir

        key["ir"] = ir.digest(project) if (project / ir.IR_FILE).is_file() else None
    if stage_name == "emulate":
        key["split"] = options.get("split", "test")
    return key


def _stored_key(stage_name: str, inputs):
    """A record's stored key as the current key format reads it. A train record written before training
    was keyed by `TRAIN_SECTIONS` alone holds the whole normalised recipe: its other sections never
    changed the weights, so they are left out (such a model is not retrained for a hardware edit)."""
    if stage_name == "train" and isinstance(inputs, dict) and isinstance(inputs.get("config"), dict):
        config = {k: v for k, v in inputs["config"].items() if k in TRAIN_SECTIONS}
        from pipeline.recipes import default_config

        defaults = default_config()
        for section in TRAIN_SECTIONS:  # a section, or a key, added to the schema since counts as its default
            stored = config.get(section)
            config[section] = {**defaults[section], **stored} if isinstance(stored, dict) else defaults[section]
        inputs = {**inputs, "config": config}
    return inputs


def up_to_date(stage_name: str, record: Path, key: dict) -> bool:
    """True when ``record`` exists, is JSON and its ``inputs`` equal ``key``."""
    if not record.is_file():
        return False
    try:
        stored = json.loads(record.read_text())
    except json.JSONDecodeError:
        return False
    return isinstance(stored, dict) and _stored_key(stage_name, stored.get("inputs")) == key


def record_status(stage_name: str, recipe: Recipe, out="out", root=HLS_ROOT, **options) -> str:
    """``"up to date"``, ``"missing"`` (no record) or ``"stale"`` (a record of other inputs or code),
    without running anything."""
    record = record_path(stage_name, recipe, out, root)
    if not record.is_file():
        return "missing"
    try:
        key = stage_key(stage_name, recipe, out, root, **options)
    except FileNotFoundError:  # e.g. the teacher model is gone
        return "stale"
    return "up to date" if up_to_date(stage_name, record, key) else "stale"


def stage_record(stage_name: str, recipe: Recipe, out="out", root=HLS_ROOT, force: bool = False,
                 outputs: tuple[Path, ...] = (), **options) -> tuple[Path, dict, bool]:
    """The one cached-stage check every stage makes: ``(record path, key, up to date)``, up to date when
    not forced, the record carries the current key and every path in ``outputs`` exists; prints the
    stage's "up to date" line when it is."""
    record = record_path(stage_name, recipe, out, root)
    key = stage_key(stage_name, recipe, out, root, **options)
    fresh = not force and all(Path(o).exists() for o in outputs) and up_to_date(stage_name, record, key)
    if fresh:
        where = record.parent if stage_name in ("train", "hls") else record
        stage(f"{stage_name}: {run_label(recipe)}: up to date ({where})")
    return record, key, fresh

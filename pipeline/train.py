"""Training stage: one run (recipe, seed) -> ``model.keras`` + ``train_metrics.json`` under
``<out>/<recipe>/seed<N>/``: the schedule, sparsity control, distillation, fine-tuning and augmentation.
The data come from `pipeline.data.load_dataset`, the model from `pipeline.network.build_model`, the
metric from `pipeline.metrics.task_metric`.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from pipeline import data as data_mod
from pipeline.data import load_dataset
from pipeline.metrics import task_metric
from pipeline.network import build_model
from pipeline.recipes import Recipe, load_recipe, run_dir, run_label
from pipeline.records import init_model_path, teacher_model_path
from pipeline.util import atomic_write_text, machine_info, stage


def learning_rate(recipe: Recipe, total_steps: int):
    """The recipe's learning rate: a float (``train.lr_schedule = "constant"``), a Keras
    ``CosineDecay`` over ``total_steps`` optimizer steps (``"cosine"``):
    ``lr(t) = lr0 * (a + (1 - a) * (1 + cos(pi * min(t, T) / T)) / 2)``, ``a = train.lr_min_fraction``,
    or one step down (``"step"``, Keras ``PiecewiseConstantDecay``): ``lr(t) = lr0`` for
    ``t < e * T / E`` and ``lr0 * k`` from there on (``e = train.lr_drop_epoch``, 0-based, ``E`` the
    epochs, ``k = train.lr_drop_factor``): full steps while the threshold ramps, small ones after.
    The values and their rules (e.g. ``1 <= e < E``) were checked when the recipe was loaded."""
    t = recipe.train
    lr0 = float(t.learning_rate)
    if t.lr_schedule == "constant":
        return lr0
    import keras

    if t.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(lr0, decay_steps=max(int(total_steps), 1),
                                                      alpha=float(t.lr_min_fraction))
    # "step"
    e, k, epochs = t.lr_drop_epoch, float(t.lr_drop_factor), t.epochs
    first = max(int(round(total_steps * e / epochs)), 1)  # the first optimizer step of epoch e
    return keras.optimizers.schedules.PiecewiseConstantDecay([first - 1], [lr0, lr0 * k])


def compile_model(model, recipe: Recipe, task: str, total_steps: int = 1) -> None:
    """Compile with Adam at `learning_rate` (``total_steps``: the optimizer steps of the whole run)."""
    import keras

    from pipeline.keras_metrics import BitsPerChar

    metrics = ["accuracy"] if task == "classify" else [BitsPerChar()]
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate(recipe, total_steps)),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=metrics,
    )


def make_schedule(recipe: Recipe, steps_per_epoch: int):
    """The recipe's tfmot schedule, or None for a fixed threshold (schedule names and the order of
    begin_epoch < end_epoch were checked when the recipe was loaded)."""
    from pipeline import sparsity

    s = recipe.sparsity
    if s.schedule == "fixed":
        return None
    begin = int(s.begin_epoch * steps_per_epoch)
    if s.schedule == "constant":
        return sparsity.constant_sparsity(s.target, begin_step=begin)
    # "polynomial"
    end = max(int(s.end_epoch * steps_per_epoch), begin + 1)
    return sparsity.polynomial_decay(s.initial, s.target, begin, end)


def make_weight_schedule(recipe: Recipe, steps_per_epoch: int):
    """The tfmot schedule of column-balanced weight pruning (``sparsity.weight_*``; issue 31), or None
    when ``sparsity.weight_target`` is 0: PolynomialDecay from weight_initial to weight_target between
    weight_begin_epoch and weight_end_epoch, pruning every weight_frequency steps."""
    from pipeline import sparsity

    s = recipe.sparsity
    if not s.weight_target > 0:
        return None
    begin = int(s.weight_begin_epoch * steps_per_epoch)
    freq = int(s.weight_frequency)
    # tfmot prunes at begin + k * frequency up to end: end on such a step, so that the target is reached
    end = begin + freq * max(1, (max(int(s.weight_end_epoch * steps_per_epoch), begin + 1) - begin) // freq)
    return sparsity.polynomial_decay(s.weight_initial, s.weight_target, begin, end, frequency=freq)


def get_strategy(name: str):
    """``none`` -> default strategy; ``mirrored`` -> MirroredStrategy over local devices;
    ``multiworker`` -> MultiWorkerMirroredStrategy configured from ``TF_CONFIG``."""
    import tensorflow as tf

    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"train.distribute must be 'none', 'mirrored' or 'multiworker', got {name!r}")


def evaluate(model, dataset: data_mod.Dataset, split: str = "test", batch_size: int = 256) -> dict:
    """Float metric and per-layer state sparsity of ``model`` on a split."""
    from pipeline.sparsity import state_sparsity

    s = dataset.split(split)
    logits = model.predict(s.x, batch_size=batch_size, verbose=0)
    return {**task_metric(logits, s.y, dataset.task), "state_sparsity": state_sparsity(model, s.x, batch_size)}


def train(recipe: Recipe | str, out: str | Path = "out", epochs: int | None = None, limit: int | None = None,
          verbose: int | str = "auto", distribute: str | None = None) -> dict:
    """Train one run (a validated recipe at its seed; a name or path: its first seed); write
    ``model.keras`` and ``train_metrics.json`` to ``<out>/<recipe>/seed<N>/``; return the metrics."""
    import keras
    import tensorflow as tf

    from pipeline.callbacks import SparsityController, WeightPruning

    if not isinstance(recipe, Recipe):
        recipe = load_recipe(recipe)
    for key, value in (("epochs", epochs), ("limit", limit)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ValueError(f"{key} must be a positive integer or None, got {key}={value!r}")
    if epochs is not None:  # validated again: e.g. sparsity.l1_begin_epoch < train.epochs
        recipe = recipe.override("train", epochs=epochs)
    # the recipe's own rules were checked at load; a missing teacher or init_from model is refused here,
    # before any data is loaded
    teacher_path = teacher_model_path(recipe, out)
    init_path = init_model_path(recipe, out)
    t0 = time.time()
    seed = recipe.seed
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    dataset = load_dataset(recipe, split_limit=limit)
    bs = int(recipe.train.batch_size)
    steps = math.ceil(len(dataset.train) / bs)
    if recipe.train.max_steps_per_epoch:
        steps = min(steps, int(recipe.train.max_steps_per_epoch))
    total_steps = steps * int(recipe.train.epochs)
    strategy = get_strategy(distribute or recipe.train.distribute)
    with strategy.scope():
        model = build_model(recipe, dataset)
        if init_path is not None:
            _init_weights(model, init_path)
        trainee = model
        if teacher_path is None:
            compile_model(model, recipe, dataset.task, total_steps)
        else:  # the student is saved uncompiled (its optimizer state lives in the wrapper)
            trainee = Distiller(model, _load_teacher(teacher_path, model), float(recipe.train.distill_weight),
                                float(recipe.train.distill_temperature))
            compile_model(trainee, recipe, dataset.task, total_steps)
    callbacks = []
    schedule = make_schedule(recipe, steps)
    controller = None
    if schedule is not None:
        s = recipe.sparsity
        controller = SparsityController(schedule, gain=s.gain, max_threshold=s.max_threshold,
                                        layers=_sparse_layers(model))
        callbacks.append(controller)
    weights = make_weight_schedule(recipe, steps)
    if weights is not None:
        callbacks.append(WeightPruning(weights, layers=_sparse_layers(model)))
    if verbose == "auto":
        verbose = 1 if sys.stdout.isatty() else 2
    history = _fit_phases(trainee, _sparse_layers(model), recipe, dataset, bs, steps, callbacks, verbose)
    result = evaluate(model, dataset, "test")
    outdir = run_dir(recipe, out)
    outdir.mkdir(parents=True, exist_ok=True)
    tmp = outdir / "model.keras.tmp.keras"
    model.save(tmp)
    tmp.replace(outdir / "model.keras")
    metrics = {
        "recipe": recipe.name,
        "dataset": dataset.name,
        "test": result,
        "thresholds": {layer.name: float(layer.threshold.numpy()) for layer in _sparse_layers(model)},
        **({"weight_sparsity": {layer.name: layer.weight_sparsity() for layer in _sparse_layers(model)}}
           if weights is not None else {}),
        "history": {k: [float(v) for v in vals] for k, vals in history.items()},
        "epochs": recipe.train.epochs,
        "teacher": None if teacher_path is None else str(teacher_path),
        "init_from": None if init_path is None else str(init_path),
        "seed": seed,
        "wall_s": round(time.time() - t0, 1),
        "machine": machine_info(tensorflow=tf.__version__, keras=keras.__version__),
    }
    atomic_write_text(outdir / "train_metrics.json", json.dumps(metrics, indent=2, sort_keys=True))
    stage(f"train: {run_label(recipe)}: test {result['metric']} {result['value']:.4f}, state sparsity "
          + ", ".join(f"{k} {v:.1%}" for k, v in result["state_sparsity"].items())
          + f" ({metrics['wall_s']} s)")
    return metrics


def _init_weights(model, path: Path) -> None:
    """Copy the weights of the trained model at ``path`` into ``model`` (same layer names and shapes;
    the SparseStateLSTM thresholds are left as the recipe set them)."""
    import keras

    from pipeline.layers import SparseStateLSTM

    source = keras.models.load_model(path, compile=False)
    for layer in model.layers:
        if not layer.weights:
            continue
        try:
            src = source.get_layer(layer.name)
        except ValueError:
            raise ValueError(f"train.init_from {path}: it has no layer {layer.name!r} "
                             f"(its layers: {[x.name for x in source.layers]})") from None
        if isinstance(layer, SparseStateLSTM) and isinstance(src, SparseStateLSTM):
            mine, theirs = layer.lstm_weights(), src.lstm_weights()
        else:
            mine, theirs = layer.get_weights(), src.get_weights()
        shapes = [tuple(w.shape) for w in mine], [tuple(w.shape) for w in theirs]
        if shapes[0] != shapes[1]:
            raise ValueError(f"train.init_from {path}: layer {layer.name!r} has weight shapes {shapes[1]}, "
                             f"expected {shapes[0]}")
        if isinstance(layer, SparseStateLSTM):
            layer.load_lstm_weights(theirs)
        else:
            layer.set_weights(theirs)


def _load_teacher(path: Path, student):
    """The frozen teacher; its input and output shapes must equal the student's."""
    import keras

    teacher = keras.models.load_model(path, compile=False)
    for what in ("input_shape", "output_shape"):
        a, b = tuple(getattr(teacher, what)), tuple(getattr(student, what))
        if a != b:
            raise ValueError(f"teacher {path}: {what} {a} differs from the model's {b}")
    teacher.trainable = False
    return teacher


def _distiller_class():
    import keras
    from keras import ops

    class Distiller(keras.Model):
        """Training wrapper around a student and a frozen teacher (Hinton et al., 2015):

            loss = CE(y, s) + student losses + beta * T^2 * mean KL(softmax(t / T) || softmax(s / T))

        where s, t are the student's and teacher's logits (per sample, or per step for a language
        model). Only the student's weights train; `train` saves the student alone.
        """

        def __init__(self, student, teacher, weight: float, temperature: float):
            super().__init__(name=f"{student.name}_distiller")
            self.student = student
            self.teacher = teacher
            self.weight = weight
            self.temperature = temperature

        def call(self, x, training=False):
            return self.student(x, training=training)

        @property
        def metrics(self):
            """The student's metrics only: the teacher's layers may carry the same names (e.g. its
            ``sparse_lstm_0_state_sparsity``), which would otherwise overwrite the student's in the logs."""
            teacher = {id(m) for layer in self.teacher._flatten_layers(include_self=False) for m in layer.metrics}
            return [m for m in super().metrics if id(m) not in teacher]

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=training)
            temp = self.temperature
            log_p_t = ops.log_softmax(ops.cast(self.teacher(x, training=False), "float32") / temp, axis=-1)
            log_p_s = ops.log_softmax(ops.cast(y_pred, "float32") / temp, axis=-1)
            kl = ops.mean(ops.sum(ops.exp(log_p_t) * (log_p_t - log_p_s), axis=-1))
            return loss + self.weight * temp * temp * kl

    return Distiller


def Distiller(student, teacher, weight: float, temperature: float):  # noqa: N802 (a class factory)
    """A `keras.Model` that trains ``student`` with distillation from ``teacher`` (see the class)."""
    return _distiller_class()(student, teacher, weight, temperature)


def l1_phases(recipe: Recipe) -> list[tuple[int, int, bool]]:
    """Training phases ``(first_epoch, end_epoch, gate_l1_on)`` of a recipe.

    With ``sparsity.l1_begin_epoch = k > 0`` (and ``model.gate_l1 > 0``) the model
    trains epochs ``[0, k)`` without the penalty ``lam * mean(o_t)`` and epochs ``[k, epochs)`` with it;
    otherwise one phase with the penalty from the start (``0 <= k < epochs``: checked at load).
    """
    epochs = recipe.train.epochs
    k = recipe.sparsity.l1_begin_epoch
    uses_l1 = float(recipe.model.gate_l1) > 0.0
    if k == 0 or not uses_l1:
        return [(0, epochs, uses_l1)]
    return [(0, k, False), (k, epochs, True)]


def _fit_phases(model, layers, recipe, dataset, bs, steps, callbacks, verbose):
    """``model.fit`` over the recipe's phases (see `l1_phases`); one merged history.

    The penalty is switched by setting each cell's ``gate_l1`` and retracing the train step; the
    optimizer state, the step counter (hence the sparsity schedule) and the weights carry over.
    """
    history: dict[str, list] = {}
    k = augment_shift(recipe, dataset)
    if k:
        stage(f"train: {run_label(recipe)}: training images shifted by up to {k} pixels, new shifts each epoch")
    lam = [layer.cell.gate_l1 for layer in layers]
    for first, end, l1_on in l1_phases(recipe):
        for layer, value in zip(layers, lam, strict=True):
            layer.cell.gate_l1 = value if l1_on else 0.0
        model.train_function = None  # retrace: gate_l1 is read when the step is traced
        if first > 0:
            stage(f"train: {run_label(recipe)}: gate L1 {lam[0]:g} on from epoch {first + 1}")
        if not k:
            train_data = dict(x=dataset.train.x, y=dataset.train.y, batch_size=bs, shuffle=True,
                              steps_per_epoch=steps if recipe.train.max_steps_per_epoch else None)
        else:
            train_data = dict(x=_shifted_dataset(dataset.train.x, dataset.train.y, bs, steps, k,
                                                 recipe.seed, first, end),
                              shuffle=False, steps_per_epoch=steps)
        h = model.fit(**train_data, epochs=end, initial_epoch=first,
                      validation_data=(dataset.valid.x, dataset.valid.y), callbacks=callbacks, verbose=verbose)
        for key, values in h.history.items():
            history.setdefault(key, []).extend(values)
    for layer, value in zip(layers, lam, strict=True):
        layer.cell.gate_l1 = value
    return history


def augment_shift(recipe: Recipe, dataset: data_mod.Dataset | None = None) -> int:
    """``train.augment_shift`` (an integer k >= 0: checked at load) against the dataset: k > 0 only for
    image-row classification (inputs of shape ``(N, rows, cols)``, k < rows and cols)."""
    k = recipe.train.augment_shift
    if k and dataset is not None:
        shape = dataset.train.x.shape
        if dataset.task != "classify" or len(shape) != 3 or k >= min(shape[1:]):
            raise ValueError(f"recipe {recipe.name}: train.augment_shift = {k} needs image rows of shape "
                             f"(N, rows, cols) larger than {k} (a classification dataset); {dataset.name} has "
                             f"task {dataset.task!r} and inputs of shape {shape}")
    return k


def shifted_batches(x: np.ndarray, y: np.ndarray, batch_size: int, steps: int, k: int, seed: int,
                    first: int, end: int):
    """Training batches of epochs ``first .. end - 1``, in order, with randomly translated images.

    Epoch ``e`` draws, from ``numpy.random.default_rng([seed, e])``, a permutation ``perm`` of the
    training set and per image ``(dy, dx)`` uniform in ``{-k..k}^2``; its batch ``b < steps`` holds
    images ``perm[b * batch_size : (b + 1) * batch_size]``, each moved by `pipeline.data.shift_images`.
    The sequence is a pure function of ``(seed, e, b)``: read ahead or resumed at a later epoch (the
    second phase of a late gate-L1 start), it yields the same batches."""
    n = len(x)
    for e in range(first, end):
        rng = np.random.default_rng([seed, e])
        perm = rng.permutation(n)
        dy, dx = rng.integers(-k, k + 1, size=n), rng.integers(-k, k + 1, size=n)
        for b in range(steps):
            idx = perm[b * batch_size:(b + 1) * batch_size]  # steps <= ceil(n / batch_size): never empty
            yield data_mod.shift_images(x[idx], dy[idx], dx[idx]), y[idx]


def _shifted_dataset(x, y, batch_size: int, steps: int, k: int, seed: int, first: int, end: int):
    """`shifted_batches` as a ``tf.data.Dataset`` (one sequential Python generator: deterministic)."""
    import tensorflow as tf

    spec = (tf.TensorSpec((None, *x.shape[1:]), tf.as_dtype(x.dtype)), tf.TensorSpec((None,), tf.as_dtype(y.dtype)))
    return tf.data.Dataset.from_generator(
        lambda: shifted_batches(x, y, batch_size, steps, k, seed, first, end), output_signature=spec)


def _sparse_layers(model):
    from pipeline.layers import SparseStateLSTM

    return [layer for layer in model.layers if isinstance(layer, SparseStateLSTM)]

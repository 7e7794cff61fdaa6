"""What the generator (`pipeline.hls`) and the emulator (`pipeline.emulator`) both read off hls4ml's IR,
and the saved model IR that carries it from one to the other.

One definition each of: the LUT ranges, sizes (`check_table_size`) and contents (`lut_values`), the
pruning rules (`PRUNE_MODES`), the threshold as the kernel compares it (`quantise_threshold`) and a
weight variable as raw fixed-point integers (`read_weights`).

`ModelIR` (layers `EmbeddingIR`, `LSTMIR`, `DenseIR`, `ActivationIR`) is everything the emulator
needs of a generated model: raw integer weights with their types, every tensor's type and the layer
attributes. The generator extracts it (`pipeline.hls.extract.extract_ir`) and writes it into the
project (`save`); the emulator reads it back (`load`, `pipeline.emulator.Emulator.from_project`).

This module imports numpy and our own bottom modules only: nothing here imports hls4ml (an IR
variable is read through its attributes) or `pipeline.hls` (whose `register()` registers its graph
reader here, `register_graph_reader`), so the emulator can be imported without registering the hls4ml extension.
"""

from __future__ import annotations

import dataclasses
import numbers
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from pipeline import fixed
from pipeline.fixed import FixedType
from pipeline.precision import to_fixed

SIGMOID_RANGE = 8.0  # the sigmoid LUT covers [-8, 8)
TANH_RANGE = 4.0  # the tanh LUT covers [-4, 4)
PRUNE_MODES = ("state", "output_gate")  # where the compare sits: on h_t, or on o_t before h_t = o_t * tanh(c_t)
TABLE_SIZE_RULE = "a power of two in 64..65536"  # LUT entries: the index is the top log2(N) bits of a code


def is_table_size(value) -> bool:
    """True for a LUT size the kernel builds: an integer (not a bool) N = 2^k with 64 <= N <= 65536."""
    return (isinstance(value, numbers.Integral) and not isinstance(value, bool) and 64 <= value <= 65536
            and not value & (value - 1))


def check_table_size(table_size) -> int:
    """``table_size`` as an int, or ValueError naming it (`TABLE_SIZE_RULE`, hls4ml's key ``TableSize``)."""
    if not is_table_size(table_size):
        raise ValueError(f"TableSize must be {TABLE_SIZE_RULE}, got TableSize={table_size!r}")
    return int(table_size)


@dataclass
class Tensor:
    """Raw integers with a type (``value = raw * 2^-type.frac``)."""

    raw: np.ndarray
    type: FixedType

    def value(self) -> np.ndarray:
        return fixed.to_float(self.raw, self.type.frac)


def lut_values(kind: str, table_size: int) -> np.ndarray:
    """Float64 LUT contents at the interval midpoints: f(-R + (i + 1/2) * 2R/N), i = 0..N-1."""
    r = SIGMOID_RANGE if kind == "sigmoid" else TANH_RANGE
    x = -r + (np.arange(table_size, dtype=np.float64) + 0.5) * (2 * r / table_size)
    return 1.0 / (1.0 + np.exp(-x)) if kind == "sigmoid" else np.tanh(x)


def quantise_threshold(tau: float, t: FixedType) -> float:
    """tau rounded down onto t's grid (for v on that grid: v > tau <=> v > floor_t(tau))."""
    q = FixedType(t.width, t.integer, t.signed, "AP_TRN", "AP_SAT")
    raw = int(fixed.from_float(np.array([tau]), q)[0])
    value = raw * 2.0 ** -q.frac
    if value < tau - 2.0 ** -q.frac or raw == q.raw_max and tau > value + 2.0 ** -q.frac:
        raise ValueError(f"threshold {tau} does not fit the type {t} it is compared in")
    return value


def read_weights(var) -> Tensor:
    """An hls4ml weight variable (``.data``, ``.type.precision``, ``.precision_fmt``) as raw integers of
    its type, read the way the C-simulation reads it: hls4ml's decimal text through a double, cast to the
    weight type (`pipeline.fixed.from_decimal_strings`)."""
    t = to_fixed(var.type.precision)
    raw = fixed.from_decimal_strings(np.asarray(var.data, dtype=np.float64), var.precision_fmt, t)
    return Tensor(raw, t)


# ------------------------------------------------------------------------------ the saved model IR
# What the emulator needs of a generated model, per layer, in a neutral form: raw integer weights with
# their `FixedType`s, the types of every tensor and the layer attributes. The generator extracts it from
# the hls4ml ModelGraph (`pipeline.hls.extract.extract_ir`) and writes it into the project
# (`save`: ``skiplstm_ir.json`` + ``skiplstm_ir.npz``); the emulator, csim and RTL stages read it back
# (`load`, `pipeline.emulator.Emulator.from_project`) instead of converting the Keras model again.

IR_FILE = "skiplstm_ir.json"
IR_ARRAYS = "skiplstm_ir.npz"
IR_FORMAT = "skiplstm-ir"
IR_VERSION = 1


@dataclass(frozen=True, eq=False)
class EmbeddingIR:
    """hls4ml Embedding: token id v -> ``(result_t) embeddings[v]`` (``embeddings``: V * dim raw values)."""

    name: str
    dim: int  # E (hls4ml n_out)
    embeddings: Tensor
    result_t: FixedType
    kind: ClassVar[str] = "embedding"


@dataclass(frozen=True, eq=False)
class LSTMIR:
    """One SparseStateLSTM (hls4ml ``SparseStateLSTMLayer``; see `pipeline.emulator` for the step).

    ``kernel`` holds n_in * 4H raw values (V * 4H folded rows when ``token_input``), ``recurrent``
    H * 4H, ``bias`` 4H, the tables 2^table_bits each (all in hls4ml's array shapes); ``threshold`` is
    the float the layer was trained with (the kernel compares its `quantise_threshold`). ``skip_zeros``
    is the engine's ``SkipZeros`` setting (False: the dense-only engine); the emulator runs both modes
    whatever it is (`pipeline.emulator.Emulator.run`'s ``mode``). ``weight_chunks`` (``WeightChunks``) > 0:
    the kernel streams its weights as KE (value, row) pairs a column and lane (the weight-sparse engine;
    same outputs, its own cycles)."""

    name: str
    n_in: int
    units: int
    steps: int
    lanes: int
    return_sequences: bool
    prune: str  # "state" or "output_gate"
    prune_last: bool
    token_input: bool  # a folded Embedding (pipeline.hls.fold): the input is one token id per step
    skip_zeros: bool
    table_bits: int
    threshold: float
    kernel: Tensor
    recurrent: Tensor
    bias: Tensor
    sigmoid_table: Tensor
    tanh_table: Tensor
    accum_t: FixedType
    cell_t: FixedType
    table_t: FixedType
    result_t: FixedType
    weight_chunks: int = 0  # KE > 0: the weight-sparse engine (hls4ml WeightChunks; pipeline.accelerator)
    kind: ClassVar[str] = "lstm"


@dataclass(frozen=True, eq=False)
class DenseIR:
    """hls4ml Dense (``width`` 1), or PointwiseConv1D (``pointwise``: the Dense applied at each of
    ``width`` time steps); ``weight`` holds n_in * n_out raw values, ``bias`` n_out."""

    name: str
    n_in: int
    n_out: int
    width: int
    pointwise: bool
    weight: Tensor
    bias: Tensor
    accum_t: FixedType
    result_t: FixedType
    kind: ClassVar[str] = "dense"


@dataclass(frozen=True, eq=False)
class ActivationIR:
    """hls4ml Activation / ReLU: ``(result_t) relu(x)`` or ``(result_t) x`` (``activation``: relu, linear)."""

    name: str
    activation: str
    result_t: FixedType
    kind: ClassVar[str] = "activation"


LayerIR = EmbeddingIR | LSTMIR | DenseIR | ActivationIR
_LAYER_CLASSES = {cls.kind: cls for cls in (EmbeddingIR, LSTMIR, DenseIR, ActivationIR)}


@dataclass(frozen=True, eq=False)
class ModelIR:
    """A generated model as the emulator reads it: the input type and shape (without the batch
    dimension), then the layers in execution order."""

    name: str
    input_name: str
    input_t: FixedType
    input_shape: tuple[int, ...]
    layers: tuple[LayerIR, ...]

    def lstm_layers(self) -> list[LSTMIR]:
        return [layer for layer in self.layers if isinstance(layer, LSTMIR)]

    def with_skip_zeros(self, skip_zeros: bool) -> ModelIR:
        """The same model with every SparseStateLSTM's ``skip_zeros`` set (False: the dense-only engine,
        what ``convert(..., skip_zeros=False)`` gives); the weights are shared, not copied."""
        layers = tuple(dataclasses.replace(layer, skip_zeros=bool(skip_zeros)) if isinstance(layer, LSTMIR)
                       else layer for layer in self.layers)
        return dataclasses.replace(self, layers=layers)


class InvalidIRError(ValueError):
    """A saved IR that cannot be read (not JSON, another format or version, missing or inconsistent
    arrays, values outside their types)."""


# Graph readers: `pipeline.hls.register()` registers the hls4ml one (`pipeline.hls.extract.extract_ir`),
# which every hls4ml model holding a SparseStateLSTM needed for its conversion, so this module never imports it.
_GRAPH_READERS: list[Callable] = []


def register_graph_reader(reader: Callable) -> None:
    """Make ``from_graph`` use ``reader(graph) -> ModelIR`` (idempotent)."""
    if reader not in _GRAPH_READERS:
        _GRAPH_READERS.append(reader)


def from_graph(graph) -> ModelIR:
    """The `ModelIR` of an hls4ml ``ModelGraph``, through the reader `pipeline.hls.register()` registers."""
    if not _GRAPH_READERS:
        raise TypeError(f"cannot read {type(graph).__name__!r} as a SkipLSTM model: expected a "
                        "pipeline.ir.ModelIR, or an hls4ml ModelGraph after pipeline.hls.register() (which "
                        "registers the reader, pipeline.hls.extract.extract_ir)")
    return _GRAPH_READERS[-1](graph)


# ------------------------------------------------------------------------------ save / load
def _type_json(t: FixedType) -> dict:
    return {"width": t.width, "integer": t.integer, "signed": t.signed, "q_mode": t.q_mode, "o_mode": t.o_mode}


def _type_from_json(d) -> FixedType:
    if not isinstance(d, dict) or set(d) != {"width", "integer", "signed", "q_mode", "o_mode"}:
        raise InvalidIRError(f"a type must be {{width, integer, signed, q_mode, o_mode}}, got {d!r}")
    return FixedType(int(d["width"]), int(d["integer"]), bool(d["signed"]), str(d["q_mode"]), str(d["o_mode"]))


def _stored(raw: np.ndarray, t: FixedType) -> np.ndarray:
    """Raw values as stored in the .npz: int64, or uint64 for ``ap_ufixed<64, I>`` (the one type whose
    values do not all fit int64; every type has W <= `pipeline.fixed.MAX_WIDTH` = 64 bits)."""
    raw = np.asarray(raw)
    if raw.size and (int(raw.min()) < t.raw_min or int(raw.max()) > t.raw_max):
        raise ValueError(f"raw values outside the range of their type {t}")
    return raw.astype(np.int64 if fixed.fits_int64(t) else np.uint64)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez`` with fixed zip timestamps (numpy stamps the current time), so that the same arrays
    give the same bytes; readable by ``np.load``."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def save(ir: ModelIR, path: str | Path) -> Path:
    """Write ``ir`` to the folder ``path`` (a generated project): ``skiplstm_ir.json`` (format below) and
    ``skiplstm_ir.npz`` (the raw integers); returns the JSON's path. Same IR, same bytes.

    JSON: ``{"format": "skiplstm-ir", "version": 1, "name", "input": {"name", "type", "shape"},
    "layers": [{"kind": "embedding" | "lstm" | "dense" | "activation", "name", <attributes>,
    <tensor>: {"array": <npz key>, "type": <type>, "shape": [...]}, <type attribute>: <type>}, ...],
    "arrays": "skiplstm_ir.npz", "arrays_sha256": <hex>}`` with every type as ``{"width", "integer",
    "signed", "q_mode", "o_mode"}``. NPZ: one array per tensor, key ``<layer index>.<field>``, int64
    raw values, uint64 for an ``ap_ufixed<64, I>`` tensor (no pickled objects)."""
    import hashlib
    import json

    folder = Path(path)
    arrays: dict[str, np.ndarray] = {}
    layers = []
    for i, layer in enumerate(ir.layers):
        entry: dict = {"kind": layer.kind}
        for f in dataclasses.fields(layer):
            value = getattr(layer, f.name)
            if f.default is not dataclasses.MISSING and value == f.default:
                continue  # a field added later, at its default: the IR of before, byte for byte
            if isinstance(value, Tensor):
                key = f"{i}.{f.name}"
                try:
                    arrays[key] = _stored(value.raw, value.type)
                except ValueError as err:
                    raise ValueError(f"layer {layer.name!r} {f.name}: {err}") from None
                entry[f.name] = {"array": key, "type": _type_json(value.type), "shape": list(np.shape(value.raw))}
            elif isinstance(value, FixedType):
                entry[f.name] = _type_json(value)
            elif isinstance(value, bool | str):
                entry[f.name] = value
            elif isinstance(value, int | np.integer):
                entry[f.name] = int(value)
            else:
                entry[f.name] = float(value)
        layers.append(entry)
    npz = folder / IR_ARRAYS
    _write_npz(npz, arrays)
    doc = {"format": IR_FORMAT, "version": IR_VERSION, "name": ir.name,
           "input": {"name": ir.input_name, "type": _type_json(ir.input_t), "shape": [int(d) for d in ir.input_shape]},
           "layers": layers, "arrays": IR_ARRAYS, "arrays_sha256": hashlib.sha256(npz.read_bytes()).hexdigest()}
    out = folder / IR_FILE
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return out


def digest(path: str | Path) -> str | None:
    """sha256 of a saved IR (the JSON, which holds the sha256 of its arrays): what a stage that reads
    the IR keys its record on; None when ``path`` (a project folder or the JSON) holds none."""
    import hashlib

    path = Path(path)
    doc_path = path / IR_FILE if path.is_dir() else path
    return hashlib.sha256(doc_path.read_bytes()).hexdigest() if doc_path.is_file() else None


def _loaded(raw: np.ndarray, t: FixedType, shape, where: str) -> np.ndarray:
    """Stored raw values back as `pipeline.fixed.normalise` gives them (int64, or Python integers for
    ``ap_ufixed<64, I>``), after checking dtype, shape and range."""
    if raw.dtype != (np.int64 if fixed.fits_int64(t) else np.uint64):
        raise InvalidIRError(f"{where}: array of dtype {raw.dtype}, expected raw integers of {t}")
    if list(raw.shape) != list(shape):
        raise InvalidIRError(f"{where}: array of shape {list(raw.shape)}, expected {list(shape)}")
    if raw.size and (int(raw.min()) < t.raw_min or int(raw.max()) > t.raw_max):
        raise InvalidIRError(f"{where}: values outside the range of their type {t}")
    return fixed.normalise(raw if fixed.fits_int64(t) else raw.astype(object), t)


def _layer_from_json(entry, arrays, i: int) -> LayerIR:
    if not isinstance(entry, dict) or entry.get("kind") not in _LAYER_CLASSES:
        raise InvalidIRError(f"layer {i}: expected an object with kind in {sorted(_LAYER_CLASSES)}, got "
                             f"{str(entry)[:80]!r}")
    cls = _LAYER_CLASSES[entry["kind"]]
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields if f.name in entry or f.default is dataclasses.MISSING]  # defaults may be left out
    if set(entry) - {"kind"} != set(names):
        raise InvalidIRError(f"layer {i} ({entry['kind']}): fields {sorted(set(entry) - {'kind'})}, expected "
                             f"{sorted(f.name for f in fields if f.default is dataclasses.MISSING)} (and optionally "
                             f"{sorted(f.name for f in fields if f.default is not dataclasses.MISSING)})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name in names:
        v, hint = entry[name], hints[name]
        where = f"layer {i} ({entry.get('name')!r}) {name}"
        if hint is Tensor:
            if not isinstance(v, dict) or set(v) != {"array", "type", "shape"} or v["array"] not in arrays:
                raise InvalidIRError(f"{where}: missing or malformed array reference {v!r}")
            t = _type_from_json(v["type"])
            values[name] = Tensor(_loaded(arrays[v["array"]], t, v["shape"], where), t)
        elif hint is FixedType:
            values[name] = _type_from_json(v)
        elif not isinstance(v, hint) or isinstance(v, bool) and hint is not bool:
            if hint is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            else:
                raise InvalidIRError(f"{where}: expected {hint.__name__}, got {v!r}")
        if name not in values:
            values[name] = v
    return cls(**values)


def load(path: str | Path) -> ModelIR:
    """Read what `save` wrote: ``path`` is the project folder or its ``skiplstm_ir.json``. Raises
    FileNotFoundError when the JSON or its arrays are missing and `InvalidIRError` (a ValueError)
    naming the file when they are not a valid IR of this version."""
    import hashlib
    import io
    import json

    path = Path(path)
    doc_path = path / IR_FILE if path.is_dir() else path
    if not doc_path.is_file():
        raise FileNotFoundError(f"{doc_path} not found")

    def invalid(why: str) -> InvalidIRError:
        return InvalidIRError(f"{doc_path} is not a valid SkipLSTM IR: {why}")

    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise invalid(f"not JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != IR_FORMAT:
        raise invalid(f'no "format": "{IR_FORMAT}"')
    if doc.get("version") != IR_VERSION:
        raise invalid(f"IR version {doc.get('version')!r}, this code reads version {IR_VERSION}")
    name = doc.get("arrays")
    if not isinstance(name, str) or Path(name).name != name:
        raise invalid(f'"arrays" must name a file beside it, got {name!r}')
    npz = doc_path.parent / name
    if not npz.is_file():
        raise FileNotFoundError(f"{npz} not found (the arrays of {doc_path})")
    data = npz.read_bytes()
    if hashlib.sha256(data).hexdigest() != doc.get("arrays_sha256"):
        raise invalid(f"{npz.name} does not match it (sha256 differs): the two files come from different "
                      "generations, or one is damaged")
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        inp = doc["input"]
        layers = tuple(_layer_from_json(e, arrays, i) for i, e in enumerate(doc["layers"]))
        return ModelIR(str(doc["name"]), str(inp["name"]), _type_from_json(inp["type"]),
                       tuple(int(d) for d in inp["shape"]), layers)
    except InvalidIRError as err:
        raise invalid(str(err)) from None
    except (KeyError, TypeError, ValueError, OSError) as err:  # a malformed document or archive
        raise invalid(f"{type(err).__name__}: {err}") from None

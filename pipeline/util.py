"""Small shared helpers: progress lines, atomic writes, content hashes, identifier sanitising, machine facts."""

from __future__ import annotations

import hashlib
import os
import platform
import re
import shutil
import tempfile
from pathlib import Path

CPP_KEYWORDS = frozenset("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char16_t char32_t class compl
const constexpr const_cast continue decltype default delete do double dynamic_cast else enum explicit
export extern false float for friend goto if inline int long mutable namespace new noexcept not not_eq
nullptr operator or or_eq private protected public register reinterpret_cast return short signed sizeof
static static_assert static_cast struct switch template this thread_local throw true try typedef typeid
typename union unsigned using virtual void volatile wchar_t while xor xor_eq main std nnet
""".split())


def stage(message: str) -> None:
    """One progress line per stage (flushed, so it shows under make and in CI logs)."""
    print(f"[skiplstm] {message}", flush=True)


def cpu_model(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> str:
    """The CPU model as the OS names it: ``model name`` from /proc/cpuinfo with the vendor, family, model
    and stepping numbers (a virtual machine's name, e.g. "AMD EPYC", hides the generation); else
    ``platform.processor()``, else the architecture. Training is bit-reproducible on one CPU model, not
    across models."""
    fields: dict[str, str] = {}
    try:
        for line in Path(cpuinfo).read_text(encoding="utf-8", errors="replace").splitlines():
            key, sep, value = line.partition(":")
            if not sep and fields:  # the end of the first processor's block
                break
            fields.setdefault(key.strip(), " ".join(value.split()))
    except OSError:
        pass
    name = fields.get("model name")
    if not name:
        return platform.processor() or platform.machine() or "unknown"
    ids = " ".join(f"{k.split()[-1]} {fields[k]}" for k in ("cpu family", "model", "stepping") if fields.get(k))
    vendor = fields.get("vendor_id", "")
    return f"{name} ({' '.join(x for x in (vendor, ids) if x)})" if vendor or ids else name


def machine_info(**versions: str) -> dict:
    """Where a run ran: ``{"cpu": cpu_model(), "cores": os.cpu_count(), "python": ..., **versions}``
    (versions: e.g. ``tensorflow=tf.__version__``)."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(), **versions}


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written); the file
    gets the usual ``0o666 & ~umask`` mode, not mkstemp's private 0o600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written ``tmp_dir`` into place as ``final_dir`` (replacing an old one).

    The old folder is first renamed aside; if the second rename fails, it is moved back, so
    ``final_dir`` is always either the old or the new complete folder.
    """
    final_dir = Path(final_dir)
    old = None
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old.{os.getpid()}")
        if old.exists():
            shutil.rmtree(old)
        os.replace(final_dir, old)
    try:
        os.replace(tmp_dir, final_dir)
    except BaseException:
        if old is not None and not final_dir.exists():
            os.replace(old, final_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sha256_files(paths, extra: str = "") -> str:
    """A content hash over files (name and bytes, in the given order) and an extra string."""
    h = hashlib.sha256(extra.encode())
    for p in paths:
        p = Path(p)
        h.update(p.name.encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def cpp_identifier(name: str, prefix: str = "l_") -> str:
    """A valid, non-reserved C++ identifier from any user-supplied name.

    Every character outside ``[A-Za-z0-9_]`` becomes ``_``; double underscores collapse (they are
    reserved in C++); a leading digit, a leading underscore or a keyword gets ``prefix``.
    """
    text = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    text = re.sub(r"_+", "_", text)
    if not text or text == "_":
        text = "unnamed"
    if text[0].isdigit() or text[0] == "_" or text in CPP_KEYWORDS:
        text = prefix + text.lstrip("_")
    return text


def check_output_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and check it is a writable folder; errors name the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"output folder {path} exists and is a file, not a folder")
    for parent in path.parents:  # a file on the way: mkdir's own error would not say which
        if parent.exists() and not parent.is_dir():
            raise NotADirectoryError(f"output folder {path}: {parent} is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(f"output folder {path} cannot be created: {err.strerror or err}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise PermissionError(f"output folder {path} is not writable")
    return path


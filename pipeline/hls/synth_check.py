"""Synthesisability check of a generated project: the rules Vitis HLS (UG1399) imposes on our kernel.

No HLS tool runs here, so `make hls` and the tests read the generated C++ the way an HLS engineer would
and refuse a project that breaks one of these rules (each message names the rule, the loop or function
and the file):

1. No ``PIPELINE`` on a function or loop that contains a data-dependent loop: a pipelined region
   unrolls every loop below it, and a loop whose trip count is only known at run time cannot be
   unrolled. The hls4ml top function that calls ``nnet::sparse_lstm`` must not be pipelined (it is
   ``DATAFLOW``).
2. Every data-dependent loop carries ``LOOP_TRIPCOUNT`` (otherwise csynth reports latency "?"). A loop is
   data-dependent when its bound is not made only of literals, ``CONFIG_T::`` members and ``static
   const`` names of the file.
3. Nothing that synthesis may compile uses ``std::``, dynamic memory (``new``, ``malloc``) or
   ``printf``, and no function calls itself. Only ``#ifndef __SYNTHESIS__`` (``#if !defined(...)``)
   branches and the ``#else`` of ``#ifdef __SYNTHESIS__`` are C-simulation-only; both branches of any
   other ``#if`` are checked (`strip_csim_only`).
4. Banking for II=1: ``acc`` partitioned completely in dims 1 (gate) and 2 (lane); ``h_state``,
   ``c_state`` and the per-lane LUT copies (``sig_if``, ``sig_o``, ``tanh_l``) completely in dim 1;
   and the column loops (dense weights, weight pairs) and the gate loop each ``PIPELINE II=1``.

The parser is deliberately small: it understands the style of templates/nnet_sparse_lstm.h (labelled
``for`` loops, pragmas at the top of a body) and is tested on deliberately broken copies of it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

KERNEL = "nnet_sparse_lstm.h"
BANKING = {  # array -> the dims that must be completely partitioned
    "acc": (1, 2), "h_state": (1,), "c_state": (1,), "sig_if": (1,), "sig_o": (1,), "tanh_l": (1,),
}
PIPELINED_LOOPS = ("StreamLoop", "PairLoop", "GateLoop")


class SynthesisabilityError(ValueError):
    """A generated project breaks a rule of Vitis HLS; the message lists every violation."""


@dataclass
class Loop:
    label: str
    bound: str
    body: str
    pragmas: list[str]
    children: list[Loop] = field(default_factory=list)


_CSIM_ONLY = re.compile(r"!\s*defined\s*(\(\s*__SYNTHESIS__\s*\)|__SYNTHESIS__)")
_SYNTH_ONLY = re.compile(r"defined\s*(\(\s*__SYNTHESIS__\s*\)|__SYNTHESIS__)")


def _guard(directive: str, condition: str) -> str:
    """What a branch condition says about synthesis: ``"csim"`` (true only in C simulation: ``#ifndef
    __SYNTHESIS__``, ``!defined(__SYNTHESIS__)``), ``"synth"`` (true only in synthesis) or ``"other"``
    (either may hold while synthesising; compound conditions count as other, which checks more)."""
    cond = condition.strip()
    while cond.startswith("(") and cond.endswith(")"):
        cond = cond[1:-1].strip()
    if directive in ("ifdef", "ifndef"):
        if cond != "__SYNTHESIS__":
            return "other"
        return "synth" if directive == "ifdef" else "csim"
    if _CSIM_ONLY.fullmatch(cond):
        return "csim"
    return "synth" if _SYNTH_ONLY.fullmatch(cond) else "other"


_DIRECTIVE = re.compile(r"#\s*(ifdef|ifndef|if|elif|else|endif)\b(.*)")


def strip_csim_only(text: str) -> str:
    """``text`` without comments and without the code that only C simulation compiles: a branch under
    ``#ifndef __SYNTHESIS__`` / ``#if !defined(__SYNTHESIS__)``, and every branch after one taken
    whenever synthesising (the ``#elif``/``#else`` of ``#ifdef __SYNTHESIS__``). Every branch of any
    other ``#if``/``#ifdef``/``#ifndef`` chain is kept: which one synthesis compiles depends on macros
    this check does not know, so each must pass. Nested chains follow the same rules inside kept code."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    out = []
    # one frame per open #if: [the enclosing code is dropped, a branch before this one is always taken
    # in synthesis, this branch is dropped]
    stack: list[list[bool]] = []
    for line in text.splitlines():
        m = _DIRECTIVE.match(line.strip())
        if m is None:
            if not (stack and stack[-1][2]):
                out.append(line)
            continue
        directive, condition = m.groups()
        if directive in ("if", "ifdef", "ifndef"):
            outer = bool(stack) and stack[-1][2]
            guard = _guard(directive, condition)
            stack.append([outer, guard == "synth", outer or guard == "csim"])
        elif not stack:
            continue  # an unbalanced #else/#endif: the compiler reports it
        elif directive == "endif":
            stack.pop()
        else:  # elif, else
            frame = stack[-1]
            guard = _guard("if", condition) if directive == "elif" else "other"
            frame[2] = frame[0] or frame[1] or guard == "csim"
            frame[1] = frame[1] or guard == "synth"
    return "\n".join(out)


def _match_brace(text: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ValueError("unbalanced braces")


_FOR = re.compile(r"(?:(\w+)\s*:\s*)?for\s*\(([^;]*);([^;]*);([^)]*)\)\s*\{")


def parse_loops(body: str) -> list[Loop]:
    """The ``for`` loops of ``body`` (a function or loop body), nested."""
    loops, pos = [], 0
    while True:
        m = _FOR.search(body, pos)
        if not m:
            return loops
        open_at = m.end() - 1
        close = _match_brace(body, open_at)
        inner = body[open_at + 1 : close]
        cond = m.group(3)
        bound = re.split(r"<=|<", cond, maxsplit=1)[1].strip() if "<" in cond else cond.strip()
        loops.append(Loop(m.group(1) or f"unlabelled@{m.start()}", bound, inner, _own_pragmas(inner),
                          parse_loops(inner)))
        pos = close + 1


def _own_pragmas(body: str) -> list[str]:
    """The pragmas of a body that are not inside a nested loop."""
    own, pos = [], 0
    for m in _FOR.finditer(body):
        if m.start() < pos:
            continue
        own += re.findall(r"#pragma\s+HLS\s+[^\n]*", body[pos : m.start()])
        pos = _match_brace(body, m.end() - 1) + 1
    own += re.findall(r"#pragma\s+HLS\s+[^\n]*", body[pos:])
    return [p.strip() for p in own]


def _static_consts(text: str) -> set[str]:
    return set(re.findall(r"static\s+const\s+\w+(?:\s+\w+)?\s+(\w+)\s*=", text))


def is_data_dependent(bound: str, constants: set[str]) -> bool:
    """True unless ``bound`` is made only of literals, ``CONFIG_T::`` members, ``constants`` and operators."""
    rest = re.sub(r"CONFIG_T::\w+", " ", bound)
    for token in re.findall(r"[A-Za-z_]\w*", rest):
        if token not in constants and token not in ("sizeof", "unsigned", "int"):
            return True
    return False


def _walk(loops: list[Loop]):
    for loop in loops:
        yield loop
        yield from _walk(loop.children)


def _pipelined(pragmas: list[str]) -> bool:
    return any(re.match(r"#pragma\s+HLS\s+PIPELINE\b", p) and "off" not in p.lower() for p in pragmas)


def check_kernel(text: str, where: str = KERNEL) -> list[str]:
    """Violations of rules 1-4 in the kernel header text."""
    problems = []
    code = strip_csim_only(text)
    constants = _static_consts(code)
    m = re.search(r"void\s+sparse_lstm_core\s*\(", code)  # the kernel both nnet::sparse_lstm overloads call
    if not m:
        return [f"{where}: no nnet::sparse_lstm_core function"]
    open_at = code.index("{", m.end())
    body = code[open_at + 1 : _match_brace(code, open_at)]
    loops = parse_loops(body)
    for loop in _walk(loops):
        dep = is_data_dependent(loop.bound, constants)
        if dep and not any("LOOP_TRIPCOUNT" in p for p in loop.pragmas):
            problems.append(f"rule 2: {where}: loop {loop.label} has a data-dependent bound ({loop.bound}) and no "
                            "LOOP_TRIPCOUNT (csynth would report its latency as '?')")
        if _pipelined(loop.pragmas):
            for inner in _walk(loop.children):
                if is_data_dependent(inner.bound, constants):
                    problems.append(f"rule 1: {where}: loop {loop.label} is pipelined but contains the data-dependent "
                                    f"loop {inner.label} (a pipelined loop unrolls every loop below it)")
    top_pragmas = _own_pragmas(body)
    if _pipelined(top_pragmas) and any(is_data_dependent(lp.bound, constants) for lp in _walk(loops)):
        problems.append(f"rule 1: {where}: function sparse_lstm_core is pipelined but contains data-dependent loops")
    labels = {lp.label: lp for lp in _walk(loops)}
    for name in PIPELINED_LOOPS:
        lp = labels.get(name)
        if lp is None or not any(re.match(r"#pragma\s+HLS\s+PIPELINE\s+II\s*=\s*1\b", p) for p in lp.pragmas):
            problems.append(f"rule 4: {where}: loop {name} is missing or not PIPELINE II=1")
    for array, dims in BANKING.items():
        for dim in dims:
            pat = rf"#pragma\s+HLS\s+ARRAY_PARTITION\s+variable={array}\s+complete\s+dim={dim}\b"
            if not re.search(pat, code):
                problems.append(f"rule 4: {where}: array {array} is not completely partitioned in dim {dim} "
                                f"(its II=1 loop reads one word of every bank per iteration)")
    problems += _check_synthesis_code(code, where)
    return problems


def _check_synthesis_code(code: str, where: str) -> list[str]:
    problems = []
    for pattern, what in ((r"\bstd::", "std::"), (r"\bnew\b\s+\w", "new"), (r"\bmalloc\s*\(", "malloc"),
                          (r"\bprintf\s*\(", "printf")):
        if re.search(pattern, code):
            problems.append(f"rule 3: {where}: uses {what} outside #ifndef __SYNTHESIS__ guards")
    for m in re.finditer(r"\b(?:void|inline\s+[\w:<>,\s]+?)\s+(\w+)\s*\([^;{]*\)\s*\{", code):
        name, open_at = m.group(1), m.end() - 1
        inner = code[open_at + 1 : _match_brace(code, open_at)]
        if re.search(rf"\b{re.escape(name)}\s*(<[^;]*?>)?\s*\(", inner):
            problems.append(f"rule 3: {where}: function {name} calls itself (recursion cannot be synthesised)")
    return problems


def check_top(text: str, where: str) -> list[str]:
    """Rule 1 for the hls4ml top function: it must not be pipelined when it calls nnet::sparse_lstm."""
    code = strip_csim_only(text)
    if "nnet::sparse_lstm<" not in code:
        return []
    if re.search(r"#pragma\s+HLS\s+PIPELINE\b", code):
        return [f"rule 1: {where}: the top function is PIPELINEd but calls nnet::sparse_lstm, whose column loops "
                "are data-dependent (set hls4ml's PipelineStyle to 'dataflow')"]
    return []


def check_project(project: str | Path) -> None:
    """Raise `SynthesisabilityError` listing every broken rule of a generated project."""
    project = Path(project)
    firmware = project / "firmware"
    kernel = firmware / "nnet_utils" / KERNEL
    if not kernel.is_file():
        raise FileNotFoundError(f"{project}: no firmware/nnet_utils/{KERNEL}; not a SkipLSTM project")
    problems = check_kernel(kernel.read_text(encoding="utf-8"), f"firmware/nnet_utils/{KERNEL}")
    for cpp in sorted(firmware.glob("*.cpp")):
        problems += check_top(cpp.read_text(encoding="utf-8"), f"firmware/{cpp.name}")
    if problems:
        raise SynthesisabilityError(f"{project} would not synthesise as intended:\n- " + "\n- ".join(problems))

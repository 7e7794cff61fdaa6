"""The engine's read-only memories as Verilog: a behavioural ROM (Verilator, vendor tools; `<m>_roms.v`) and
the same ROM as a grid of Lattice ECP5 DP16KD block RAMs with their output register (`<m>_roms_ecp5.v`,
read instead of it in the SKIPLSTM_ECP5 builds).

Why explicit block RAMs: Yosys 0.23 infers DP16KD without the output register, whose clock-to-out
(~5.6 ns at speed grade 6 in nextpnr's timing model) alone sets the clock of anything it feeds; with
``REGMODE = "OUTREG"`` it is ~1 ns (measured in nextpnr on a 1024 x 18 ROM: 156 MHz -> 268 MHz). Both
variants read with ROM_LATENCY = 2 (pipeline/accelerator.py): address sampled at the end of cycle c,
data valid in cycle c + 2.

Tiling (ECP5): 1024 words x 18 bits a DP16KD (DATA_WIDTH 18; word address on AD13..AD4). A ROM of D
words of W bits is R = ceil(D / 1024) rows of K = ceil(W / 18) tiles; the row is selected after the
output registers by the address's high bits, delayed with the data. Initial contents go into
``INITVAL_00..3F`` as Yosys' own ECP5 block RAM mapping lays them out (brams_map.v: word k of a tile
in INITVAL_(k/16), bits [(k%16)*20 +: 18]); templates/rtl/skiplstm_ecp5_models.v models the primitive
for Verilator, so the tiled variant is simulated too (tests/test_rtl.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TILE_WORDS = 1024
TILE_BITS = 18


def ceil_div(a: int, b: int) -> int:
    return -(-int(a) // int(b))


@dataclass(frozen=True)
class RomShape:
    """A ROM's size in ECP5 DP16KD tiles (1024 x 18)."""

    depth: int
    width: int

    @property
    def rows(self) -> int:
        return max(1, ceil_div(self.depth, TILE_WORDS))

    @property
    def cols(self) -> int:
        return ceil_div(self.width, TILE_BITS)

    @property
    def tiles(self) -> int:
        return self.rows * self.cols


def _initvals(words: list[int], col: int) -> list[str]:
    """The 64 INITVAL strings of one tile: ``words`` (<= 1024 ints), bits [col*18 +: 18] of each."""
    mask = (1 << TILE_BITS) - 1
    vals = []
    for k in range(64):
        acc = 0
        for i in range(16):
            idx = k * 16 + i
            if idx < len(words):
                acc |= ((words[idx] >> (col * TILE_BITS)) & mask) << (20 * i)
        vals.append(f"320'h{acc:080x}")
    return vals


def _port_pins(port: str, addr: str | None, dout: str, en: str) -> list[str]:
    """The pin connections of one read-only DP16KD port (``addr`` None: an unused port, tied off)."""
    pins = [f".AD{port}{b}(1'b0)" for b in range(4)]
    pins += [f".AD{port}{4 + b}({addr}[{b}])" if addr else f".AD{port}{4 + b}(1'b0)" for b in range(10)]
    pins += [f".DI{port}{b}(1'b0)" for b in range(18)]
    pins += [f".DO{port}{b}({dout}[{b}])" for b in range(18)]
    pins += [f".CE{port}({en})", f".OCE{port}(1'b1)", f".CLK{port}(clk)", f".WE{port}(1'b0)", f".RST{port}(1'b0)",
             f".CS{port}0(1'b0)", f".CS{port}1(1'b0)", f".CS{port}2(1'b0)"]
    return pins


def _tile(name: str, initvals: list[str], ports: list[tuple[str, str, str, str]]) -> str:
    """A DP16KD instance; ``ports``: (A|B, 10-bit address, 18-bit data out, read enable) per used port."""
    params = ['.DATA_WIDTH_A(18)', '.DATA_WIDTH_B(18)', '.REGMODE_A("OUTREG")', '.REGMODE_B("OUTREG")',
              '.RESETMODE("SYNC")', '.ASYNC_RESET_RELEASE("SYNC")', '.CSDECODE_A("0b000")', '.CSDECODE_B("0b000")',
              '.WRITEMODE_A("NORMAL")', '.WRITEMODE_B("NORMAL")', '.GSR("DISABLED")']
    params += [f".INITVAL_{k:02X}({v})" for k, v in enumerate(initvals)]
    pins: list[str] = []
    used = {p for p, _, _, _ in ports}
    for port, addr, dout, en in ports:
        pins += _port_pins(port, addr, dout, en)
    for port in ("A", "B"):
        if port not in used:
            pins += _port_pins(port, None, f"{name}_unused_{port.lower()}", "1'b0")
    sep = ",\n            "
    return (f"    DP16KD #(\n            {sep.join(params)}\n        ) {name} (\n            {sep.join(pins)}\n        );")


def rom_module(module: str, words: np.ndarray | list[int], width: int, depth: int, hex_file: str,
               dual: bool = False, extra_reg: bool = False, ecp5: bool = False) -> str:
    """Verilog of one ROM module (``clk``, ``en``/``addr``/``dout``; ``dual``: ports ``_a`` and ``_b``),
    latency ROM_LATENCY = 2 in both variants, one more with ``extra_reg``: the selected row's word registered
    once more (the weight ROMs: their words cross the part to every lane). A single-port ROM (the weights)
    registers its ``en_in``/``addr_in`` once more, next to its block RAMs: one more cycle, WEIGHT_LATENCY
    = 4 from the engine's issue cycle. ``words``: ``depth``
    non-negative ints of ``width`` bits (the same values as ``hex_file``, which the behavioural variant
    reads with $readmemh). ``ecp5``: the DP16KD grid, else the behavioural ROM; the two go into separate
    files, not one file with an `ifdef: Yosys 0.23 fails to read a file whose skipped branch holds megabytes
    ("input buffer overflow, can't enlarge buffer because scanner uses REJECT", the H = 512 recurrent
    weights at 8 lanes)."""
    words = [int(w) for w in np.asarray(words, dtype=object).ravel().tolist()]
    if len(words) != depth:
        raise ValueError(f"{module}: {len(words)} words for a ROM of depth {depth}")
    aw = max(1, (depth - 1).bit_length())
    pre = not dual  # the weight ROMs take next cycle's address and enable and register them, one copy a row
    shape = RomShape(depth, width)
    ports = ["a", "b"] if dual else [""]
    sfx = {p: (f"_{p}" if p else "") for p in ports}
    decl = []
    for p in ports:
        s = sfx[p]
        nx = "_in" if pre else ""
        decl += [f"    input  wire              en{s}{nx},", f"    input  wire [{aw - 1}:0]       addr{s}{nx},",
                 f"    output wire [{width - 1}:0]      dout{s}"]
    lines = [f"// {module}: {depth} x {width} bits, {'two read ports' if dual else 'one read port'}, "
             f"latency {2 + int(extra_reg) + int(not dual)} (generated by pipeline.rtl; do not edit).",
             "/* verilator lint_off DECLFILENAME */  // the layer's ROMs share one file",
             "`default_nettype none", "", f"module {module} (", "    input  wire              clk,"]
    lines += [d if i == len(decl) - 1 else (d if d.endswith(",") else d + ",") for i, d in enumerate(decl)]
    lines += [");"]
    if pre:  # registered once more here, beside the block RAMs: the engine's address crosses the part
        lines += [f"    reg  [{aw - 1}:0] addr;  // addr_in / en_in of the cycle before",
                  "    reg  en;",
                  "    always @(posedge clk) begin",
                  "        addr <= addr_in;",
                  "        en <= en_in;",
                  "    end"]
    if not ecp5:
        lines += [f"    reg  [{width - 1}:0] mem [0:{depth - 1}];",
                  f"    initial $readmemh(\"{hex_file}\", mem);"]
        for p in ports:
            s = sfx[p]
            lines += [f"    reg  [{width - 1}:0] q{s}, o{s}{f', x{s}' if extra_reg else ''};",
                      "    always @(posedge clk) begin",
                      f"        if (en{s}) q{s} <= mem[addr{s}];",
                      f"        o{s} <= q{s};",
                      *([f"        x{s} <= o{s};"] if extra_reg else []),
                      "    end",
                      f"    assign dout{s} = {'x' if extra_reg else 'o'}{s};"]
        lines += ["endmodule", "", "`default_nettype wire", ""]
        return "\n".join(lines)
    rb = max(0, aw - 10)  # row-select bits
    rw = shape.cols * TILE_BITS  # bits of one row of tiles
    for p in ports:
        s = sfx[p]
        lines.append(f"    wire [9:0] a10{s} = {_zext(f'addr{s}', aw, 10)};")
        if shape.rows > 1:
            lines += [f"    reg  [{rb - 1}:0] row_q{s}, row_o{s};  // the row of the word in the output registers",
                      "    always @(posedge clk) begin",
                      f"        if (en{s}) row_q{s} <= addr{s}[{aw - 1}:10];",
                      f"        row_o{s} <= row_q{s};",
                      "    end"]
        lines.append(f"    wire [{shape.rows * rw - 1}:0] rows{s};  // row r at bits r*{rw}")
    for r in range(shape.rows):
        chunk = words[r * TILE_WORDS:(r + 1) * TILE_WORDS]
        for c in range(shape.cols):
            name = f"t_r{r}_c{c}"
            outs = []
            for p, port in zip(ports, ("A", "B"), strict=False):
                s = sfx[p]
                lines.append(f"    wire [17:0] {name}_do{s};")
                outs.append((port, f"a10{s}", f"{name}_do{s}", f"en{s}"))
            if not dual:
                lines.append(f"    wire [17:0] {name}_unused_b;")
            lines.append(_tile(name, _initvals(chunk, c), outs))
        for p in ports:
            s = sfx[p]
            cat = ", ".join(f"t_r{r}_c{c}_do{s}" for c in range(shape.cols - 1, -1, -1))
            lines.append(f"    assign rows{s}[{r * rw} +: {rw}] = {{{cat}}};")
    for p in ports:
        s = sfx[p]
        if shape.rows > 1:  # a one-hot AND-OR mux of the rows (a variable part-select would be a shifter)
            terms = " |\n        ".join(f"(rows{s}[{r * rw} +: {rw}] & {{{rw}{{row_o{s} == {rb}'d{r}}}}})"
                                        for r in range(shape.rows))
            lines.append(f"    wire [{rw - 1}:0] sel_data{s} =\n        {terms};")
        else:
            lines.append(f"    wire [{rw - 1}:0] sel_data{s} = rows{s};")
        if extra_reg:
            lines += [f"    reg  [{width - 1}:0] x{s};  // the selected word, registered once more",
                      f"    always @(posedge clk) x{s} <= sel_data{s}[{width - 1}:0];",
                      f"    assign dout{s} = x{s};"]
        else:
            lines.append(f"    assign dout{s} = sel_data{s}[{width - 1}:0];")
    lines += ["    /* verilator lint_off UNUSEDSIGNAL */"]
    unused = [f"sel_data{sfx[p]}" for p in ports] + (
        [f"t_r{r}_c{c}_unused_b" for r in range(shape.rows) for c in range(shape.cols)] if not dual else [])
    names = [", ".join(unused[k:k + 8]) + "," for k in range(0, len(unused), 8)]  # short lines
    lines += ["    wire unused_tiles = &{1'b0,", *(f"        {n}" for n in names), "        1'b0};"]
    lines += ["    /* verilator lint_on UNUSEDSIGNAL */", "endmodule", "", "`default_nettype wire", ""]
    return "\n".join(lines)


def _zext(sig: str, width: int, to: int) -> str:
    if width >= to:
        return f"{sig}[{to - 1}:0]"
    return f"{{{to - width}'d0, {sig}}}"

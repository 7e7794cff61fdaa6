"""The sparse-state LSTM engine as generated RTL: Verilog per SparseStateLSTM layer, cycle-exact in
Verilator against the emulator and the cycle model, sized by Yosys.

- `pipeline.rtl.spec`: `LayerSpec`, one layer's sizes, raw weights/tables and fixed-point types, from
  the emulator (`LayerSpec.from_emulator`).
- `pipeline.rtl.generate`: `generate_layer(spec, out_dir) -> RtlLayer` (templates/rtl/*.j2 + ROM images).
- `pipeline.rtl.sim`: `emulate_layers`, `simulate`, `check_layer` (raises `RtlMismatch`), `run_model`
  (everything for every layer; the ``rtl.json`` report), `write_rtl_json`, `lint`.
- `pipeline.rtl.synth`: `synthesize(layer, part)`: Yosys ``synth_xilinx`` resource estimate of the
  sparse-capable and the dense-only build (pre-place-and-route, no timing).

The schedule is `pipeline.accelerator`'s, cycle for cycle; the arithmetic is `pipeline.emulator`'s
(`pipeline.fixed` casts), bit for bit.
"""

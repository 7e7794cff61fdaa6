// SkipLSTM RTL: a read-only memory with two synchronous read ports (latency 1: address in cycle i,
// data valid in cycle i + 1), one true-dual-port block RAM, initialised from a $readmemh file.
module skiplstm_rom_dp #(
    parameter integer WIDTH   = 16,
    parameter integer DEPTH   = 1024,
    parameter integer ADDR_W  = 10,
    parameter         INIT_FILE = "rom.hex"
) (
    input  wire              clk,
    input  wire [ADDR_W-1:0] addr_a,
    input  wire [ADDR_W-1:0] addr_b,
    output reg  [WIDTH-1:0]  dout_a,
    output reg  [WIDTH-1:0]  dout_b
);
    reg [WIDTH-1:0] mem [0:DEPTH-1];
    initial $readmemh(INIT_FILE, mem);
    always @(posedge clk) begin
        dout_a <= mem[addr_a];
        dout_b <= mem[addr_b];
    end
endmodule

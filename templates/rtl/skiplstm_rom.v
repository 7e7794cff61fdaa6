// SkipLSTM RTL: read-only memories initialised from $readmemh files (block RAM when large enough).
//
// skiplstm_rom: one synchronous read port; OUT_REG = 1 adds the block RAM's output register
// (read latency 2: address in cycle i, data valid in cycle i + 2), OUT_REG = 0 gives latency 1.
module skiplstm_rom #(
    parameter integer WIDTH   = 16,
    parameter integer DEPTH   = 1024,
    parameter integer ADDR_W  = 10,
    parameter integer OUT_REG = 0,
    parameter         INIT_FILE = "rom.hex"
) (
    input  wire              clk,
    input  wire [ADDR_W-1:0] addr,
    output wire [WIDTH-1:0]  dout
);
    reg [WIDTH-1:0] mem [0:DEPTH-1];
    initial $readmemh(INIT_FILE, mem);
    reg [WIDTH-1:0] rd_q;
    always @(posedge clk) rd_q <= mem[addr];
    generate
        if (OUT_REG != 0) begin : g_out_reg
            reg [WIDTH-1:0] out_q;
            always @(posedge clk) out_q <= rd_q;
            assign dout = out_q;
        end else begin : g_no_out_reg
            assign dout = rd_q;
        end
    endgenerate
endmodule

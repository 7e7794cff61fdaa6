// SkipLSTM RTL: a simple dual-port RAM (one write port, one read port), read latency 2
// (pipeline.accelerator.X_LATENCY): raddr presented in cycle c, rdata valid in cycle c + 2.
//
// BLOCK = 0: LUT RAM (asynchronous read, then two registers); BLOCK = 1: block RAM with its output
// register. Under SKIPLSTM_ECP5 the block RAM is a grid of DP16KD (1024 x 18, REGMODE OUTREG; write on
// port B, read on port A), because Yosys 0.23 infers DP16KD without the output register, whose
// clock-to-out (~5.6 ns at speed 6) would set the clock of what reads it.
`default_nettype none

module skiplstm_ram #(
    parameter integer WIDTH  = 16,
    parameter integer DEPTH  = 64,
    parameter integer ADDR_W = 6,
    parameter integer BLOCK  = 0
) (
    input  wire              clk,
    input  wire              we,
    input  wire [ADDR_W-1:0] waddr,
    input  wire [WIDTH-1:0]  wdata,
    input  wire              re,
    input  wire [ADDR_W-1:0] raddr,
    output wire [WIDTH-1:0]  rdata
);
    generate
        if (BLOCK == 0) begin : g_lut
            (* ram_style = "distributed" *) reg [WIDTH-1:0] mem [0:DEPTH-1];
            reg [WIDTH-1:0] q, o;
            always @(posedge clk) begin
                if (we) mem[waddr] <= wdata;
                q <= mem[raddr];
                o <= q;
            end
            assign rdata = o;
            wire unused_re = &{1'b0, re, 1'b0};  // the LUT RAM reads every cycle
        end else begin : g_block
`ifdef SKIPLSTM_ECP5
            localparam integer ROWS = (DEPTH + 1023) / 1024;
            localparam integer COLS = (WIDTH + 17) / 18;
            localparam integer RB = (ADDR_W > 10) ? ADDR_W - 10 : 1;
            wire [9:0] wa10, ra10;
            wire [RB-1:0] wrow, rrow;
            if (ADDR_W > 10) begin : g_rows
                assign wa10 = waddr[9:0];
                assign ra10 = raddr[9:0];
                assign wrow = waddr[ADDR_W-1:10];
                assign rrow = raddr[ADDR_W-1:10];
            end else begin : g_row
                assign wa10 = {{(10 - ADDR_W){1'b0}}, waddr};
                assign ra10 = {{(10 - ADDR_W){1'b0}}, raddr};
                assign wrow = 1'b0;
                assign rrow = 1'b0;
            end
            reg [RB-1:0] row_q, row_o;
            always @(posedge clk) begin
                if (re) row_q <= rrow;
                row_o <= row_q;
            end
            wire [COLS*18-1:0] wd = {{(COLS*18 - WIDTH){1'b0}}, wdata};
            wire [ROWS*COLS*18-1:0] rd;
            genvar r, c;
            for (r = 0; r < ROWS; r = r + 1) begin : g_r
                for (c = 0; c < COLS; c = c + 1) begin : g_c
                    wire [17:0] di = wd[c*18 +: 18];
                    wire [17:0] dout;
                    wire [17:0] unused_b;
                    wire wen = we && (wrow == r);
                    DP16KD #(.DATA_WIDTH_A(18), .DATA_WIDTH_B(18), .REGMODE_A("OUTREG"), .REGMODE_B("NOREG"),
                             .RESETMODE("SYNC"), .ASYNC_RESET_RELEASE("SYNC"), .CSDECODE_A("0b000"),
                             .CSDECODE_B("0b000"), .WRITEMODE_A("NORMAL"), .WRITEMODE_B("NORMAL"), .GSR("DISABLED")) u_t (
                        .ADA0(1'b0), .ADA1(1'b0), .ADA2(1'b0), .ADA3(1'b0),
                        .ADA4(ra10[0]), .ADA5(ra10[1]), .ADA6(ra10[2]), .ADA7(ra10[3]), .ADA8(ra10[4]),
                        .ADA9(ra10[5]), .ADA10(ra10[6]), .ADA11(ra10[7]), .ADA12(ra10[8]), .ADA13(ra10[9]),
                        .DIA0(1'b0), .DIA1(1'b0), .DIA2(1'b0), .DIA3(1'b0), .DIA4(1'b0), .DIA5(1'b0), .DIA6(1'b0),
                        .DIA7(1'b0), .DIA8(1'b0), .DIA9(1'b0), .DIA10(1'b0), .DIA11(1'b0), .DIA12(1'b0), .DIA13(1'b0),
                        .DIA14(1'b0), .DIA15(1'b0), .DIA16(1'b0), .DIA17(1'b0),
                        .DOA0(dout[0]), .DOA1(dout[1]), .DOA2(dout[2]), .DOA3(dout[3]), .DOA4(dout[4]), .DOA5(dout[5]),
                        .DOA6(dout[6]), .DOA7(dout[7]), .DOA8(dout[8]), .DOA9(dout[9]), .DOA10(dout[10]),
                        .DOA11(dout[11]), .DOA12(dout[12]), .DOA13(dout[13]), .DOA14(dout[14]), .DOA15(dout[15]),
                        .DOA16(dout[16]), .DOA17(dout[17]),
                        .CEA(re), .OCEA(1'b1), .CLKA(clk), .WEA(1'b0), .RSTA(1'b0), .CSA0(1'b0), .CSA1(1'b0), .CSA2(1'b0),
                        .ADB0(1'b1), .ADB1(1'b1), .ADB2(1'b0), .ADB3(1'b0),
                        .ADB4(wa10[0]), .ADB5(wa10[1]), .ADB6(wa10[2]), .ADB7(wa10[3]), .ADB8(wa10[4]),
                        .ADB9(wa10[5]), .ADB10(wa10[6]), .ADB11(wa10[7]), .ADB12(wa10[8]), .ADB13(wa10[9]),
                        .DIB0(di[0]), .DIB1(di[1]), .DIB2(di[2]), .DIB3(di[3]), .DIB4(di[4]), .DIB5(di[5]), .DIB6(di[6]),
                        .DIB7(di[7]), .DIB8(di[8]), .DIB9(di[9]), .DIB10(di[10]), .DIB11(di[11]), .DIB12(di[12]),
                        .DIB13(di[13]), .DIB14(di[14]), .DIB15(di[15]), .DIB16(di[16]), .DIB17(di[17]),
                        .DOB0(unused_b[0]), .DOB1(unused_b[1]), .DOB2(unused_b[2]), .DOB3(unused_b[3]), .DOB4(unused_b[4]),
                        .DOB5(unused_b[5]), .DOB6(unused_b[6]), .DOB7(unused_b[7]), .DOB8(unused_b[8]), .DOB9(unused_b[9]),
                        .DOB10(unused_b[10]), .DOB11(unused_b[11]), .DOB12(unused_b[12]), .DOB13(unused_b[13]),
                        .DOB14(unused_b[14]), .DOB15(unused_b[15]), .DOB16(unused_b[16]), .DOB17(unused_b[17]),
                        .CEB(wen), .OCEB(1'b0), .CLKB(clk), .WEB(wen), .RSTB(1'b0), .CSB0(1'b0), .CSB1(1'b0), .CSB2(1'b0));
                    assign rd[(r*COLS + c)*18 +: 18] = dout;
                end
            end
            reg  [COLS*18-1:0] row_data;   // a one-hot AND-OR mux of the rows (not a shifter)
            integer i;
            always @* begin
                row_data = {(COLS*18){1'b0}};
                for (i = 0; i < ROWS; i = i + 1)
                    row_data = row_data | (rd[i*COLS*18 +: COLS*18] & {(COLS*18){row_o == i[RB-1:0]}});
            end
            assign rdata = row_data[WIDTH-1:0];
`else
            reg [WIDTH-1:0] mem [0:DEPTH-1];
            reg [WIDTH-1:0] q, o;
            always @(posedge clk) begin
                if (we) mem[waddr] <= wdata;
                if (re) q <= mem[raddr];
                o <= q;
            end
            assign rdata = o;
`endif
        end
    endgenerate
endmodule

`default_nettype wire

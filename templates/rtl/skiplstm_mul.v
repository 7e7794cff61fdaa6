// SkipLSTM RTL: a pipelined signed multiplier, p = a * b, latency 3 (pipeline.accelerator.MUL_LATENCY).
//
// a and b presented in cycle c are sampled at the end of c; the product is valid in cycle c + 3.
// Three implementations with the same cycle behaviour:
//   - SKIPLSTM_ECP5 defined, A_W <= 18 and B_W <= 18: one Lattice ECP5 MULT18X18D with its input,
//     pipeline and output registers (Yosys 0.23 maps `*` onto MULT18X18D without any of them: a
//     flip-flop -> multiplier -> flip-flop path then limits an LFE5U-85F at speed 6 to ~140 MHz in
//     nextpnr's timing model, against > 500 MHz for the registered block);
//   - SKIPLSTM_ECP5 defined, one operand 19..35 bits and the other <= 18: two MULT18X18D with input and
//     output registers on the low 17 bits and the high bits of the wide operand, their sum registered;
//   - otherwise: behavioural registers around `*` (what Verilator simulates and what a vendor tool
//     retimes into its DSP blocks; on ECP5 an operand wider than these limits is built this way too,
//     at a lower clock: the timing report names such a path).
// Operands are two's complement (an unsigned value enters with a zero sign bit).
`default_nettype none

module skiplstm_mul #(
    parameter integer A_W = 18,
    parameter integer B_W = 18
) (
    input  wire                 clk,
    input  wire                 en,     // advance the pipeline (tie high: the stream never stalls)
    input  wire [A_W-1:0]       a,
    input  wire [B_W-1:0]       b,
    output wire [A_W+B_W-1:0]   p
);
`ifdef SKIPLSTM_ECP5
    generate
        if (A_W <= B_W) begin : g_ab
            skiplstm_ecp5_mul #(.N_W(A_W), .W_W(B_W)) u_m (.clk(clk), .en(en), .n(a), .w(b), .p(p));
        end else begin : g_ba
            skiplstm_ecp5_mul #(.N_W(B_W), .W_W(A_W)) u_m (.clk(clk), .en(en), .n(b), .w(a), .p(p));
        end
    endgenerate
`else
    reg [A_W-1:0] a1;
    reg [B_W-1:0] b1;
    reg [A_W+B_W-1:0] p2, p3;
    always @(posedge clk) if (en) begin
        a1 <= a; b1 <= b;
        p2 <= $signed(a1) * $signed(b1);
        p3 <= p2;
    end
    assign p = p3;
`endif
endmodule

// p = n * w on ECP5 (SKIPLSTM_ECP5 only), latency 3, N_W <= W_W (the narrower operand first).
/* verilator lint_off DECLFILENAME */
module skiplstm_ecp5_mul #(
    parameter integer N_W = 18,
    parameter integer W_W = 18
) (
    input  wire                 clk,
    input  wire                 en,
    input  wire [N_W-1:0]       n,
    input  wire [W_W-1:0]       w,
    output wire [N_W+W_W-1:0]   p
);
    generate
        if (W_W <= 18) begin : g_one
            wire [35:0] y;
            wire [17:0] a18, b18;
            if (N_W < 18) begin : g_ext_n
                assign a18 = {{(18 - N_W){n[N_W-1]}}, n};
            end else begin : g_n
                assign a18 = n;
            end
            if (W_W < 18) begin : g_ext_w
                assign b18 = {{(18 - W_W){w[W_W-1]}}, w};
            end else begin : g_w
                assign b18 = w;
            end
            skiplstm_ecp5_mult18 #(.PIPE(1)) u_m (.clk(clk), .en(en), .a(a18), .b(b18), .p(y));
            assign p = y[N_W+W_W-1:0];
            if (N_W + W_W < 36) begin : g_unused
                wire unused_hi = &{1'b0, y[35:N_W+W_W], 1'b0};  // the product's sign extension
            end
        end else if (N_W <= 18 && W_W <= 35) begin : g_two
            // w = hi * 2^17 + lo, lo = w[16:0] (unsigned, entered with a zero sign bit), hi signed
            wire [35:0] y_lo, y_hi;
            wire [17:0] a18, hi18;
            if (N_W < 18) begin : g_ext_n
                assign a18 = {{(18 - N_W){n[N_W-1]}}, n};
            end else begin : g_n
                assign a18 = n;
            end
            if (W_W < 35) begin : g_ext_hi
                assign hi18 = {{(35 - W_W){w[W_W-1]}}, w[W_W-1:17]};
            end else begin : g_hi
                assign hi18 = w[W_W-1:17];
            end
            skiplstm_ecp5_mult18 #(.PIPE(0)) u_lo (.clk(clk), .en(en), .a(a18), .b({1'b0, w[16:0]}), .p(y_lo));
            skiplstm_ecp5_mult18 #(.PIPE(0)) u_hi (.clk(clk), .en(en), .a(a18), .b(hi18), .p(y_hi));
            wire [71:0] y = {{19{y_hi[35]}}, y_hi, 17'd0} + {{36{y_lo[35]}}, y_lo};
            reg  [N_W+W_W-1:0] sum;
            always @(posedge clk) if (en) sum <= y[N_W+W_W-1:0];
            assign p = sum;
            wire unused_hi = &{1'b0, y[71:N_W+W_W], 1'b0};  // the sum's sign extension
        end else begin : g_wide
            reg [N_W-1:0] n1;
            reg [W_W-1:0] w1;
            reg [N_W+W_W-1:0] p2, p3;
            always @(posedge clk) if (en) begin
                n1 <= n; w1 <= w;
                p2 <= $signed(n1) * $signed(w1);
                p3 <= p2;
            end
            assign p = p3;
        end
    endgenerate
endmodule
/* verilator lint_on DECLFILENAME */

`default_nettype wire

// SkipLSTM RTL: one ap_fixed conversion, combinational.
//
// What the Xilinx ap_types headers do when a value is assigned to an ap_fixed<W,I,Q,O> (or
// ap_ufixed): first the quantisation mode rounds away the fractional bits the target lacks, then the
// overflow mode fits the integer part. The numpy twin is pipeline/fixed.py (`cast`); both are held
// bit-equal by the RTL tests. Every value in the engine is a signed two's-complement "container":
// W bits for ap_fixed, W + 1 bits (sign bit always 0) for ap_ufixed.
//
//   Q_MODE  0 AP_TRN (floor)  1 AP_TRN_ZERO  2 AP_RND (half up)  3 AP_RND_ZERO  4 AP_RND_MIN_INF
//           5 AP_RND_INF  6 AP_RND_CONV (half to even)           (index in fixed.Q_MODES)
//   O_MODE  0 AP_WRAP  1 AP_SAT  2 AP_SAT_ZERO  3 AP_SAT_SYM    (index in fixed.O_MODES)
//
// din holds IN_W bits with IN_F fractional bits; dout is the target's raw integer (OUT_F = W - I
// fractional bits; either F may be negative or exceed its width).
module skiplstm_fixed_cast #(
    parameter integer IN_W       = 32,
    parameter integer IN_F       = 16,
    parameter integer OUT_W      = 16,
    parameter integer OUT_F      = 10,
    parameter integer OUT_SIGNED = 1,
    parameter integer Q_MODE     = 0,
    parameter integer O_MODE     = 0
) (
    input  wire [IN_W-1:0]                    din,
    output wire [OUT_W+((OUT_SIGNED != 0) ? 0 : 1)-1:0] dout
);
    localparam integer OUT_CW = OUT_W + ((OUT_SIGNED != 0) ? 0 : 1);  // container width of the target
    localparam integer S      = IN_F - OUT_F;                   // > 0: fractional bits dropped
    localparam integer XW     = (S > 0 && IN_W < S + 1) ? S + 1 : IN_W;  // input, sign-extended
    localparam integer QW     = (S > 0) ? XW - S + 1 : IN_W - S;  // quantised value (+1: round up)
    localparam integer CW     = (QW > OUT_W + 2) ? QW : OUT_W + 2; // compare width: holds q, min, max

    // Each mode reads only the signals it needs (a wrap drops the high bits of q, a truncation ignores
    // the dropped bits, ...): unused signals are the point here, not a mistake.
    /* verilator lint_off UNUSEDSIGNAL */

    // ------------------------------------------------------------------ quantisation
    // q = fe + inc: fe the value before rounding (QW bits, its top two bits equal when bits are dropped),
    // inc the rounding increment (0 or 1)
    wire [QW-1:0] q, fe;
    wire          inc;
    generate
        if (S > 0) begin : g_drop
            wire [XW-1:0] x;
            if (XW > IN_W) begin : g_ext
                assign x = {{(XW - IN_W){din[IN_W-1]}}, din};
            end else begin : g_same
                assign x = din;
            end
            wire [XW-S-1:0] fl   = x[XW-1:S];      // floor(din / 2^S)
            wire [S-1:0]    rem  = x[S-1:0];       // the dropped bits, 0 <= rem < 2^S
            wire            neg  = x[XW-1];
            wire            half = rem[S-1];       // rem >= 2^(S-1)
            wire            rest;                  // rem has a bit set below the half bit
            if (S > 1) begin : g_rest
                assign rest = |rem[S-2:0];
            end else begin : g_norest
                assign rest = 1'b0;
            end
            wire above = half & rest;              // rem > half an LSB
            wire tie   = half & ~rest;             // rem == half an LSB
            wire up;                               // add one LSB of the target to the floor
            if (Q_MODE == 0) begin : g_trn
                assign up = 1'b0;
            end else if (Q_MODE == 1) begin : g_trn_zero
                assign up = neg & (half | rest);
            end else if (Q_MODE == 2) begin : g_rnd
                assign up = half;
            end else if (Q_MODE == 3) begin : g_rnd_zero
                assign up = above | (tie & neg);
            end else if (Q_MODE == 4) begin : g_rnd_min_inf
                assign up = above;
            end else if (Q_MODE == 5) begin : g_rnd_inf
                assign up = above | (tie & ~neg);
            end else begin : g_rnd_conv
                assign up = above | (tie & fl[0]);
            end
            assign fe = {fl[XW-S-1], fl};
            assign inc = up;
            assign q = fe + {{(XW - S){1'b0}}, up};
        end else if (S == 0) begin : g_keep
            assign fe = din;
            assign inc = 1'b0;
            assign q = din;
        end else begin : g_append
            assign fe = {din, {(-S){1'b0}}};       // finer target grid: exact
            assign inc = 1'b0;
            assign q = fe;
        end
    endgenerate

    // ------------------------------------------------------------------ overflow
    wire [CW-1:0] qe;
    generate
        if (CW > QW) begin : g_qext
            assign qe = {{(CW - QW){q[QW-1]}}, q};
        end else begin : g_qsame
            assign qe = q;
        end
    endgenerate
    // The target's range as CW-bit constants: [LO, HI], and -HI for AP_SAT_SYM.
    wire [CW-1:0] HI, LO, NEG_HI;
    generate
        if (OUT_SIGNED != 0) begin : g_signed_range
            assign HI     = {{(CW - OUT_W + 1){1'b0}}, {(OUT_W - 1){1'b1}}};
            assign LO     = {{(CW - OUT_W + 1){1'b1}}, {(OUT_W - 1){1'b0}}};
            assign NEG_HI = LO + {{(CW - 1){1'b0}}, 1'b1};
        end else begin : g_unsigned_range
            assign HI     = {{(CW - OUT_W){1'b0}}, {OUT_W{1'b1}}};
            assign LO     = {CW{1'b0}};
            assign NEG_HI = {CW{1'b0}};
        end
    endgenerate
    // Out of range, decided from fe and the increment's carry in parallel with the increment itself
    // (equality reductions, not a comparator behind the adder): q's bits above the target's top bit
    // (from bit OUT_W-1 signed, OUT_W unsigned) must all equal q's sign (all zero unsigned). Those bits
    // of q are hb + carry, carry = inc and every bit of fe below them set.
    wire over, under;
    localparam integer TOP = (OUT_SIGNED != 0) ? OUT_W - 1 : OUT_W;  // lowest bit that must match the sign
    generate
        if (QW <= TOP + 1) begin : g_fits            // never above the range; unsigned: below if negative
            assign over = 1'b0;
            if (OUT_SIGNED != 0) begin : g_s
                assign under = 1'b0;
            end else begin : g_u
                assign under = q[QW-1];
            end
        end else begin : g_check
            wire [QW-TOP-1:0] hb = fe[QW-1:TOP];
            wire carry;
            if (TOP > 0) begin : g_carry
                assign carry = inc & (&fe[TOP-1:0]);
            end else begin : g_carry0
                assign carry = inc;
            end
            wire hb_zero = ~|hb;
            wire hb_ones = &hb;
            wire ok;
            if (OUT_SIGNED != 0) begin : g_s
                // all zero (without a carry), all one (a carry makes them all zero), or all one but the
                // lowest (a carry makes them all one)
                wire hb_ones_m1 = (&hb[QW-TOP-1:1]) & ~hb[0];
                assign ok = (hb_zero & ~carry) | hb_ones | (hb_ones_m1 & carry);
            end else begin : g_u
                assign ok = (hb_zero & ~carry) | (hb_ones & carry);
            end
            assign over  = ~ok & ~fe[QW-1];
            assign under = ~ok & fe[QW-1];
        end
    endgenerate
    wire [OUT_CW-1:0] in_range = qe[OUT_CW-1:0];   // q itself when it fits
    generate
        if (O_MODE == 0) begin : g_wrap            // keep the low W bits
            if (OUT_SIGNED != 0) begin : g_s
                assign dout = qe[OUT_W-1:0];
            end else begin : g_u
                assign dout = {1'b0, qe[OUT_W-1:0]};
            end
        end else if (O_MODE == 2) begin : g_sat_zero
            assign dout = (over | under) ? {OUT_CW{1'b0}} : in_range;
        end else if (O_MODE == 3 && OUT_SIGNED != 0) begin : g_sat_sym  // [-max, max]; min -> -max too
            wire below_sym = $signed(qe) < $signed(NEG_HI);
            assign dout = over ? HI[OUT_CW-1:0] : below_sym ? NEG_HI[OUT_CW-1:0] : in_range;
        end else begin : g_sat                     // AP_SAT (and unsigned AP_SAT_SYM)
            assign dout = over ? HI[OUT_CW-1:0] : under ? LO[OUT_CW-1:0] : in_range;
        end
    endgenerate
    /* verilator lint_on UNUSEDSIGNAL */
endmodule

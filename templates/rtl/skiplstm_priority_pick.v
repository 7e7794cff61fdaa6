// SkipLSTM RTL: the column picker's priority encoder (combinational).
//
// mask holds WORDS words of LANES bits, bit (word * LANES + lane) = column word * LANES + lane.
// Returns the lowest set column as (word, lane): first the lowest word with any bit set, then the
// lowest bit inside it. Two small encoders instead of one wide one, and no division by LANES: the
// (word, lane) pair is directly the bank address and bank number of the state/input memories.
module skiplstm_priority_pick #(
    parameter integer WORDS  = 1,
    parameter integer LANES  = 1,
    parameter integer WORD_W = 1,
    parameter integer LANE_W = 1
) (
    input  wire [WORDS*LANES-1:0] mask,
    output reg                    valid,
    output reg  [WORD_W-1:0]      word,
    output reg  [LANE_W-1:0]      lane
);
    integer w, l;
    reg [LANES-1:0] sel;
    always @* begin
        valid = 1'b0;
        word  = {WORD_W{1'b0}};
        lane  = {LANE_W{1'b0}};
        for (w = WORDS - 1; w >= 0; w = w - 1) begin
            if (|mask[w*LANES +: LANES]) begin
                valid = 1'b1;
                word  = w[WORD_W-1:0];
            end
        end
        sel = mask[word*LANES +: LANES];
        for (l = LANES - 1; l >= 0; l = l - 1) begin
            if (sel[l]) lane = l[LANE_W-1:0];
        end
    end
endmodule

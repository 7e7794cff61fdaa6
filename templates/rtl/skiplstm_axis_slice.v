// SkipLSTM RTL: an AXI4-Stream register slice (a skid buffer): every output registered, full throughput.
//
// The streaming top puts one at each port, so that the pins (placed anywhere on the die's edge) reach
// flip-flops and nothing else in the cycle: s_ready, m_valid and m_data are registers; a beat taken
// while the output is stalled waits in the skid register.
`default_nettype none

module skiplstm_axis_slice #(
    parameter integer W = 8
) (
    input  wire         clk,
    input  wire         rst,
    input  wire [W-1:0] s_data,
    input  wire         s_valid,
    output wire         s_ready,
    output wire [W-1:0] m_data,
    output wire         m_valid,
    input  wire         m_ready
);
    reg [W-1:0] d0, d1;  // output register, skid register
    reg         v0, v1;
    wire        take = s_valid && !v1;
    assign s_ready = !v1;
    assign m_data = d0;
    assign m_valid = v0;
    always @(posedge clk) begin
        if (rst) begin
            v0 <= 1'b0;
            v1 <= 1'b0;
        end else if (!v0 || m_ready) begin      // the output register is free next cycle
            if (v1) begin
                d0 <= d1;
                v0 <= 1'b1;
                v1 <= 1'b0;
            end else begin
                d0 <= s_data;
                v0 <= take;
            end
        end else if (take) begin                // output stalled: keep the beat in the skid register
            d1 <= s_data;
            v1 <= 1'b1;
        end
    end
endmodule

`default_nettype wire

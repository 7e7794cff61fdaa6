// SkipLSTM: sparse-state LSTM kernel (hls4ml style, Vivado/Vitis HLS backend).
//
// Schedule per sequence (cycle model in pipeline/accelerator.py; P lanes, P | H, C = 4H/P chunks per
// column, U = H/P gate iterations, XS = ceil(n_in/P) scan iterations, G = max(U, XS) in sparse mode,
// U in dense mode):
//   InitLoop   (G iterations, drain INIT_DEPTH): acc <- bias, c <- 0, h <- 0, h mask <- 0; sparse: x_0's
//                               nonzero mask, P inputs per iteration.
//   per step t:
//   StreamLoop (cols * C iterations, one flattened pipeline over (column, chunk), fill PICK_DEPTH and
//                               drain MAC_DEPTH): at chunk 0 a priority encoder picks the next column, x
//                               mask first, then the h mask (ascending; every column in dense mode), and
//                               m & (m - 1) clears it (the encoder is not in the mask's recurrence); then
//                               acc[g][lane][a] += W[j][chunk*P + lane] * v_j, P lanes per iteration.
//   GateLoop   (G iterations, drain GATE_DEPTH): P units per iteration: i, f, o = sigmoid LUT, g = tanh
//                               LUT (per-lane table copies), c_t = f*c + i*g, h_t = o * tanh(c_t),
//                               prune (|h_t| > tau, or o > tau before the product; at the last step only
//                               if prune_last), h_t's nonzero mask bit, acc <- bias for the next step;
//                               sparse: iterations it < XS also build x_{t+1}'s nonzero mask.
//   PairLoop   (weight_chunks = KE > 0, the weight-sparse engine, in place of StreamLoop: cols * KE
//                               iterations, same fill and drain): weights as KE (value, row) pairs per column
//                               and lane; lane p adds value * v_j into the accumulator word its row names,
//                               with its last two results forwarded (a word may come back one iteration later).
// Nothing above the column stream is pipelined (StepLoop is a plain loop; the hls4ml top function is
// DATAFLOW), so the data-dependent StreamLoop is never unrolled.
// Adding 0*w is exact in fixed point, so sparse and dense modes give bit-identical outputs. The MAC
// operands are widened to mac_value_t / mac_weight_t, which hold x_t and h_t (and W_x and W_h) exactly:
// the product and every accumulator cast are those of `acc += W * v` in the operands' own types.
// token_input (an Embedding folded in by pipeline/hls/fold.py): data holds one token id v_t per step,
// and the one input "column" is row v_t of the folded kernel F[v] = E[v] * W_x (times 1), in both modes.
//
// Weights are stored column-major (one column of 4H words per input/state index: the row-major
// layout of the Keras kernel [n_in][4H]), reshaped P words wide. LUTs are generated in Python
// (pipeline/hls) and written as weights, so the emulator and this kernel index the very same tables.
#ifndef NNET_SPARSE_LSTM_H_
#define NNET_SPARSE_LSTM_H_

#include "ap_fixed.h"
#include "nnet_common.h"

#ifndef __SYNTHESIS__
#include <vector>
#endif

namespace nnet {

struct sparse_lstm_config {
    typedef ap_fixed<16, 6> weight_t;
    typedef ap_fixed<16, 6> recurrent_weight_t;
    typedef ap_fixed<16, 6> bias_t;
    typedef ap_fixed<40, 20> accum_t;
    typedef ap_fixed<24, 8> cell_t;
    typedef ap_fixed<18, 2> table_t;
    typedef ap_fixed<10, 4, AP_TRN, AP_SAT> sigmoid_index_t;
    typedef ap_fixed<10, 3, AP_TRN, AP_SAT> tanh_index_t;
    typedef ap_fixed<20, 6> mac_value_t;  // holds x_t and h_t exactly (and 1 for token input)
    typedef ap_fixed<16, 6> mac_weight_t; // holds W_x and W_h exactly
    typedef ap_uint<8> col_t;             // a column index, 0..max(n_in, H)
    typedef ap_uint<8> count_t;           // a column count, 0..cols_x + H
    typedef ap_uint<16> iter_t;           // a stream iteration, 0..(cols_x + H) * C
    typedef ap_uint<8> chunk_t;           // 0..C
    typedef ap_uint<8> gate_iter_t;       // 0..G
    static const unsigned n_in = 1;
    static const unsigned n_state = 1;
    static const unsigned n_timesteps = 1;
    static const unsigned n_lanes = 1;
    static const unsigned table_size = 1024;
    static const unsigned table_bits = 10;
    static const bool skip_zeros = true;
    static const bool prune_output_gate = false;
    static const bool prune_last = true; // false: the last step's h_T is not pruned (it feeds no recurrent product)
    static const bool token_input = false;
    static const bool return_sequences = false;
    static const unsigned init_depth = 5;
    static const unsigned pick_depth = 4;
    static const unsigned mac_depth = 9;
    static const unsigned gate_depth = 21;
    static const unsigned acc_latency = 3;
    static const unsigned weight_chunks = 0; // KE > 0: weights as KE (value, row) pairs a column and lane (PairLoop)
    typedef ap_uint<3> row_t;               // a pair's row: gate (2 bits) and unit word (weight_chunks > 0)
    static const unsigned row_word_bits = 1; // bits of the unit word in row_t
    static const unsigned stream_avg = 1; // LOOP_TRIPCOUNT avg of StreamLoop, from the measured sparsity
    static const unsigned stream_max = 1; // (input columns + H) * C: every column streamed
    static const unsigned gate_iters_dense = 1;  // U
    static const unsigned gate_iters_sparse = 1; // max(U, XS)
    static const unsigned layer_id = 0;
    typedef ap_fixed<16, 6> threshold_t; // result type (state mode) or table type (output-gate mode)
    static threshold_t threshold() { return 0; }
};

#ifndef __SYNTHESIS__
// C-simulation only: the cycles this kernel's loops really execute, per layer and step.
struct sparse_lstm_step_record {
    unsigned layer_id;
    unsigned step;
    unsigned nnz_x;  // nonzero entries of x_t
    unsigned nnz_h;  // nonzero entries of h_{t-1}
    unsigned cols_x; // input columns streamed (nnz_x in sparse mode, n_in in dense mode)
    unsigned cols_h; // recurrent columns streamed
    unsigned long cycles;
};
// Per sequence and layer: InitLoop's cycles and the total from start to done.
struct sparse_lstm_sequence_record {
    unsigned layer_id;
    unsigned long init_cycles;
    unsigned long cycles;
};
// Every loop iteration of the kernel, plus the drain depth of each pipelined loop entered.
inline unsigned long &sparse_lstm_cycles() {
    static unsigned long n = 0;
    return n;
}
inline std::vector<sparse_lstm_step_record> &sparse_lstm_trace() {
    static std::vector<sparse_lstm_step_record> records;
    return records;
}
inline std::vector<sparse_lstm_sequence_record> &sparse_lstm_sequence_trace() {
    static std::vector<sparse_lstm_sequence_record> records;
    return records;
}
// C-simulation only: run every sparse_lstm in dense mode (all columns), whatever skip_zeros says.
inline bool &sparse_lstm_force_dense() {
    static bool force = false;
    return force;
}
#endif

// Offset-binary index of a LUT over [-2^r, 2^r): saturate x onto the index grid (AP_TRN = floor),
// then flip the sign bit of the table_bits-wide two's-complement code (index = code + N/2).
template <class index_T, unsigned BITS, class data_T> inline ap_uint<BITS> sparse_lstm_lut_index(data_T x) {
    #pragma HLS INLINE
    index_T q = x;
    ap_uint<BITS> code = q.range(BITS - 1, 0);
    return code ^ (ap_uint<BITS>(1) << (BITS - 1));
}

// The lowest set bit of mask (N if none): a priority encoder, one level of logic per bit in C, a
// log-depth tree after synthesis. It only reads the mask: the caller clears the bit with
// mask & (mask - 1), so the mask's loop-carried recurrence is one subtraction and an AND, not the
// encoder (the RTL twin's picker does the same).
template <unsigned N, class index_T> inline index_T sparse_lstm_first_set(const ap_uint<N> &mask) {
    #pragma HLS INLINE
#ifndef __SYNTHESIS__
    // C-simulation: the same result, found by an early-exit scan (csim speed only)
    for (unsigned b = 0; b < N; b++)
        if (mask[b]) return b;
    return N;
#else
    index_T first = N;
PriorityEncoder:
    for (int b = N - 1; b >= 0; b--) {
        #pragma HLS UNROLL
        if (mask[b]) first = b;
    }
    return first;
#endif
}

// One lane of the x scan: x_t[j]'s nonzero bit into the mask and the column count (j < n_in; nothing
// for token input, whose one column is the token's row).
template <class data_T, typename CONFIG_T>
inline void sparse_lstm_scan_x(data_T *data, unsigned t, unsigned j, ap_uint<CONFIG_T::token_input ? 1 : CONFIG_T::n_in> &x_mask,
                              typename CONFIG_T::count_t &x_count) {
    #pragma HLS INLINE
    if (CONFIG_T::token_input || j >= CONFIG_T::n_in) return;
    const bool nz = data[t * CONFIG_T::n_in + j] != 0;
    x_mask[j] = nz;
    x_count += nz;
}

// The column a stream iteration at chunk 0 starts: the next input column (the lowest set bit of x_mask in
// sparse mode, cleared with m & (m - 1); col in dense mode; the row of token v_t for token input), else
// the next recurrent column (h_mask likewise); its operand value and whether it adds anything (live).
template <class data_T, class res_T, typename CONFIG_T, unsigned X_MASK, unsigned P, unsigned U>
inline void sparse_lstm_next_column(data_T *data, unsigned t, bool skip, typename CONFIG_T::count_t col,
                                    typename CONFIG_T::count_t cols_x, ap_uint<X_MASK> &x_mask,
                                    ap_uint<CONFIG_T::n_state> &h_mask, res_T h_state[P][U], bool &is_x, bool &live,
                                    typename CONFIG_T::col_t &j, typename CONFIG_T::mac_value_t &value) {
    #pragma HLS INLINE
    static const unsigned N_IN = CONFIG_T::n_in;
    static const unsigned H = CONFIG_T::n_state;
    is_x = col < cols_x;
    if (CONFIG_T::token_input && is_x) {
        const unsigned v = data[t].to_uint();
        live = v < N_IN; // an id outside the vocabulary adds no row (the emulator refuses it)
        j = live ? v : 0;
        value = 1;
    } else if (is_x) {
        j = skip ? sparse_lstm_first_set<X_MASK, typename CONFIG_T::col_t>(x_mask) : (typename CONFIG_T::col_t)col;
        if (skip) x_mask &= x_mask - 1; // clears bit j, the lowest set one
        value = data[t * N_IN + j];
        live = true;
    } else {
        j = skip ? sparse_lstm_first_set<H, typename CONFIG_T::col_t>(h_mask) : (typename CONFIG_T::col_t)(col - cols_x);
        if (skip) h_mask &= h_mask - 1; // clears bit j, the lowest set one
        value = h_state[j % P][j / P];
        live = true;
    }
}

template <class data_T, class res_T, typename CONFIG_T>
void sparse_lstm_core(data_T data[CONFIG_T::token_input ? CONFIG_T::n_timesteps : CONFIG_T::n_timesteps * CONFIG_T::n_in],
                 res_T res[CONFIG_T::return_sequences ? CONFIG_T::n_timesteps * CONFIG_T::n_state : CONFIG_T::n_state],
                 typename CONFIG_T::weight_t kernel[CONFIG_T::n_in * 4 * CONFIG_T::n_state],
                 typename CONFIG_T::recurrent_weight_t recurrent_kernel[CONFIG_T::n_state * 4 * CONFIG_T::n_state],
                 typename CONFIG_T::bias_t bias[4 * CONFIG_T::n_state],
                 typename CONFIG_T::table_t sigmoid_table[CONFIG_T::table_size],
                 typename CONFIG_T::table_t tanh_table[CONFIG_T::table_size],
                 // weight_chunks = KE > 0: pair k of column j in lane p at (j * KE + k) * P + p (value and row)
                 typename CONFIG_T::weight_t kernel_pairs[CONFIG_T::weight_chunks ? CONFIG_T::n_in * CONFIG_T::weight_chunks * CONFIG_T::n_lanes : 1],
                 typename CONFIG_T::row_t kernel_rows[CONFIG_T::weight_chunks ? CONFIG_T::n_in * CONFIG_T::weight_chunks * CONFIG_T::n_lanes : 1],
                 typename CONFIG_T::recurrent_weight_t recurrent_pairs[CONFIG_T::weight_chunks ? CONFIG_T::n_state * CONFIG_T::weight_chunks * CONFIG_T::n_lanes : 1],
                 typename CONFIG_T::row_t recurrent_rows[CONFIG_T::weight_chunks ? CONFIG_T::n_state * CONFIG_T::weight_chunks * CONFIG_T::n_lanes : 1]) {
    static const unsigned H = CONFIG_T::n_state;
    static const unsigned P = CONFIG_T::n_lanes;
    static const unsigned N_IN = CONFIG_T::n_in;
    static const unsigned T = CONFIG_T::n_timesteps;
    static const unsigned N_TAB = CONFIG_T::table_size;
    static const unsigned C = 4 * H / P;                              // chunks per column
    static const unsigned KE = CONFIG_T::weight_chunks;               // pairs per column and lane (0: dense weights)
    static const unsigned CK = KE ? KE : C;                           // stream iterations per column
    static const unsigned acc_distance = C; // StreamLoop iterations between two updates of one acc word
    static const unsigned U = H / P;                                  // gate iterations
    static const unsigned XS = CONFIG_T::token_input ? 0 : (N_IN + P - 1) / P; // x-scan iterations
    static const unsigned G_SPARSE = U > XS ? U : XS;
    static const unsigned X_COLS = CONFIG_T::token_input ? 1 : N_IN; // input columns in dense mode
    static const unsigned X_MASK = CONFIG_T::token_input ? 1 : N_IN;
    static_assert(H % P == 0, "n_lanes must divide n_state (pipeline.accelerator.check_lanes)");
    // acc_latency: cycles from reading an accumulator word to its new value being readable, measured in
    // the RTL twin (pipeline.accelerator.ACC_LATENCY); the word comes back C iterations later.
    static_assert(acc_distance >= CONFIG_T::acc_latency, "the accumulator's read-to-write latency must not exceed C = 4H/P");
    #pragma HLS ARRAY_RESHAPE variable=kernel cyclic factor=CONFIG_T::n_lanes
    #pragma HLS ARRAY_RESHAPE variable=recurrent_kernel cyclic factor=CONFIG_T::n_lanes
    #pragma HLS ARRAY_RESHAPE variable=kernel_pairs cyclic factor=CONFIG_T::n_lanes
    #pragma HLS ARRAY_RESHAPE variable=kernel_rows cyclic factor=CONFIG_T::n_lanes
    #pragma HLS ARRAY_RESHAPE variable=recurrent_pairs cyclic factor=CONFIG_T::n_lanes
    #pragma HLS ARRAY_RESHAPE variable=recurrent_rows cyclic factor=CONFIG_T::n_lanes
    static_assert(KE == 0 || (KE >= CONFIG_T::pick_depth && KE <= C),
                  "weight_chunks must be 0 or in [pick_depth, C] (pipeline.accelerator.weight_chunks_for)");
    #pragma HLS ARRAY_PARTITION variable=bias complete

    bool skip = CONFIG_T::skip_zeros;
#ifndef __SYNTHESIS__
    if (sparse_lstm_force_dense()) skip = false;
    const unsigned long cycles_at_start = sparse_lstm_cycles();
#endif
    const unsigned G = skip ? G_SPARSE : U; // a constant after synthesis (skip_zeros)

    // Per-lane copies of the LUTs: each lane reads sigmoid three times (i, f: sig_if's two ports; o:
    // sig_o) and tanh twice (g, tanh(c_t): tanh_l's two ports) per GateLoop iteration. Filled once
    // after reset from the weight tables (not part of any sequence's cycles).
    static typename CONFIG_T::table_t sig_if[P][N_TAB];
    static typename CONFIG_T::table_t sig_o[P][N_TAB];
    static typename CONFIG_T::table_t tanh_l[P][N_TAB];
    #pragma HLS ARRAY_PARTITION variable=sig_if complete dim=1
    #pragma HLS ARRAY_PARTITION variable=sig_o complete dim=1
    #pragma HLS ARRAY_PARTITION variable=tanh_l complete dim=1
    static bool tables_filled = false;
    if (!tables_filled) {
    FillTables:
        for (unsigned i = 0; i < N_TAB; i++) {
            #pragma HLS PIPELINE II=1
        FillLanes:
            for (unsigned lane = 0; lane < P; lane++) {
                #pragma HLS UNROLL
                sig_if[lane][i] = sigmoid_table[i];
                sig_o[lane][i] = sigmoid_table[i];
                tanh_l[lane][i] = tanh_table[i];
            }
        }
        tables_filled = true;
    }

    // acc banked by (gate, lane): one chunk of P words is one gate's P lanes; one gate iteration reads
    // one word of each of the 4P banks. State banked by lane.
    typename CONFIG_T::accum_t acc[4][P][U];
    #pragma HLS ARRAY_PARTITION variable=acc complete dim=1
    #pragma HLS ARRAY_PARTITION variable=acc complete dim=2
    res_T h_state[P][U];
    #pragma HLS ARRAY_PARTITION variable=h_state complete dim=1
    typename CONFIG_T::cell_t c_state[P][U];
    #pragma HLS ARRAY_PARTITION variable=c_state complete dim=1
    ap_uint<H> h_mask = 0;      // nonzero entries of h_{t-1} (a register)
    ap_uint<X_MASK> x_mask = 0; // nonzero entries of x_t (a register)
    typename CONFIG_T::count_t h_count = 0, x_count = 0;

    const typename CONFIG_T::threshold_t threshold = CONFIG_T::threshold();

InitLoop:
    for (typename CONFIG_T::gate_iter_t it = 0; it < G; it++) {
        #pragma HLS PIPELINE II=1
        #pragma HLS LOOP_TRIPCOUNT min=CONFIG_T::gate_iters_dense max=CONFIG_T::gate_iters_sparse
    InitLanes:
        for (unsigned lane = 0; lane < P; lane++) {
            #pragma HLS UNROLL
            if (it < U) {
                unsigned u = it * P + lane;
                for (unsigned g = 0; g < 4; g++) {
                    #pragma HLS UNROLL
                    acc[g][lane][it] = (typename CONFIG_T::accum_t)bias[g * H + u];
                }
                c_state[lane][it] = 0;
                h_state[lane][it] = 0;
                h_mask[u] = false;
            }
            if (skip) sparse_lstm_scan_x<data_T, CONFIG_T>(data, 0, it * P + lane, x_mask, x_count);
        }
#ifndef __SYNTHESIS__
        sparse_lstm_cycles()++;
#endif
    }
#ifndef __SYNTHESIS__
    sparse_lstm_cycles() += CONFIG_T::init_depth; // the x_0 scan's last mask word lands
    const unsigned long init_cycles = sparse_lstm_cycles() - cycles_at_start;
#endif

StepLoop:
    for (unsigned t = 0; t < T; t++) {
#ifndef __SYNTHESIS__
        const unsigned long cycles_before = sparse_lstm_cycles();
        unsigned nnz_x_true = CONFIG_T::token_input ? 1 : 0; // a token is one nonzero (one-hot) input
        for (unsigned j = 0; !CONFIG_T::token_input && j < N_IN; j++)
            nnz_x_true += data[t * N_IN + j] != 0;
        unsigned nnz_h_true = 0;
        for (unsigned j = 0; j < H; j++)
            nnz_h_true += h_state[j % P][j / P] != 0;
#endif
        // 1-2. the column stream: input columns (the nonzero ones in sparse mode, or the folded row of
        // token v_t), then recurrent columns (the nonzero entries of h_{t-1}; all H in dense mode)
        const typename CONFIG_T::count_t cols_x = CONFIG_T::token_input ? X_COLS : (skip ? (unsigned)x_count : N_IN);
        const typename CONFIG_T::count_t cols_h = skip ? (unsigned)h_count : H;
        const typename CONFIG_T::iter_t n_iter = (cols_x + cols_h) * CK;
        typename CONFIG_T::count_t col = 0;
        typename CONFIG_T::chunk_t chunk = 0;
        typename CONFIG_T::col_t j = 0;
        bool is_x = true, live = true;
        typename CONFIG_T::mac_value_t value = 0;
#ifndef __SYNTHESIS__
        if (n_iter > 0) sparse_lstm_cycles() += CONFIG_T::pick_depth; // the picker's fill for the first column
#endif
        if (KE == 0) {
    StreamLoop:
        for (typename CONFIG_T::iter_t i = 0; i < n_iter; i++) {
            #pragma HLS PIPELINE II=1
            #pragma HLS LOOP_TRIPCOUNT min=0 max=CONFIG_T::stream_max avg=CONFIG_T::stream_avg
            // acc[g][lane][a] written by this iteration is read again exactly C iterations later (the same
            // chunk of the next column): the true dependence distance, stated as such, so the scheduler
            // keeps II=1 when its accumulate latency is within C and is correct (a larger II) if not.
            #pragma HLS DEPENDENCE variable=acc inter RAW distance=acc_distance true
            if (chunk == 0)
                sparse_lstm_next_column<data_T, res_T, CONFIG_T, X_MASK, P, U>(data, t, skip, col, cols_x, x_mask, h_mask,
                                                                           h_state, is_x, live, j, value);
            const unsigned ch = chunk, g = ch / U, a = ch % U;
            const unsigned word = (unsigned)j * 4 * H + ch * P; // the column chunk's first weight
        MacLanes:
            for (unsigned lane = 0; lane < P; lane++) {
                #pragma HLS UNROLL
                typename CONFIG_T::mac_weight_t w;
                if (is_x) w = live ? (typename CONFIG_T::mac_weight_t)kernel[word + lane] : (typename CONFIG_T::mac_weight_t)0;
                else w = recurrent_kernel[word + lane];
                acc[g][lane][a] += w * value;
            }
            if (chunk == C - 1) {
                chunk = 0;
                col++;
            } else {
                chunk++;
            }
#ifndef __SYNTHESIS__
            sparse_lstm_cycles()++;
#endif
        }
        } else {
        // Weight-sparse engine: a column is KE iterations; in iteration k lane p adds pair k of its share of
        // column j, value * v_j, into the accumulator word its row names (gate = row >> row_word_bits, unit
        // word = the low bits). Consecutive iterations may add into the same word (the end of one column, the
        // start of the next), so each lane keeps its last acc_latency - 1 results and adds to the newest
        // value of the word (forwarding); the memory read is then free of a loop-carried dependence.
        static const unsigned FWD = CONFIG_T::acc_latency - 1; // results each lane forwards
        typename CONFIG_T::accum_t fwd_value[P][FWD];
        typename CONFIG_T::row_t fwd_row[P][FWD];
        bool fwd_valid[P][FWD];
        #pragma HLS ARRAY_PARTITION variable=fwd_value complete dim=0
        #pragma HLS ARRAY_PARTITION variable=fwd_row complete dim=0
        #pragma HLS ARRAY_PARTITION variable=fwd_valid complete dim=0
        for (unsigned lane = 0; lane < P; lane++) {
            #pragma HLS UNROLL
            for (unsigned d = 0; d < FWD; d++) {
                #pragma HLS UNROLL
                fwd_valid[lane][d] = false;
                fwd_value[lane][d] = 0;
                fwd_row[lane][d] = 0;
            }
        }
    PairLoop:
        for (typename CONFIG_T::iter_t i = 0; i < n_iter; i++) {
            #pragma HLS PIPELINE II=1
            #pragma HLS LOOP_TRIPCOUNT min=0 max=CONFIG_T::stream_max avg=CONFIG_T::stream_avg
            #pragma HLS DEPENDENCE variable=acc inter false
            if (chunk == 0)
                sparse_lstm_next_column<data_T, res_T, CONFIG_T, X_MASK, P, U>(data, t, skip, col, cols_x, x_mask, h_mask,
                                                                           h_state, is_x, live, j, value);
            const unsigned first = ((unsigned)j * KE + (unsigned)chunk) * P; // the pairs of this iteration
        PairLanes:
            for (unsigned lane = 0; lane < P; lane++) {
                #pragma HLS UNROLL
                typename CONFIG_T::mac_weight_t w;
                typename CONFIG_T::row_t row;
                if (is_x) {
                    w = live ? (typename CONFIG_T::mac_weight_t)kernel_pairs[first + lane] : (typename CONFIG_T::mac_weight_t)0;
                    row = kernel_rows[first + lane];
                } else {
                    w = recurrent_pairs[first + lane];
                    row = recurrent_rows[first + lane];
                }
                const unsigned g = row >> CONFIG_T::row_word_bits;
                const unsigned a = row & ((1u << CONFIG_T::row_word_bits) - 1);
                typename CONFIG_T::accum_t old = acc[g][lane][a];
                for (unsigned e = 0; e < FWD; e++) {
                    #pragma HLS UNROLL
                    const unsigned d = FWD - 1 - e; // oldest first: the newest (d = 0) wins
                    if (fwd_valid[lane][d] && fwd_row[lane][d] == row) old = fwd_value[lane][d];
                }
                typename CONFIG_T::accum_t sum = old;
                sum += w * value; // the cast of `acc += w * v`
                acc[g][lane][a] = sum;
                for (unsigned e = 1; e < FWD; e++) {
                    #pragma HLS UNROLL
                    const unsigned d = FWD - e; // shift: d <- d - 1, the oldest first
                    fwd_valid[lane][d] = fwd_valid[lane][d - 1];
                    fwd_value[lane][d] = fwd_value[lane][d - 1];
                    fwd_row[lane][d] = fwd_row[lane][d - 1];
                }
                fwd_valid[lane][0] = true;
                fwd_value[lane][0] = sum;
                fwd_row[lane][0] = row;
            }
            if (chunk == KE - 1) {
                chunk = 0;
                col++;
            } else {
                chunk++;
            }
#ifndef __SYNTHESIS__
            sparse_lstm_cycles()++;
#endif
        }
        }
#ifndef __SYNTHESIS__
        if (n_iter > 0) sparse_lstm_cycles() += CONFIG_T::mac_depth;
#endif

        // 3. gates, cell, output, pruning, h_t's nonzero mask; the scan of x_{t+1}
        const bool prune_now = CONFIG_T::prune_last || t + 1 < T;
        h_count = 0;
        x_count = 0;
    GateLoop:
        for (typename CONFIG_T::gate_iter_t it = 0; it < G; it++) {
            #pragma HLS PIPELINE II=1
            #pragma HLS LOOP_TRIPCOUNT min=CONFIG_T::gate_iters_dense max=CONFIG_T::gate_iters_sparse
        GateLanes:
            for (unsigned lane = 0; lane < P; lane++) {
                #pragma HLS UNROLL
                if (it < U) {
                    const unsigned u = it * P + lane;
                    typename CONFIG_T::table_t gi = sig_if[lane][sparse_lstm_lut_index<typename CONFIG_T::sigmoid_index_t, CONFIG_T::table_bits>(acc[0][lane][it])];
                    typename CONFIG_T::table_t gf = sig_if[lane][sparse_lstm_lut_index<typename CONFIG_T::sigmoid_index_t, CONFIG_T::table_bits>(acc[1][lane][it])];
                    typename CONFIG_T::table_t gg = tanh_l[lane][sparse_lstm_lut_index<typename CONFIG_T::tanh_index_t, CONFIG_T::table_bits>(acc[2][lane][it])];
                    typename CONFIG_T::table_t go = sig_o[lane][sparse_lstm_lut_index<typename CONFIG_T::sigmoid_index_t, CONFIG_T::table_bits>(acc[3][lane][it])];
                    for (unsigned g = 0; g < 4; g++) {
                        #pragma HLS UNROLL
                        acc[g][lane][it] = (typename CONFIG_T::accum_t)bias[g * H + u]; // the next step's start
                    }
                    if (CONFIG_T::prune_output_gate && prune_now && !(go > threshold)) go = 0;
                    typename CONFIG_T::cell_t c = gf * c_state[lane][it] + gi * gg;
                    c_state[lane][it] = c;
                    typename CONFIG_T::table_t tc = tanh_l[lane][sparse_lstm_lut_index<typename CONFIG_T::tanh_index_t, CONFIG_T::table_bits>(c)];
                    res_T hu = go * tc;
                    if (!CONFIG_T::prune_output_gate && prune_now && !(hu > threshold || hu < -threshold)) hu = 0;
                    h_state[lane][it] = hu;
                    const bool nz = hu != 0;
                    h_mask[u] = nz;
                    h_count += nz;
                    if (CONFIG_T::return_sequences) res[t * H + u] = hu;
                    else if (t + 1 == T) res[u] = hu;
                }
                if (skip && t + 1 < T) sparse_lstm_scan_x<data_T, CONFIG_T>(data, t + 1, it * P + lane, x_mask, x_count);
            }
#ifndef __SYNTHESIS__
            sparse_lstm_cycles()++;
#endif
        }
#ifndef __SYNTHESIS__
        sparse_lstm_cycles() += CONFIG_T::gate_depth;
        {
            sparse_lstm_step_record rec = {CONFIG_T::layer_id, t, nnz_x_true, nnz_h_true, (unsigned)cols_x,
                                           (unsigned)cols_h, sparse_lstm_cycles() - cycles_before};
            sparse_lstm_trace().push_back(rec);
        }
#endif
    }
#ifndef __SYNTHESIS__
    sparse_lstm_sequence_record seq = {CONFIG_T::layer_id, init_cycles, sparse_lstm_cycles() - cycles_at_start};
    sparse_lstm_sequence_trace().push_back(seq);
#endif
}

// The generated call of a weight-sparse layer (weight_chunks = KE > 0): the dense weights (unused: C-simulation
// reads only the pairs; synthesis drops them) and the four pair arrays.
template <class data_T, class res_T, typename CONFIG_T>
void sparse_lstm(data_T data[CONFIG_T::token_input ? CONFIG_T::n_timesteps : CONFIG_T::n_timesteps * CONFIG_T::n_in],
                 res_T res[CONFIG_T::return_sequences ? CONFIG_T::n_timesteps * CONFIG_T::n_state : CONFIG_T::n_state],
                 typename CONFIG_T::weight_t kernel[CONFIG_T::n_in * 4 * CONFIG_T::n_state],
                 typename CONFIG_T::recurrent_weight_t recurrent_kernel[CONFIG_T::n_state * 4 * CONFIG_T::n_state],
                 typename CONFIG_T::bias_t bias[4 * CONFIG_T::n_state],
                 typename CONFIG_T::table_t sigmoid_table[CONFIG_T::table_size],
                 typename CONFIG_T::table_t tanh_table[CONFIG_T::table_size],
                 typename CONFIG_T::weight_t kernel_pairs[CONFIG_T::n_in * CONFIG_T::weight_chunks * CONFIG_T::n_lanes],
                 typename CONFIG_T::row_t kernel_rows[CONFIG_T::n_in * CONFIG_T::weight_chunks * CONFIG_T::n_lanes],
                 typename CONFIG_T::recurrent_weight_t recurrent_pairs[CONFIG_T::n_state * CONFIG_T::weight_chunks * CONFIG_T::n_lanes],
                 typename CONFIG_T::row_t recurrent_rows[CONFIG_T::n_state * CONFIG_T::weight_chunks * CONFIG_T::n_lanes]) {
    #pragma HLS INLINE
    static_assert(CONFIG_T::weight_chunks > 0, "pair arrays belong to a weight-sparse layer (weight_chunks > 0)");
    sparse_lstm_core<data_T, res_T, CONFIG_T>(data, res, kernel, recurrent_kernel, bias, sigmoid_table, tanh_table, kernel_pairs,
                                              kernel_rows, recurrent_pairs, recurrent_rows);
}

// The dense-weight engine's call (weight_chunks = 0, the generated call of such a layer): no pair arrays.
template <class data_T, class res_T, typename CONFIG_T>
void sparse_lstm(data_T data[CONFIG_T::token_input ? CONFIG_T::n_timesteps : CONFIG_T::n_timesteps * CONFIG_T::n_in],
                 res_T res[CONFIG_T::return_sequences ? CONFIG_T::n_timesteps * CONFIG_T::n_state : CONFIG_T::n_state],
                 typename CONFIG_T::weight_t kernel[CONFIG_T::n_in * 4 * CONFIG_T::n_state],
                 typename CONFIG_T::recurrent_weight_t recurrent_kernel[CONFIG_T::n_state * 4 * CONFIG_T::n_state],
                 typename CONFIG_T::bias_t bias[4 * CONFIG_T::n_state],
                 typename CONFIG_T::table_t sigmoid_table[CONFIG_T::table_size],
                 typename CONFIG_T::table_t tanh_table[CONFIG_T::table_size]) {
    #pragma HLS INLINE
    static_assert(CONFIG_T::weight_chunks == 0, "a weight-sparse layer (weight_chunks > 0) passes its pair arrays");
    typename CONFIG_T::weight_t no_kernel_pairs[1] = {0};
    typename CONFIG_T::row_t no_kernel_rows[1] = {0};
    typename CONFIG_T::recurrent_weight_t no_recurrent_pairs[1] = {0};
    typename CONFIG_T::row_t no_recurrent_rows[1] = {0};
    sparse_lstm_core<data_T, res_T, CONFIG_T>(data, res, kernel, recurrent_kernel, bias, sigmoid_table, tanh_table,
                                              no_kernel_pairs, no_kernel_rows, no_recurrent_pairs, no_recurrent_rows);
}

} // namespace nnet

#endif

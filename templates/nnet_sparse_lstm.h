// SkipLSTM: sparse-state LSTM kernel (hls4ml style, Vivado/Vitis HLS backend).
//
// Per time step t (DESIGN.md section 3, cycle model in pipeline/accelerator.py):
//   1. acc[0:4H] = bias; for each input column j with x_t[j] != 0 (all j in dense mode):
//        acc += W_x[j][0:4H] * x_t[j]              (one column = ceil(4H/P) cycles on P lanes)
//   2. for each j in the nonzero-index list of h_{t-1} (all j in dense mode):
//        acc += W_h[j][0:4H] * h_{t-1}[j]
//   3. gates: i,f,o = sigmoid LUT, g = tanh LUT; c_t = f*c + i*g; h_t = o*tanh(c_t);
//      prune (|h_t| > tau, or o > tau before the product; at the last step only if prune_last);
//      build the nonzero-index list of h_t.
// Adding 0*w is exact in fixed point, so sparse and dense modes give bit-identical outputs.
// token_input (an Embedding folded in by pipeline/hls/fold.py): data holds one token id v_t per step
// and step 1 is one row acc += kernel[v_t][0:4H] (F[v] = E[v] * W_x, exact), in both modes.
//
// Weights are stored column-major (one column of 4H words per input/state index: the row-major
// layout of the Keras kernel [n_in][4H]). LUTs are generated in Python (pipeline/hls) and written as
// weights, so the emulator and this kernel index the very same tables.
#ifndef NNET_SPARSE_LSTM_H_
#define NNET_SPARSE_LSTM_H_

#include "ap_fixed.h"
#include "nnet_common.h"

#ifndef __SYNTHESIS__
#include <string>
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
    static const unsigned mac_depth = 4;
    static const unsigned gate_depth = 8;
    static const unsigned layer_id = 0;
    typedef ap_fixed<16, 6> threshold_t; // result type (state mode) or table type (output-gate mode)
    static threshold_t threshold() { return 0; }
};

#ifndef __SYNTHESIS__
// C-simulation only: the loop iterations this kernel really executes, per layer and step.
struct sparse_lstm_step_record {
    unsigned layer_id;
    unsigned step;
    unsigned nnz_x;  // nonzero entries of x_t
    unsigned nnz_h;  // nonzero entries of h_{t-1}
    unsigned cols_x; // input columns streamed (nnz_x in sparse mode, n_in in dense mode)
    unsigned cols_h; // recurrent columns streamed
    unsigned long cycles;
};
// Iterations of the pipelined loops (ChunkLoop, GateLoop), incremented as they execute.
inline unsigned long &sparse_lstm_iterations() {
    static unsigned long n = 0;
    return n;
}
inline std::vector<sparse_lstm_step_record> &sparse_lstm_trace() {
    static std::vector<sparse_lstm_step_record> records;
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
template <class index_T, unsigned BITS, class data_T> inline unsigned sparse_lstm_lut_index(data_T x) {
    #pragma HLS INLINE
    index_T q = x;
    ap_uint<BITS> code = q.range(BITS - 1, 0);
    return (unsigned)(code ^ (ap_uint<BITS>(1) << (BITS - 1)));
}

// acc[0:4H] += column[0:4H] * value (MULTIPLY) or += column[0:4H] (a folded embedding row: additions
// only), P lanes per cycle: ceil(4H/P) pipelined iterations.
template <bool MULTIPLY, class data_T, class weight_T, typename CONFIG_T>
void sparse_lstm_stream_column(typename CONFIG_T::accum_t acc[4 * CONFIG_T::n_state], data_T value,
                               const weight_T *column) {
    #pragma HLS INLINE
    static const unsigned n_gates = 4 * CONFIG_T::n_state;
    static const unsigned n_chunks = (n_gates + CONFIG_T::n_lanes - 1) / CONFIG_T::n_lanes;
ChunkLoop:
    for (unsigned chunk = 0; chunk < n_chunks; chunk++) {
        #pragma HLS PIPELINE II=1
    LaneLoop:
        for (unsigned lane = 0; lane < CONFIG_T::n_lanes; lane++) {
            #pragma HLS UNROLL
            unsigned k = chunk * CONFIG_T::n_lanes + lane;
            if (k < n_gates) {
                if (MULTIPLY) {
                    acc[k] += column[k] * value;
                } else {
                    acc[k] += column[k];
                }
            }
        }
#ifndef __SYNTHESIS__
        sparse_lstm_iterations()++;
#endif
    }
}

template <class data_T, class res_T, typename CONFIG_T>
void sparse_lstm(data_T data[CONFIG_T::token_input ? CONFIG_T::n_timesteps : CONFIG_T::n_timesteps * CONFIG_T::n_in],
                 res_T res[CONFIG_T::return_sequences ? CONFIG_T::n_timesteps * CONFIG_T::n_state : CONFIG_T::n_state],
                 typename CONFIG_T::weight_t kernel[CONFIG_T::n_in * 4 * CONFIG_T::n_state],
                 typename CONFIG_T::recurrent_weight_t recurrent_kernel[CONFIG_T::n_state * 4 * CONFIG_T::n_state],
                 typename CONFIG_T::bias_t bias[4 * CONFIG_T::n_state],
                 typename CONFIG_T::table_t sigmoid_table[CONFIG_T::table_size],
                 typename CONFIG_T::table_t tanh_table[CONFIG_T::table_size]) {
    static const unsigned H = CONFIG_T::n_state;
    static const unsigned n_gates = 4 * H;
    static const unsigned n_gate_chunks = (H + CONFIG_T::n_lanes - 1) / CONFIG_T::n_lanes;
    #pragma HLS ARRAY_PARTITION variable=bias cyclic factor=CONFIG_T::n_lanes
    #pragma HLS ARRAY_RESHAPE variable=kernel cyclic factor=CONFIG_T::n_lanes
    #pragma HLS ARRAY_RESHAPE variable=recurrent_kernel cyclic factor=CONFIG_T::n_lanes

    bool skip = CONFIG_T::skip_zeros;
#ifndef __SYNTHESIS__
    if (sparse_lstm_force_dense()) skip = false;
#endif

    res_T h_state[H];
    typename CONFIG_T::cell_t c_state[H];
    unsigned h_index[H]; // nonzero entries of h_{t-1}, ascending
    unsigned x_index[CONFIG_T::token_input ? 1 : CONFIG_T::n_in];
    typename CONFIG_T::accum_t acc[n_gates];
    #pragma HLS ARRAY_PARTITION variable=acc cyclic factor=CONFIG_T::n_lanes
    #pragma HLS ARRAY_PARTITION variable=h_state cyclic factor=CONFIG_T::n_lanes
    #pragma HLS ARRAY_PARTITION variable=c_state cyclic factor=CONFIG_T::n_lanes
    unsigned h_nnz = 0;

    const typename CONFIG_T::threshold_t threshold = CONFIG_T::threshold();

InitState:
    for (unsigned u = 0; u < H; u++) {
        #pragma HLS UNROLL
        h_state[u] = 0;
        c_state[u] = 0;
    }

StepLoop:
    for (unsigned t = 0; t < CONFIG_T::n_timesteps; t++) {
#ifndef __SYNTHESIS__
        const unsigned long iterations_before = sparse_lstm_iterations();
        unsigned nnz_x_true = CONFIG_T::token_input ? 1 : 0; // a token is one nonzero (one-hot) input
        for (unsigned j = 0; !CONFIG_T::token_input && j < CONFIG_T::n_in; j++)
            nnz_x_true += data[t * CONFIG_T::n_in + j] != 0;
#endif
    InitAcc:
        for (unsigned k = 0; k < n_gates; k++) {
            #pragma HLS UNROLL
            acc[k] = (typename CONFIG_T::accum_t)bias[k];
        }

        // 1. input columns (the nonzero ones in sparse mode), or the folded row of token v_t
        unsigned x_nnz = 0;
        if (CONFIG_T::token_input) {
            unsigned v = data[t].to_uint();
            if (v < CONFIG_T::n_in) { // an id outside the vocabulary adds no row (the emulator refuses it)
                sparse_lstm_stream_column<false, unsigned, typename CONFIG_T::weight_t, CONFIG_T>(acc, 1u, &kernel[v * n_gates]);
            }
            x_nnz = 1;
        } else {
        ScanInput:
            for (unsigned j = 0; j < CONFIG_T::n_in; j++) {
                #pragma HLS PIPELINE II=1
                if (!skip || data[t * CONFIG_T::n_in + j] != 0) x_index[x_nnz++] = j;
            }
        InputColumns:
            for (unsigned jj = 0; jj < x_nnz; jj++) {
                unsigned j = x_index[jj];
                sparse_lstm_stream_column<true, data_T, typename CONFIG_T::weight_t, CONFIG_T>(
                    acc, data[t * CONFIG_T::n_in + j], &kernel[j * n_gates]);
            }
        }

        // 2. recurrent columns: the nonzero-index list of h_{t-1} (all H in dense mode)
        unsigned h_cols = skip ? h_nnz : H;
    RecurrentColumns:
        for (unsigned jj = 0; jj < h_cols; jj++) {
            unsigned j = skip ? h_index[jj] : jj;
            sparse_lstm_stream_column<true, res_T, typename CONFIG_T::recurrent_weight_t, CONFIG_T>(
                acc, h_state[j], &recurrent_kernel[j * n_gates]);
        }

        // 3. gates, cell, output, pruning and the nonzero-index list of h_t
        unsigned new_nnz = 0;
        const bool prune_now = CONFIG_T::prune_last || t + 1 < CONFIG_T::n_timesteps;
    GateLoop:
        for (unsigned chunk = 0; chunk < n_gate_chunks; chunk++) {
            #pragma HLS PIPELINE II=1
        GateLanes:
            for (unsigned lane = 0; lane < CONFIG_T::n_lanes; lane++) {
                #pragma HLS UNROLL
                unsigned u = chunk * CONFIG_T::n_lanes + lane;
                if (u < H) {
                    typename CONFIG_T::table_t gi = sigmoid_table[sparse_lstm_lut_index<typename CONFIG_T::sigmoid_index_t,
                                                                                       CONFIG_T::table_bits>(acc[u])];
                    typename CONFIG_T::table_t gf = sigmoid_table[sparse_lstm_lut_index<typename CONFIG_T::sigmoid_index_t,
                                                                                       CONFIG_T::table_bits>(acc[H + u])];
                    typename CONFIG_T::table_t gg = tanh_table[sparse_lstm_lut_index<typename CONFIG_T::tanh_index_t,
                                                                                    CONFIG_T::table_bits>(acc[2 * H + u])];
                    typename CONFIG_T::table_t go = sigmoid_table[sparse_lstm_lut_index<typename CONFIG_T::sigmoid_index_t,
                                                                                       CONFIG_T::table_bits>(acc[3 * H + u])];
                    if (CONFIG_T::prune_output_gate && prune_now && !(go > threshold)) go = 0;
                    c_state[u] = gf * c_state[u] + gi * gg;
                    typename CONFIG_T::table_t tc = tanh_table[sparse_lstm_lut_index<typename CONFIG_T::tanh_index_t,
                                                                                    CONFIG_T::table_bits>(c_state[u])];
                    res_T hu = go * tc;
                    if (!CONFIG_T::prune_output_gate && prune_now && !(hu > threshold || hu < -threshold)) hu = 0;
                    h_state[u] = hu;
                }
            }
#ifndef __SYNTHESIS__
            sparse_lstm_iterations()++;
#endif
        }
    IndexList:
        for (unsigned u = 0; u < H; u++) {
            #pragma HLS PIPELINE II=1
            if (h_state[u] != 0) h_index[new_nnz++] = u;
        }
#ifndef __SYNTHESIS__
        {
            // The pipelined-loop iterations this step executed, plus the two pipeline fill depths:
            // counted here, predicted by pipeline/accelerator.py, compared by the tests.
            unsigned long cycles = sparse_lstm_iterations() - iterations_before + CONFIG_T::mac_depth + CONFIG_T::gate_depth;
            sparse_lstm_step_record rec = {CONFIG_T::layer_id, t, nnz_x_true, h_nnz, x_nnz, h_cols, cycles};
            sparse_lstm_trace().push_back(rec);
        }
#endif
        h_nnz = new_nnz;
        if (CONFIG_T::return_sequences) {
        WriteSequence:
            for (unsigned u = 0; u < H; u++) {
                #pragma HLS UNROLL
                res[t * H + u] = h_state[u];
            }
        }
    }
    if (!CONFIG_T::return_sequences) {
    WriteLast:
        for (unsigned u = 0; u < H; u++) {
            #pragma HLS UNROLL
            res[u] = h_state[u];
        }
    }
}

} // namespace nnet

#endif

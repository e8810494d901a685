// SIMD-group sparse convolution and matrix product (the ALCS pattern), fp32, one thread.
//
// A weight is pruned in groups of L consecutive output channels that share one input position
// (input channel, kernel row, kernel column): the L weights a vector multiply-add uses together.
// The compressed layer keeps, for every block of L output channels, the list of its nonzero
// groups: `block_start[b] .. block_start[b + 1]` index `offsets` (where in the input the group's
// value lives) and `values` (the group's L weights, zero-padded past the last output channel).
//
// Convolution: the input is zero-padded and split into stride phases (pack_planes), so that for
// every stride and dilation output pixel q = oh * Ws + ow of a tap reads plane[offset + q]; a tap
// is one contiguous run of the packed input. A stride-1 layer on a batch lays the images side by
// side instead (pack_side_by_side): small images then waste little on padding columns. A tile is
// one hardware vector of 16 (AVX-512) or 8 (AVX2) consecutive output pixels times the block's L
// channels, all kept in registers: per nonzero group it loads one input vector and multiplies it
// by each of the L weights, broadcast straight from memory. Padding columns (ow >= OW) of the
// computed rows are thrown away.
//
// Matrix product (linear, matmul): a tile is P rows of the input times L output channels; the
// tile's rows are transposed once so that each group reads P consecutive values, and every
// accumulator is one L-wide vector of output channels, stored straight into the output row.
//
// The Python side (compiler/sparse/runtime.py) builds the compressed layer once and passes the
// geometry; these functions only compute. They return 0, or a nonzero code for a bad argument.

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

#if defined(__AVX512F__)
constexpr int kVectorFloats = 16;
constexpr int kRegisters = 32;
#elif defined(__AVX__)
constexpr int kVectorFloats = 8;
constexpr int kRegisters = 16;
#else
constexpr int kVectorFloats = 4;
constexpr int kRegisters = 16;
#endif

// aligned(4): loads and stores at any float address (the compiler emits unaligned moves)
template <int N>
struct Floats {
    typedef float type __attribute__((vector_size(N * sizeof(float)), aligned(sizeof(float))));
};
using HwVector = Floats<kVectorFloats>::type;

// Input vectors of consecutive pixels per convolution tile: the L x PV accumulators take at most
// half of the vector registers, the rest hold inputs and addresses.
template <int L>
constexpr int conv_pixel_vectors() {
    return L >= kRegisters / 2 ? 1 : (kRegisters / 2) / L;
}

// Rows per matrix-product tile: accumulators fill three quarters of the registers, at most 16.
template <int L>
constexpr int matmul_tile_rows() {
    constexpr int registers_per_vector = (L + kVectorFloats - 1) / kVectorFloats;
    constexpr int rows = kRegisters * 3 / 4 / registers_per_vector;
    return rows > 16 ? 16 : rows;
}

// Input floats of one cache chunk of a convolution: the pixels of a chunk are computed for every
// block of output channels while the chunk's input stays in the L2 cache.
constexpr int64_t kChunkInputFloats = 128 * 1024;
constexpr int kPrefetchFloats = 64;  // how far ahead of the tile the input is prefetched

// One convolution tile: T = PV * kVectorFloats pixels x L output channels.
template <int L, int PV>
inline void conv_tile(const float* in, const int32_t* offsets, const float* values, int count,
                      const float* bias, int channels, float* out, int64_t channel_stride, int pixels) {
    constexpr int T = PV * kVectorFloats;
    HwVector acc[L][PV];
    for (int c = 0; c < L; ++c)
        for (int v = 0; v < PV; ++v) acc[c][v] = HwVector{} + bias[c];
    for (int g = 0; g < count; ++g) {
        const float* src = in + offsets[g];
        __builtin_prefetch(src + kPrefetchFloats);
        HwVector x[PV];
        for (int v = 0; v < PV; ++v) x[v] = *reinterpret_cast<const HwVector*>(src + v * kVectorFloats);
        const float* w = values + static_cast<int64_t>(g) * L;
#pragma GCC unroll 16
        for (int c = 0; c < L; ++c)
#pragma GCC unroll 8
            for (int v = 0; v < PV; ++v) acc[c][v] += x[v] * w[c];  // w[c] broadcast from memory
    }
    if (pixels == T) {  // every tile but the only one of an image smaller than a tile
        for (int c = 0; c < channels; ++c)
            for (int v = 0; v < PV; ++v)
                *reinterpret_cast<HwVector*>(out + c * channel_stride + v * kVectorFloats) = acc[c][v];
        return;
    }
    for (int c = 0; c < channels; ++c) {  // keep the valid pixels
        float row[T];
        std::memcpy(row, acc[c], sizeof(row));
        std::memcpy(out + c * channel_stride, row, pixels * sizeof(float));
    }
}

// Zero-pad one image [C][H][W] and split it into stride phases [C][sh][sw][Hs][Ws]:
// phase (a, b) holds padded rows a, a + sh, ... and padded columns b, b + sw, ... Phases no tap
// reads (bit a * sw + b of `phases` clear: a strided 1x1 conv reads one) are left unwritten.
void pack_planes(const float* x, int64_t C, int64_t H, int64_t W, int64_t sh, int64_t sw, int64_t ph,
                 int64_t pw, int64_t Hs, int64_t Ws, int64_t phases, float* planes) {
    for (int64_t c = 0; c < C; ++c)
        for (int64_t a = 0; a < sh; ++a)
            for (int64_t b = 0; b < sw; ++b) {
                if (!((phases >> (a * sw + b)) & 1)) continue;
                float* dst = planes + ((c * sh + a) * sw + b) * Hs * Ws;
                // columns j whose source column j * sw + b - pw lies inside the image
                const int64_t lo = std::min(Ws, std::max<int64_t>(0, (pw - b + sw - 1) / sw));
                const int64_t hi = std::max(lo, std::min(Ws, (W + pw - b + sw - 1) / sw));
                for (int64_t i = 0; i < Hs; ++i, dst += Ws) {
                    const int64_t h = i * sh + a - ph;
                    if (h < 0 || h >= H) {
                        std::fill(dst, dst + Ws, 0.0f);
                        continue;
                    }
                    const float* row = x + (c * H + h) * W + (lo * sw + b - pw);
                    std::fill(dst, dst + lo, 0.0f);
                    if (sw == 1) {
                        std::memcpy(dst + lo, row, (hi - lo) * sizeof(float));
                    } else {
                        for (int64_t j = lo; j < hi; ++j) dst[j] = row[(j - lo) * sw];
                    }
                    std::fill(dst + hi, dst + Ws, 0.0f);
                }
            }
}

struct ConvShape {
    int64_t N, C, H, W, O, OH, OW, sh, sw, ph, pw, groups, Hs, Ws, phases, stacked;
};

// Zero-pad a batch of images [N][C][H][W] for a stride-1 conv and lay them side by side,
// [C][H + 2ph][N * (W + pw) + pw]: neighbours share the pw zero columns between them, so on small
// images the computed rows hold far fewer padding columns than one plane per image would.
void pack_side_by_side(const float* x, const ConvShape& s, float* planes) {
    const int64_t slot = s.W + s.pw;
    std::fill(planes, planes + s.C * s.Hs * s.Ws, 0.0f);
    for (int64_t n = 0; n < s.N; ++n)
        for (int64_t c = 0; c < s.C; ++c)
            for (int64_t h = 0; h < s.H; ++h)
                std::memcpy(planes + (c * s.Hs + h + s.ph) * s.Ws + n * slot + s.pw,
                            x + ((n * s.C + c) * s.H + h) * s.W, s.W * sizeof(float));
}

template <int L>
int conv2d(const float* x, float* y, const ConvShape& s, const int32_t* block_start,
           const int32_t* offsets, const float* values, const float* bias) {
    constexpr int PV = conv_pixel_vectors<L>();
    constexpr int T = PV * kVectorFloats;
    const int64_t Cg = s.C / s.groups, Og = s.O / s.groups;
    const int64_t blocks = (Og + L - 1) / L;
    const int64_t group_floats = Cg * s.sh * s.sw * s.Hs * s.Ws;
    const int64_t rows = s.OH * s.Ws;  // computed pixels per channel, padding columns included
    const int64_t tiles = (rows + T - 1) / T;
    // A 1x1-like layer (unit stride, no padding) reads the input as it is; its last tile is moved
    // back to end at the last pixel (recomputing a few), so no read leaves the image. Any other
    // layer packs the input, with slack for the reads of the last tile and the padding columns.
    const bool packed = s.stacked || s.sh != 1 || s.sw != 1 || s.ph || s.pw || s.Hs != s.H || s.Ws != s.W ||
                        rows < T;
    static thread_local std::vector<float> planes, wide;
    if (packed) {
        const int64_t used = s.groups * group_floats;
        planes.resize(used + s.Ws + 2 * T + kPrefetchFloats);
        std::fill(planes.begin() + used, planes.end(), 0.0f);
    }
    const bool direct = s.Ws == s.OW;  // no padding columns: write straight into y
    if (!direct) wide.resize(s.O * rows);
    const int64_t chunk_tiles = std::max<int64_t>(1, kChunkInputFloats / std::max<int64_t>(1, Cg) / T);

    for (int64_t n = 0; n < (s.stacked ? 1 : s.N); ++n) {  // side by side: the whole batch at once
        const float* image = x + n * s.C * s.H * s.W;
        if (s.stacked) {
            pack_side_by_side(x, s, planes.data());
        } else if (packed) {
            pack_planes(image, s.C, s.H, s.W, s.sh, s.sw, s.ph, s.pw, s.Hs, s.Ws, s.phases, planes.data());
        }
        const float* input = packed ? planes.data() : image;
        float* out = direct ? y + n * s.O * rows : wide.data();
        for (int64_t g = 0; g < s.groups; ++g) {
            const float* in = input + g * group_floats;
            for (int64_t t0 = 0; t0 < tiles; t0 += chunk_tiles)
                for (int64_t b = 0; b < blocks; ++b) {
                    const int64_t blk = g * blocks + b, c0 = g * Og + b * L;
                    const int channels = static_cast<int>(std::min<int64_t>(L, Og - b * L));
                    const int32_t first = block_start[blk], count = block_start[blk + 1] - first;
                    for (int64_t t = t0; t < std::min(tiles, t0 + chunk_tiles); ++t) {
                        const int64_t q = rows < T ? 0 : std::min(t * T, rows - T);
                        const int pixels = static_cast<int>(std::min<int64_t>(T, rows));
                        conv_tile<L, PV>(in + q, offsets + first, values + static_cast<int64_t>(first) * L, count,
                                         bias + blk * L, channels, out + c0 * rows + q, rows, pixels);
                    }
                }
        }
        if (direct) continue;
        // drop the padding columns: [O][OH][Ws] -> [O][OH][OW], image by image when side by side
        const int64_t images = s.stacked ? s.N : 1, slot = s.stacked ? s.W + s.pw : 0;
        for (int64_t m = 0; m < images; ++m) {
            float* dst = y + (n + m) * s.O * s.OH * s.OW;
            for (int64_t r = 0; r < s.O * s.OH; ++r)
                std::memcpy(dst + r * s.OW, out + r * s.Ws + m * slot, s.OW * sizeof(float));
        }
    }
    return 0;
}

// One matrix-product tile: P rows x L output channels; `xt` holds the tile's input transposed,
// [K][P], so group g reads the P values xt[offsets[g] * P ...].
template <int L, int P>
inline void matmul_tile(const float* xt, const int32_t* offsets, const float* values, int count,
                        const float* bias, int channels, float* y, int64_t row_stride) {
    using Vec = typename Floats<L>::type;
    Vec acc[P];
    const Vec b = *reinterpret_cast<const Vec*>(bias);
    for (int p = 0; p < P; ++p) acc[p] = b;
    for (int g = 0; g < count; ++g) {
        const Vec w = *reinterpret_cast<const Vec*>(values + static_cast<int64_t>(g) * L);
        const float* src = xt + static_cast<int64_t>(offsets[g]) * P;
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) acc[p] += w * src[p];  // src[p] broadcast from memory
    }
    for (int p = 0; p < P; ++p) {
        if (channels == L) {
            *reinterpret_cast<Vec*>(y + p * row_stride) = acc[p];
        } else {  // the last block of a layer whose outputs are not a multiple of L
            float lanes[L];
            std::memcpy(lanes, &acc[p], sizeof(lanes));
            std::memcpy(y + p * row_stride, lanes, channels * sizeof(float));
        }
    }
}

struct MatmulLayer {
    int64_t K, N;
    const int32_t *block_start, *offsets;
    const float *values, *bias;
};

// Rows m0, m0 + P, ... of y while P of them remain; returns the first row left over.
template <int L, int P>
int64_t matmul_rows(const float* x, float* y, int64_t m0, int64_t M, const MatmulLayer& w) {
    static thread_local std::vector<float> xt;
    xt.resize(w.K * P);
    const int64_t blocks = (w.N + L - 1) / L;
    for (; m0 + P <= M; m0 += P) {
        for (int64_t k = 0; k < w.K; ++k)  // transpose the tile's rows
            for (int p = 0; p < P; ++p) xt[k * P + p] = x[(m0 + p) * w.K + k];
        for (int64_t b = 0; b < blocks; ++b) {
            const int channels = static_cast<int>(std::min<int64_t>(L, w.N - b * L));
            const int32_t first = w.block_start[b], count = w.block_start[b + 1] - first;
            matmul_tile<L, P>(xt.data(), w.offsets + first, w.values + static_cast<int64_t>(first) * L, count,
                              w.bias + b * L, channels, y + m0 * w.N + b * L, w.N);
        }
    }
    return m0;
}

template <int L>
int matmul(const float* x, float* y, int64_t M, const MatmulLayer& w) {
    int64_t m = matmul_rows<L, matmul_tile_rows<L>()>(x, y, 0, M, w);
    m = matmul_rows<L, 4>(x, y, m, M, w);  // few rows left (a batch of one): narrower tiles
    matmul_rows<L, 1>(x, y, m, M, w);
    return 0;
}

}  // namespace

extern "C" {

// Vector lanes the kernel was compiled for (16: AVX-512, 8: AVX/AVX2, 4: SSE).
int nnf_vector_floats() { return kVectorFloats; }

// y[N][O][OH][OW] = conv2d(x[N][C][H][W]); `shape` is N, C, H, W, O, OH, OW, stride h/w,
// padding h/w, groups, the phase-plane size Hs, Ws the offsets were computed for, the bit mask
// of the stride phases some tap reads, and 1 when the batch is laid side by side (stride 1).
int nnf_sparse_conv2d(const float* x, float* y, const int64_t* shape, int lanes, const int32_t* block_start,
                      const int32_t* offsets, const float* values, const float* bias) {
    const ConvShape s{shape[0], shape[1], shape[2],  shape[3],  shape[4],  shape[5],  shape[6],  shape[7],
                      shape[8], shape[9], shape[10], shape[11], shape[12], shape[13], shape[14], shape[15]};
    if (s.groups < 1 || s.C % s.groups || s.O % s.groups || s.sh < 1 || s.sw < 1) return 2;
    if (s.Hs * s.sh < s.H + 2 * s.ph || s.Ws * s.sw < s.W + 2 * s.pw || s.Ws < s.OW) return 3;
    if (s.stacked && (s.sh != 1 || s.sw != 1 || s.Ws != s.N * (s.W + s.pw) + s.pw)) return 4;
    switch (lanes) {
        case 4: return conv2d<4>(x, y, s, block_start, offsets, values, bias);
        case 8: return conv2d<8>(x, y, s, block_start, offsets, values, bias);
        case 16: return conv2d<16>(x, y, s, block_start, offsets, values, bias);
        default: return 1;
    }
}

// y[M][N] = x[M][K] @ W^T, W given as N/L blocks of nonzero groups (offsets are input indices k).
int nnf_sparse_matmul(const float* x, float* y, int64_t M, int64_t K, int64_t N, int lanes,
                      const int32_t* block_start, const int32_t* offsets, const float* values,
                      const float* bias) {
    const MatmulLayer w{K, N, block_start, offsets, values, bias};
    switch (lanes) {
        case 4: return matmul<4>(x, y, M, w);
        case 8: return matmul<8>(x, y, M, w);
        case 16: return matmul<16>(x, y, M, w);
        default: return 1;
    }
}

}  // extern "C"

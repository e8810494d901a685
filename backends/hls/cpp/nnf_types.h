// nnforge HLS support header: integer types, streams and the integer form's arithmetic.
//
// Compiled by Vitis HLS with NNF_AP_TYPES defined, the types are ap_int<W> / ap_uint<W> and the
// streams hls::stream. Compiled by g++ for C simulation (no vendor headers), they are the
// smallest standard integer type of at least W bits and a growing queue. Every value of the
// design stays inside the range its width was proven for, so both compute the same integers.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#ifdef NNF_AP_TYPES
#include <ap_int.h>
#include <hls_stream.h>

namespace nnf {
template <int W> using int_t = ap_int<W>;
template <int W> using uint_t = ap_uint<W>;
template <typename T> using stream = hls::stream<T>;
}  // namespace nnf

#else
namespace nnf {
namespace detail {
template <int W, bool SIGNED> struct std_int {
    static_assert(W >= 1 && W <= 64, "integer widths are 1..64 bits");
    using sized = typename std::conditional<(W <= 8), int8_t,
                  typename std::conditional<(W <= 16), int16_t,
                  typename std::conditional<(W <= 32), int32_t, int64_t>::type>::type>::type;
    using type = typename std::conditional<SIGNED, sized, typename std::make_unsigned<sized>::type>::type;
};
}  // namespace detail

template <int W> using int_t = typename detail::std_int<W, true>::type;
template <int W> using uint_t = typename detail::std_int<W, false>::type;

// Reads from empty streams since the last reset: a stage that reads more words than it is sent
// (the simulation then stops at the end of the frame and reports it, rather than aborting).
inline int& stream_errors() {
    static int count = 0;
    return count;
}

// A FIFO for C simulation: stages run one after another, so it grows to hold a whole frame.
// (A small array queue rather than std::deque: this header is parsed once per translation unit.)
template <typename T> class stream {
  public:
    stream() = default;
    stream(const stream&) = delete;
    stream& operator=(const stream&) = delete;
    ~stream() { delete[] data_; }

    void write(const T& value) {
        if (tail_ == capacity_) grow();
        data_[tail_++] = value;
    }
    T read() {
        if (head_ == tail_) {
            if (stream_errors()++ == 0) std::fprintf(stderr, "nnf::stream: a stage read an empty stream\n");
            return T();
        }
        T value = data_[head_++];
        if (head_ == tail_) head_ = tail_ = 0;
        return value;
    }
    bool empty() const { return head_ == tail_; }
    std::size_t size() const { return tail_ - head_; }

  private:
    void grow() {
        const std::size_t used = tail_ - head_;
        // double when more than half full, else move the unread words to the front
        const std::size_t capacity = capacity_ == 0 ? 64 : (used * 2 > capacity_ ? capacity_ * 2 : capacity_);
        T* data = capacity == capacity_ ? data_ : new T[capacity];
        for (std::size_t i = 0; i < used; i++) data[i] = data_[head_ + i];
        if (data != data_) {
            delete[] data_;
            data_ = data;
        }
        capacity_ = capacity;
        head_ = 0;
        tail_ = used;
    }

    T* data_ = nullptr;
    std::size_t head_ = 0, tail_ = 0, capacity_ = 0;
};
}  // namespace nnf
#endif

// Cycle counters: every pipelined (II=1) loop iteration of stage i adds one to nnf_cycles[i] in C
// simulation, so the estimate's cycle formulas are checked against the loops that run.
// The top function's FIFOs are NNF_KEEP: C simulation keeps them (drained at the end of every
// frame) from one call to the next instead of allocating them again; HLS sees plain locals.
#ifdef __SYNTHESIS__
#define NNF_CYCLE(stage) ((void)0)
#define NNF_KEEP
#else
extern uint64_t nnf_cycles[];
#define NNF_CYCLE(stage) (++nnf_cycles[stage])
#define NNF_KEEP static
#endif

namespace nnf {

// One stream word: a pixel's channels (or a window's SIMD elements).
template <typename T, int N> struct word {
    T v[N];
};

// requantize (docs/integer-form.md): clamp(round_half_even((x - x_zp) * m / 2^shift) + zp, qmin, qmax),
// computed in PROD_BITS bits (at most 64: |x - x_zp| < 2^32 and m < 2^31). With p = f * 2^shift + r
// (0 <= r < 2^shift), adding 2^(shift-1) - 1 + (f & 1) before the shift rounds ties to the even f
// and everything else to nearest; that needs one bit of headroom, so the widest products take
// the remainder's comparison instead.
template <typename OUT, int PROD_BITS, typename IN>
inline OUT requantize(IN x, int64_t x_zp, int32_t m, int shift, int32_t zp, int64_t qmin, int64_t qmax) {
    typedef int_t<(PROD_BITS < 64 ? PROD_BITS + 1 : 64)> prod_t;
    const prod_t p = prod_t(int64_t(x) - x_zp) * prod_t(m);
    const prod_t odd = (p >> shift) & 1;
    int64_t y;
    if (PROD_BITS < 63) {
        y = int64_t((p + ((prod_t(1) << (shift - 1)) - 1) + odd) >> shift);
    } else {
        const prod_t r = p & ((prod_t(1) << shift) - 1), half = prod_t(1) << (shift - 1);
        y = int64_t(p >> shift) + (r > half ? 1 : 0) + ((r == half && odd != 0) ? 1 : 0);
    }
    y += zp;
    return OUT(y < qmin ? qmin : (y > qmax ? qmax : y));
}

// A product of a window element and a weight, exact in PROD (its proven width) under HLS. In C
// simulation it is computed in 32 (or 64) bits, which is exact as well and is what vectorizes.
#ifdef NNF_AP_TYPES
template <typename PROD, typename A, typename B>
inline PROD mul(A a, B b) {
    return PROD(a * b);
}
#else
template <typename PROD, typename A, typename B>
inline typename std::conditional<(sizeof(PROD) <= 4), int32_t, int64_t>::type mul(A a, B b) {
    typedef typename std::conditional<(sizeof(PROD) <= 4), int32_t, int64_t>::type wide_t;
    return wide_t(a) * wide_t(b);
}
#endif

template <typename OUT, typename IN>
inline OUT maximum(IN x, int64_t bound) {
    return OUT(int64_t(x) > bound ? int64_t(x) : bound);
}

template <typename OUT, typename IN>
inline OUT minimum(IN x, int64_t bound) {
    return OUT(int64_t(x) < bound ? int64_t(x) : bound);
}

}  // namespace nnf

namespace nnf {

// io=parallel: the frame arrives as one array and leaves as one; these move it into and out of
// the dataflow region's streams.
template <typename W, int N>
void array_to_stream(const W in[N], stream<W>& out) {
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II=1
        out.write(in[i]);
    }
}

template <typename W, int N>
void stream_to_array(stream<W>& in, W out[N]) {
    for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II=1
        out[i] = in.read();
    }
}

}  // namespace nnf

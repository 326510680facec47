// The shared Philox normal stream (philox.h) for a contiguous range of elements on the CPU, vectorized across
// counters: Philox4x32-10 on 16 (AVX-512) or 8 (AVX2) counters per register, several registers in flight to
// hide the multiplies' latency, into structure-of-arrays words; then Box-Muller over those words in a loop
// the compiler vectorizes. Same counters and same words as rng::normal4, so the same stream as the CUDA
// kernel's; the ISA is picked once at load time.
#pragma once

#include <algorithm>
#include <cstdint>

#include "../fast_math.h"
#include "../philox.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VZ_X86_DISPATCH 1
#include <immintrin.h>
#define VZ_TARGET_V4 __attribute__((target("arch=x86-64-v4")))
#define VZ_TARGET_V3 __attribute__((target("arch=x86-64-v3")))
#else
#define VZ_X86_DISPATCH 0
#endif

namespace vaezoo::rng::cpu {

// Elements per call at most, and the size of the caller's output buffer (floats).
constexpr int64_t kMaxElements = 1024;
constexpr int64_t kBlockGroups = 64;  // counters per pass of the widest Philox loop
constexpr int64_t kMaxGroups = kMaxElements / 4 + kBlockGroups;
constexpr int64_t kBufferFloats = 4 * kMaxGroups;

constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;

// The four Philox output words of counters g0 .. g0 + groups - 1, one array per word.
struct Words {
  alignas(64) uint32_t w[4][kMaxGroups];
};

struct Key {
  uint32_t k0[10], k1[10];  // the round keys
  uint32_t step_lo, step_hi;  // counter words 0 and 1: offset / 4

  Key(uint64_t seed, uint64_t offset) {
    uint32_t a = static_cast<uint32_t>(seed), b = static_cast<uint32_t>(seed >> 32);
    for (int r = 0; r < 10; ++r, a += kWeyl0, b += kWeyl1) {
      k0[r] = a;
      k1[r] = b;
    }
    const uint64_t step = offset / 4;
    step_lo = static_cast<uint32_t>(step);
    step_hi = static_cast<uint32_t>(step >> 32);
  }
};

// Portable Philox over counters, as philox4x32_10 does it.
inline void philox_words_generic(const Key& key, uint64_t g0, int64_t groups, Words& out) {
#pragma omp simd
  for (int64_t j = 0; j < groups; ++j) {
    const uint64_t g = g0 + static_cast<uint64_t>(j);
    uint32_t c0 = key.step_lo, c1 = key.step_hi, c2 = static_cast<uint32_t>(g), c3 = static_cast<uint32_t>(g >> 32);
    for (int r = 0; r < 10; ++r) {
      const uint64_t p0 = static_cast<uint64_t>(kMul0) * c0;
      const uint64_t p1 = static_cast<uint64_t>(kMul1) * c2;
      const uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ key.k0[r];
      const uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ key.k1[r];
      c1 = static_cast<uint32_t>(p1);
      c3 = static_cast<uint32_t>(p0);
      c0 = n0;
      c2 = n2;
    }
    out.w[0][j] = c0;
    out.w[1][j] = c1;
    out.w[2][j] = c2;
    out.w[3][j] = c3;
  }
}

// Box-Muller on the words: normals of elements 4 * g0 .. 4 * (g0 + groups) - 1, in element order.
__attribute__((always_inline)) inline void box_muller(const Words& in, int64_t groups, float* out) {
  constexpr float k2pow32inv = 2.3283064365386963e-10f;  // 2^-32
#pragma omp simd
  for (int64_t j = 0; j < groups; ++j) {
    for (int pair = 0; pair < 2; ++pair) {
      // As normal4: u in (0, 1] keeps log finite; t in [0, 1].
      const float u = static_cast<float>(in.w[2 * pair][j]) * k2pow32inv + 0.5f * k2pow32inv;
      const float t = static_cast<float>(in.w[2 * pair + 1][j]) * k2pow32inv;
      const float radius = sqrtf(-2.0f * math::log_unit(u));
      float s, c;
      math::sincos_2pi(t, &s, &c);
      out[4 * j + 2 * pair] = radius * c;
      out[4 * j + 2 * pair + 1] = radius * s;
    }
  }
}

#if VZ_X86_DISPATCH
// GCC 12 flags the intrinsics' own _mm512_undefined_* temporaries as uninitialized (GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// hi and lo words of a * m for 16 lanes (m the same in every lane): even and odd lanes through 32x32->64
// multiplies, whose words are put in place by (masked) lane shuffles. The shuffles run on another port than
// the multiplies; a 32-bit low multiply and 64-bit shifts would all queue on the multiplier's port.
VZ_TARGET_V4 inline void mulhilo16(__m512i a, __m512i m, __m512i* lo, __m512i* hi) {
  const __m512i even = _mm512_mul_epu32(a, m);                                       // lanes 0, 2, ..: lo, hi
  const __m512i odd = _mm512_mul_epu32(_mm512_shuffle_epi32(a, _MM_PERM_DDBB), m);  // lanes 1, 3, ..: lo, hi
  *lo = _mm512_mask_shuffle_epi32(even, 0xAAAA, odd, _MM_PERM_CCAA);  // odd lanes: the odd products' lo
  *hi = _mm512_mask_shuffle_epi32(odd, 0x5555, even, _MM_PERM_DDBB);  // even lanes: the even products' hi
}

// U registers of 16 counters each, from counter j of the range on.
template <int U>
VZ_TARGET_V4 inline void philox_pass16(const Key& key, uint64_t g0, int64_t j, Words& out) {
  const __m512i m0 = _mm512_set1_epi32(static_cast<int>(kMul0)), m1 = _mm512_set1_epi32(static_cast<int>(kMul1));
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  __m512i c0[U], c1[U], c2[U], c3[U];
  for (int u = 0; u < U; ++u) {
    const uint64_t g = g0 + static_cast<uint64_t>(j + 16 * u);
    const __m512i lo = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(g)));
    c0[u] = _mm512_set1_epi32(static_cast<int>(key.step_lo));
    c1[u] = _mm512_set1_epi32(static_cast<int>(key.step_hi));
    c2[u] = _mm512_add_epi32(lo, iota);
    c3[u] = _mm512_set1_epi32(static_cast<int>(static_cast<uint32_t>(g >> 32)));
    // the carry into the high word where the low word wraps inside the register
    c3[u] = _mm512_mask_add_epi32(c3[u], _mm512_cmplt_epu32_mask(c2[u], lo), c3[u], _mm512_set1_epi32(1));
  }
  for (int r = 0; r < 10; ++r) {
    const __m512i k0 = _mm512_set1_epi32(static_cast<int>(key.k0[r]));
    const __m512i k1 = _mm512_set1_epi32(static_cast<int>(key.k1[r]));
    for (int u = 0; u < U; ++u) {
      __m512i lo0, hi0, lo1, hi1;
      mulhilo16(c0[u], m0, &lo0, &hi0);
      mulhilo16(c2[u], m1, &lo1, &hi1);
      c0[u] = _mm512_ternarylogic_epi32(hi1, c1[u], k0, 0x96);  // three-way xor
      c2[u] = _mm512_ternarylogic_epi32(hi0, c3[u], k1, 0x96);
      c1[u] = lo1;
      c3[u] = lo0;
    }
  }
  for (int u = 0; u < U; ++u) {
    _mm512_store_si512(out.w[0] + j + 16 * u, c0[u]);
    _mm512_store_si512(out.w[1] + j + 16 * u, c1[u]);
    _mm512_store_si512(out.w[2] + j + 16 * u, c2[u]);
    _mm512_store_si512(out.w[3] + j + 16 * u, c3[u]);
  }
}

// Counters [g0, g0 + groups), rounded up to a multiple of 16 (Words has room).
VZ_TARGET_V4 inline void philox_words_v4(const Key& key, uint64_t g0, int64_t groups, Words& out) {
  int64_t j = 0;
  for (; j + 64 <= groups; j += 64) philox_pass16<4>(key, g0, j, out);
  for (; j < groups; j += 16) philox_pass16<1>(key, g0, j, out);
}

VZ_TARGET_V3 inline void mulhilo8(__m256i a, __m256i m, __m256i* lo, __m256i* hi) {
  const __m256i even = _mm256_mul_epu32(a, m);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
  *lo = _mm256_mullo_epi32(a, m);
  *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
}

template <int U>
VZ_TARGET_V3 inline void philox_pass8(const Key& key, uint64_t g0, int64_t j, Words& out) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(kMul0)), m1 = _mm256_set1_epi32(static_cast<int>(kMul1));
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i sign = _mm256_set1_epi32(static_cast<int>(0x80000000u));
  __m256i c0[U], c1[U], c2[U], c3[U];
  for (int u = 0; u < U; ++u) {
    const uint64_t g = g0 + static_cast<uint64_t>(j + 8 * u);
    const __m256i lo = _mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(g)));
    c0[u] = _mm256_set1_epi32(static_cast<int>(key.step_lo));
    c1[u] = _mm256_set1_epi32(static_cast<int>(key.step_hi));
    c2[u] = _mm256_add_epi32(lo, iota);
    // the carry where the low word wraps: unsigned c2 < lo, as a signed compare with the sign bits flipped
    const __m256i wrapped = _mm256_cmpgt_epi32(_mm256_xor_si256(lo, sign), _mm256_xor_si256(c2[u], sign));
    c3[u] = _mm256_sub_epi32(_mm256_set1_epi32(static_cast<int>(static_cast<uint32_t>(g >> 32))), wrapped);
  }
  for (int r = 0; r < 10; ++r) {
    const __m256i k0 = _mm256_set1_epi32(static_cast<int>(key.k0[r]));
    const __m256i k1 = _mm256_set1_epi32(static_cast<int>(key.k1[r]));
    for (int u = 0; u < U; ++u) {
      __m256i lo0, hi0, lo1, hi1;
      mulhilo8(c0[u], m0, &lo0, &hi0);
      mulhilo8(c2[u], m1, &lo1, &hi1);
      c0[u] = _mm256_xor_si256(_mm256_xor_si256(hi1, c1[u]), k0);
      c2[u] = _mm256_xor_si256(_mm256_xor_si256(hi0, c3[u]), k1);
      c1[u] = lo1;
      c3[u] = lo0;
    }
  }
  for (int u = 0; u < U; ++u) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(out.w[0] + j + 8 * u), c0[u]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out.w[1] + j + 8 * u), c1[u]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out.w[2] + j + 8 * u), c2[u]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(out.w[3] + j + 8 * u), c3[u]);
  }
}

VZ_TARGET_V3 inline void philox_words_v3(const Key& key, uint64_t g0, int64_t groups, Words& out) {
  int64_t j = 0;
  for (; j + 32 <= groups; j += 32) philox_pass8<4>(key, g0, j, out);
  for (; j < groups; j += 8) philox_pass8<1>(key, g0, j, out);
}

VZ_TARGET_V4 inline void normals_v4(const Key& key, uint64_t g0, int64_t groups, Words& words, float* out) {
  philox_words_v4(key, g0, groups, words);
  box_muller(words, groups, out);
}

VZ_TARGET_V3 inline void normals_v3(const Key& key, uint64_t g0, int64_t groups, Words& words, float* out) {
  philox_words_v3(key, g0, groups, words);
  box_muller(words, groups, out);
}
#pragma GCC diagnostic pop
#endif

inline void normals_generic(const Key& key, uint64_t g0, int64_t groups, Words& words, float* out) {
  philox_words_generic(key, g0, groups, words);
  box_muller(words, groups, out);
}

using NormalsFn = void (*)(const Key&, uint64_t, int64_t, Words&, float*);

// The widest implementation this CPU runs, decided once.
inline NormalsFn pick_normals() {
#if VZ_X86_DISPATCH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return normals_v4;
  if (__builtin_cpu_supports("x86-64-v3")) return normals_v3;
#endif
  return normals_generic;
}

// Standard normals of elements [start, start + n) of the draw (seed, offset), n <= kMaxElements, written to
// buf (kBufferFloats floats); returns where element `start` lies in buf.
inline const float* normals(const Key& key, int64_t start, int64_t n, float* buf) {
  static const NormalsFn impl = pick_normals();
  const int64_t g0 = start / 4;
  const int64_t groups = (start + n + 3) / 4 - g0;
  Words words;
  impl(key, static_cast<uint64_t>(g0), (groups + 15) / 16 * 16, words, buf);
  return buf + (start - 4 * g0);
}

}  // namespace vaezoo::rng::cpu

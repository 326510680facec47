// Counter-based normal generator shared by the CPU and CUDA kernels: Philox4x32-10 keyed by the element
// index, then Box-Muller. Element i of a draw with (seed, offset) is a pure function of (seed, offset, i),
// so results do not depend on thread count or launch shape, and backward can regenerate eps.
//
// The counter layout is curand_init(seed, subsequence = i / 4, offset)'s, the convention of torch's own
// CUDA kernels: a call reserves `kOffsetIncrement` values per subsequence from the generator.
#pragma once

#include <cstdint>

#include "fast_math.h"

namespace vaezoo::rng {

constexpr uint64_t kOffsetIncrement = 4;

struct Block4 {
  uint32_t v[4];
};

VZ_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  *hi = static_cast<uint32_t>(p >> 32);
  return static_cast<uint32_t>(p);
}

// Philox4x32 with 10 rounds (Salmon et al., SC'11).
VZ_HD Block4 philox4x32_10(Block4 c, uint32_t k0, uint32_t k1) {
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, hi1;
    const uint32_t lo0 = mulhilo(0xD2511F53u, c.v[0], &hi0);
    const uint32_t lo1 = mulhilo(0xCD9E8D57u, c.v[2], &hi1);
    c = Block4{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// Four standard normals for elements 4 * group .. 4 * group + 3 of the draw (seed, offset).
VZ_HD void normal4(uint64_t seed, uint64_t offset, uint64_t group, float out[4]) {
  const uint64_t step = offset / 4;
  const Block4 r = philox4x32_10(
      Block4{{static_cast<uint32_t>(step), static_cast<uint32_t>(step >> 32), static_cast<uint32_t>(group),
              static_cast<uint32_t>(group >> 32)}},
      static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  constexpr float k2pow32inv = 2.3283064365386963e-10f;  // 2^-32
#if defined(__CUDA_ARCH__)
#pragma unroll
#endif
  for (int pair = 0; pair < 2; ++pair) {
    // u in (0, 1] keeps log finite; t in [0, 1].
    const float u = static_cast<float>(r.v[2 * pair]) * k2pow32inv + 0.5f * k2pow32inv;
    const float t = static_cast<float>(r.v[2 * pair + 1]) * k2pow32inv;
    const float radius = sqrtf(-2.0f * math::log_unit(u));
    float s, c;
    math::sincos_2pi(t, &s, &c);
    out[2 * pair] = radius * c;
    out[2 * pair + 1] = radius * s;
  }
}

}  // namespace vaezoo::rng

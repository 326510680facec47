// Float math for the kernels: branchless polynomial exp/log/sincos on the host (so that the compiler
// auto-vectorizes the loops that call them; build with -fno-trapping-math so that selects stay branch-free),
// CUDA's own functions on the device.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define VZ_HD __host__ __device__ __forceinline__
#else
#define VZ_HD inline __attribute__((always_inline))
#endif

namespace vaezoo::math {

#if !defined(__CUDA_ARCH__)
VZ_HD uint32_t bits_of(float x) {
  uint32_t i;
  std::memcpy(&i, &x, sizeof(i));
  return i;
}

VZ_HD float float_of(uint32_t i) {
  float x;
  std::memcpy(&x, &i, sizeof(x));
  return x;
}

// exp(x) to about 1 ulp (Cephes expf), with inf/0/NaN where std::exp gives them.
VZ_HD float host_exp(float x) {
  float xc = x > 89.0f ? 89.0f : x;
  xc = xc < -104.0f ? -104.0f : xc;
  xc = x != x ? 0.0f : xc;  // keeps the float->int conversion below defined
  const float t = xc * 1.44269504088896341f + 0.5f;
  const int32_t ti = static_cast<int32_t>(t);
  const int32_t ni = ti - (t < static_cast<float>(ti));  // floor(t) without a libm call
  const float n = static_cast<float>(ni);
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  const float r2 = r * r;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r2 + r + 1.0f;
  // 2^n in two factors so that n in [-150, 129] stays representable; the product under/overflows like exp.
  const int32_t n1 = ni / 2;
  const int32_t n2 = ni - n1;
  y = y * float_of(static_cast<uint32_t>(n1 + 127) << 23) * float_of(static_cast<uint32_t>(n2 + 127) << 23);
  const uint32_t nan_mask = 0u - static_cast<uint32_t>(x != x);  // a bit blend: a select here blocks vectorizing
  return float_of((bits_of(y) & ~nan_mask) | (bits_of(x) & nan_mask));
}

// log(u) for u in [2^-40, 1] (Cephes logf); the Box-Muller radius never needs more.
VZ_HD float host_log_unit(float u) {
  const uint32_t i = bits_of(u);
  float e = static_cast<float>(static_cast<int32_t>(i >> 23) - 126);
  float m = float_of((i & 0x007fffffu) | 0x3f000000u);  // in [0.5, 1)
  const bool small = m < 0.707106781186547524f;
  e = small ? e - 1.0f : e;
  const float x = small ? m + m - 1.0f : m - 1.0f;
  const float z = x * x;
  float y = 7.0376836292e-2f;
  y = y * x - 1.1514610310e-1f;
  y = y * x + 1.1676998740e-1f;
  y = y * x - 1.2420140846e-1f;
  y = y * x + 1.4249322787e-1f;
  y = y * x - 1.6668057665e-1f;
  y = y * x + 2.0000714765e-1f;
  y = y * x - 2.4999993993e-1f;
  y = y * x + 3.3333331174e-1f;
  y = y * x * z;
  y = y - 2.12194440e-4f * e;
  y = y - 0.5f * z;
  return x + y + 0.693359375f * e;
}

// sin(2 pi u) and cos(2 pi u) for u in [0, 1] (Cephes sinf/cosf after an exact quadrant reduction).
VZ_HD void host_sincos_2pi(float u, float* s, float* c) {
  const int32_t qi = static_cast<int32_t>(u * 4.0f + 0.5f);  // round(4u), the quadrant
  const float a = (u - 0.25f * static_cast<float>(qi)) * 6.28318530717958648f;  // in [-pi/4, pi/4]
  const float z = a * a;
  float ps = -1.9515295891e-4f;
  ps = ps * z + 8.3321608736e-3f;
  ps = ps * z - 1.6666654611e-1f;
  const float sa = a + a * z * ps;
  float pc = 2.443315711809948e-5f;
  pc = pc * z - 1.388731625493765e-3f;
  pc = pc * z + 4.166664568298827e-2f;
  const float ca = 1.0f - 0.5f * z + z * z * pc;
  const bool swap = qi & 1;
  const float sv = swap ? ca : sa;
  const float cv = swap ? sa : ca;
  *s = (qi & 2) ? -sv : sv;
  *c = ((qi + 1) & 2) ? -cv : cv;
}
#endif

// exp in float (fast, vectorizable on the host) and in double (libm).
VZ_HD float exp_acc(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  return host_exp(x);
#endif
}

VZ_HD double exp_acc(double x) {
  return exp(x);
}

// log(u) for the Box-Muller radius, u in (0, 1].
VZ_HD float log_unit(float u) {
#if defined(__CUDA_ARCH__)
  return logf(u);
#else
  return host_log_unit(u);
#endif
}

// sin and cos of 2 pi u, u in [0, 1].
VZ_HD void sincos_2pi(float u, float* s, float* c) {
#if defined(__CUDA_ARCH__)
  sincospif(2.0f * u, s, c);
#else
  host_sincos_2pi(u, s, c);
#endif
}

}  // namespace vaezoo::math

// Compiled CPU kernels of the memory (built by titans_ts/memory/cpu_kernels.py):
// one chunk forward and its hand-written backward for the chunked executor, and the layer's
// causal depthwise convolution (at the end of the file).
//
// The chunk step follows ``_chunk_forward`` / ``_chunk_backward`` in
// ``titans_ts/memory/chunked.py`` (read the derivation there) step by step, issued from C++
// through ATen: the Python interpreter and argument parsing cost ~1 us per op, and a chunk
// issues a few hundred ops. Where a chain of small ops was measurably slow it is one loop
// here instead (gate products, the float32 GELU triple, chunk-end scaling, row-wise dots).
// ``tests/memory/test_cpu_kernels.py`` checks both implementations against each other
// (outputs, end state and every gradient) and the executor against the token-loop oracle.
//
// Cache layout (flat list, L layers), returned by ``chunk_forward(keep=true)`` and consumed
// by ``chunk_backward``:
//   a[0..L) z[0..L-1) dact[0..L-1) act2[0..L-1) g[0..L-1) delta[0..L) hq[0..L) zq[0..L-1)
//   lhs[0..L) Gm[0..L) Pe Pa M C sq clip    (sq, clip empty when not clipping)
// ``dact[l] = act'(z[l])`` is kept so that the backward multiplies by it instead of
// re-evaluating the activation's derivative twice more per hidden layer. When the one-pass
// float32 GELU ran, ``act2[l]`` holds act''(z[l]) * g[l] (all the backward needs of z and g)
// and z[l], g[l] are empty: 2 fewer (n, hidden) tensors written and read back per chunk.
// Otherwise act2[l] is empty and the backward evaluates act''(z[l]).

#include <torch/extension.h>
#include <ATen/AccumulateType.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <tuple>
#include <string>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

namespace {

using at::Tensor;
using std::vector;

constexpr double kInvSqrt2Pi = 0.3989422804014327;

enum class Act { Gelu, Silu, Tanh, Relu };

Act parse_act(const std::string& name) {
  if (name == "gelu") return Act::Gelu;
  if (name == "silu") return Act::Silu;
  if (name == "tanh") return Act::Tanh;
  if (name == "relu") return Act::Relu;
  TORCH_CHECK(false, "unknown activation '", name, "': expected gelu, silu, tanh or relu");
}

Tensor act_forward(Act a, const Tensor& z) {
  switch (a) {
    case Act::Gelu: return at::gelu(z);
    case Act::Silu: return at::silu(z);
    case Act::Tanh: return at::tanh(z);
    default: return at::relu(z);
  }
}

// grad * act'(z)
Tensor act_backward(Act a, const Tensor& grad, const Tensor& z) {
  switch (a) {
    case Act::Gelu: return at::gelu_backward(grad, z);
    case Act::Silu: return at::silu_backward(grad, z);
    case Act::Tanh: return at::tanh_backward(grad, at::tanh(z));
    default: return at::threshold_backward(grad, z, 0);
  }
}

// act''(z)
Tensor act_second(Act a, const Tensor& z) {
  switch (a) {
    case Act::Gelu: {
      auto zz = z * z;
      return at::exp(zz * -0.5).mul_(kInvSqrt2Pi).mul_(2.0 - zz);
    }
    case Act::Silu: {
      auto s = at::sigmoid(z);
      return s * (1.0 - s) * (2.0 + z * (1.0 - 2.0 * s));
    }
    case Act::Tanh: {
      auto t = at::tanh(z);
      return t * -2.0 * (1.0 - t * t);
    }
    default: return at::zeros_like(z);
  }
}

// ---- float32 GELU with its first and second derivative in one vectorisable pass ----------
// ATen evaluates erf and exp once per call of gelu / gelu_backward, and the backward needs
// gelu' twice more and gelu'' once. Here one pass gives all three from one erfc and one exp:
//   Phi(z) = 1 - erfc(z / sqrt2) / 2 (z >= 0) or erfc(|z| / sqrt2) / 2,  phi = exp(-z^2/2)/sqrt(2pi)
//   gelu = z Phi,  gelu' = Phi + z phi,  gelu'' = phi (2 - z^2).
// Used where all three are wanted (the key path of a training step); a lone gelu or
// gelu_backward stays with ATen, which is faster for one output.
// exp: Cody-Waite reduction + degree-6 polynomial. Pure arithmetic, so the compiler
// vectorises the loops. Absolute errors ~4e-7 (ATen's float32 gelu: ~1e-6), checked in
// tests/memory/test_cpu_kernels.py; float64 keeps ATen's path.

inline float exp_fast(float x) {
  x = x < -87.0f ? -87.0f : x;  // exp underflows to ~0 / stays finite
  x = x > 88.0f ? 88.0f : x;
  // round to nearest by the 1.5 * 2^23 trick (pure arithmetic: vectorises, unlike nearbyint)
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  return y * std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
}

// Phi(x) and phi(x). erfc(|x|/sqrt2) = t P(t) exp(-x^2/2) (Abramowitz & Stegun 7.1.26,
// |error| <= 1.5e-7), which shares its exponential with phi: one exp per element.
inline void normal_cdf_pdf(float x, float& Phi, float& phi) {
  constexpr float kInvSqrt2 = 0.70710678118654752f;
  constexpr float kInvSqrt2PiF = 0.39894228040143268f;
  const float e = exp_fast(-0.5f * x * x);
  const float t = 1.0f / (1.0f + 0.3275911f * std::fabs(x) * kInvSqrt2);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float half_erfc = 0.5f * p * t * e;
  Phi = x >= 0.0f ? 1.0f - half_erfc : half_erfc;
  phi = kInvSqrt2PiF * e;
}

constexpr int64_t kGeluGrain = 16384;

// act = gelu(z), dact = gelu'(z) and, when kSecond, act2 = gelu''(z) over [begin, end)
// (a compile-time switch keeps the loop free of branches, so it vectorises)
template <bool kSecond>
inline void gelu_loop(const float* __restrict__ z, float* __restrict__ act,
                      float* __restrict__ dact, float* __restrict__ act2, int64_t begin,
                      int64_t end) {
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    float Phi, phi;
    const float x = z[i];
    normal_cdf_pdf(x, Phi, phi);
    act[i] = x * Phi;
    dact[i] = Phi + x * phi;
    if constexpr (kSecond) act2[i] = phi * (2.0f - x * x);
  }
}

// act2 may be null (gelu'' not wanted)
void gelu_pass(const float* z, float* act, float* dact, float* act2, int64_t n) {
  at::parallel_for(0, n, kGeluGrain, [&](int64_t begin, int64_t end) {
    if (act2 != nullptr) {
      gelu_loop<true>(z, act, dact, act2, begin, end);
    } else {
      gelu_loop<false>(z, act, dact, act2, begin, end);
    }
  });
}

bool fast_gelu(Act a, const Tensor& z) {
  return a == Act::Gelu && z.scalar_type() == at::kFloat && z.is_contiguous();
}

// gelu(z), gelu'(z) and (keep) gelu''(z) of a contiguous float32 tensor.
std::tuple<Tensor, Tensor, Tensor> gelu_with_derivatives(const Tensor& z, bool second) {
  auto act = at::empty_like(z), dact = at::empty_like(z);
  Tensor act2 = second ? at::empty_like(z) : Tensor();
  gelu_pass(z.data_ptr<float>(), act.data_ptr<float>(), dact.data_ptr<float>(),
            second ? act2.data_ptr<float>() : nullptr, z.numel());
  return {act, dact, act2};
}

bool is_wide(const Tensor& w) { return w.size(-2) >= w.size(-1); }

// [W_b | S_b] (wide, dim 2) or [W_b ; S_b] (narrow, dim 1): the first or second half.
Tensor half(const Tensor& ws, bool wide, int64_t which) {
  int64_t dim = wide ? 2 : 1;
  int64_t h = ws.size(dim) / 2;
  return ws.narrow(dim, which * h, h);
}

// Lower-triangular 0/1 mask in ``x``'s dtype, including (strict=false) or excluding the diagonal.
Tensor lower_mask(int64_t n, const Tensor& like, bool strict) {
  return at::ones({n, n}, like.options()).tril(strict ? -1 : 0);
}

// P[g, r, s] = prod_{s < j <= r} f(x[g, j-1]), zero above the diagonal; (G, n+1, n+1), with
// f(x) = x or 1 - x. One pass down each column (the same sequential products as a cumprod).
template <typename T>
void gate_products_kernel(const T* x, int64_t row_stride, bool one_minus, T* P, int64_t G,
                          int64_t n) {
  const int64_t n1 = n + 1;
  at::parallel_for(0, G, 4, [&](int64_t first, int64_t last) {
    for (int64_t g = first; g < last; ++g) {
      const T* xg = x + g * row_stride;
      T* Pg = P + g * n1 * n1;
      std::fill(Pg, Pg + n1 * n1, T(0));
      for (int64_t s = 0; s < n1; ++s) {
        T prod = T(1);
        Pg[s * n1 + s] = prod;
        for (int64_t r = s + 1; r < n1; ++r) {
          const T f = one_minus ? T(1) - xg[r - 1] : xg[r - 1];
          prod = prod * f;
          Pg[r * n1 + s] = prod;
        }
      }
    }
  });
}

Tensor gate_products(const Tensor& x_in, bool one_minus) {
  const Tensor x = x_in.stride(1) == 1 ? x_in : x_in.contiguous();
  const int64_t G = x.size(0), n = x.size(1);
  auto P = at::empty({G, n + 1, n + 1}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gate_products", [&] {
    gate_products_kernel<scalar_t>(x.data_ptr<scalar_t>(), x.stride(0), one_minus,
                                   P.data_ptr<scalar_t>(), G, n);
  });
  return P;
}

// Row-wise dot products of two (G, n, c) tensors whose last dim is contiguous:
// out[g, i] = sum_k a[g, i, k] b[g, i, k], one pass, no product temporary.
template <typename T>
void rowdot_kernel(const Tensor& a, const Tensor& b, T* out) {
  const int64_t n = a.size(1), c = a.size(2), rows = a.size(0) * n;
  const T* pa = a.data_ptr<T>();
  const T* pb = b.data_ptr<T>();
  const int64_t as0 = a.stride(0), as1 = a.stride(1), bs0 = b.stride(0), bs1 = b.stride(1);
  at::parallel_for(0, rows, 64, [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      const int64_t g = r / n, i = r % n;
      const T* __restrict__ x = pa + g * as0 + i * as1;
      const T* __restrict__ y = pb + g * bs0 + i * bs1;
      T sum = 0;
#pragma omp simd reduction(+ : sum)
      for (int64_t k = 0; k < c; ++k) sum += x[k] * y[k];
      out[r] = sum;
    }
  });
}

Tensor rowdot(const Tensor& a, const Tensor& b) {
  if (a.dim() != 3 || a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type() ||
      a.stride(2) != 1 || b.stride(2) != 1)
    return (a * b).sum(-1);
  auto out = at::empty({a.size(0), a.size(1)}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "rowdot", [&] {
    rowdot_kernel<scalar_t>(a, b, out.data_ptr<scalar_t>());
  });
  return out;
}

// d x_j = sum_s P[j-1, s] (P^T dP)[j, s] (no division).
Tensor gate_products_grad(const Tensor& P, const Tensor& dP) {
  int64_t n1 = P.size(-1);
  auto N = at::bmm(P.transpose(1, 2), dP * lower_mask(n1, dP, false));
  return rowdot(P.narrow(1, 0, n1 - 1), N.narrow(1, 1, n1 - 1));
}

// [s1 * x | s2 * x] along the last dim.
Tensor scaled_pair(const Tensor& x, const Tensor& s1, const Tensor& s2) {
  int64_t c = x.size(2);
  auto out = at::empty({x.size(0), x.size(1), 2 * c}, x.options());
  auto first = out.narrow(2, 0, c);
  auto second = out.narrow(2, c, c);
  at::mul_out(first, x, s1);
  at::mul_out(second, x, s2);
  return out;
}


// Chunk-end scaling of the boundary weights, one pass:  W_n = g W_b + r S_b,  S_n = E S_b,
// with per-problem scalars g, r, E (G,). All four are (G, out, in) views, last dim contiguous.
template <typename T>
void end_scale_kernel(const Tensor& Wb, const Tensor& Sb, const Tensor& Wn, const Tensor& Sn,
                      const T* gc, const T* rc, const T* Ec) {
  const int64_t G = Wb.size(0), R = Wb.size(1), n = Wb.size(2);
  const T *wb = Wb.data_ptr<T>(), *sb = Sb.data_ptr<T>();
  T *wn = Wn.data_ptr<T>(), *sn = Sn.data_ptr<T>();
  at::parallel_for(0, G * R, 16, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      const int64_t g = i / R, r = i % R;
      const T* __restrict__ w = wb + g * Wb.stride(0) + r * Wb.stride(1);
      const T* __restrict__ s = sb + g * Sb.stride(0) + r * Sb.stride(1);
      T* __restrict__ ow = wn + g * Wn.stride(0) + r * Wn.stride(1);
      T* __restrict__ os = sn + g * Sn.stride(0) + r * Sn.stride(1);
      const T a = gc[g], b = rc[g], e = Ec[g];
      for (int64_t c = 0; c < n; ++c) {
        ow[c] = a * w[c] + b * s[c];
        os[c] = e * s[c];
      }
    }
  });
}

// Its backward, one pass: dW_b = g dW_n,  dS_b = r dW_n + E dS_n, and per problem the sums
// <dW_n, W_b>, <dW_n, S_b>, <dS_n, S_b> (gradients of g, r, E) written to out (G, 3).
template <typename T>
void end_scale_backward_kernel(const Tensor& Wb, const Tensor& Sb, const Tensor& dWn,
                               const Tensor& dSn, const Tensor& dWb, const Tensor& dSb,
                               const T* gc, const T* rc, const T* Ec, T* out) {
  using acc_t = at::acc_type<T, false>;
  const int64_t G = Wb.size(0), R = Wb.size(1), n = Wb.size(2);
  at::parallel_for(0, G, 1, [&](int64_t first, int64_t last) {
    for (int64_t g = first; g < last; ++g) {
      acc_t s_gw = 0, s_rs = 0, s_es = 0;
      const T a = gc[g], b = rc[g], e = Ec[g];
      for (int64_t r = 0; r < R; ++r) {
        auto row = [&](const Tensor& t) { return t.data_ptr<T>() + g * t.stride(0) + r * t.stride(1); };
        const T* __restrict__ w = row(Wb);
        const T* __restrict__ s = row(Sb);
        const T* __restrict__ dw = row(dWn);
        const T* __restrict__ ds = row(dSn);
        T* __restrict__ ow = row(dWb);
        T* __restrict__ os = row(dSb);
        T p0 = 0, p1 = 0, p2 = 0;  // one row in T (vectorised), rows summed in acc_t
#pragma omp simd reduction(+ : p0, p1, p2)
        for (int64_t c = 0; c < n; ++c) {
          ow[c] = a * dw[c];
          os[c] = b * dw[c] + e * ds[c];
          p0 += dw[c] * w[c];
          p1 += dw[c] * s[c];
          p2 += ds[c] * s[c];
        }
        s_gw += p0;
        s_rs += p1;
        s_es += p2;
      }
      out[3 * g] = static_cast<T>(s_gw);
      out[3 * g + 1] = static_cast<T>(s_rs);
      out[3 * g + 2] = static_cast<T>(s_es);
    }
  });
}

// Flush-to-zero (and, where the build targets AVX2, denormals-are-zero) on the calling
// thread for the guard's lifetime, the previous MXCSR restored on exit; a no-op off x86.
// Why: while memory weights decay towards zero (see flush_subnormals_) products of two
// small normal weights land in the subnormal range inside a chunk, and x86 computes on
// those in microcode. Only subnormal values change: results below numeric_limits::min()
// become zero and (with DAZ) subnormal inputs, weights or q/k/v/gates alike, read as zero.
// Intra-op worker threads keep their own mode: this covers the calling thread only.
class ScopedFlushDenormal {
 public:
  ScopedFlushDenormal() {
#if defined(__x86_64__) || defined(_M_X64)
    saved_ = _mm_getcsr();
#ifdef __AVX2__
    _mm_setcsr(saved_ | 0x8040u);  // FTZ (bit 15) | DAZ (bit 6)
#else
    _mm_setcsr(saved_ | 0x8000u);  // FTZ only: not every x86-64 CPU has DAZ
#endif
#endif
  }
  ~ScopedFlushDenormal() {
#if defined(__x86_64__) || defined(_M_X64)
    _mm_setcsr(saved_);
#endif
  }
  ScopedFlushDenormal(const ScopedFlushDenormal&) = delete;
  ScopedFlushDenormal& operator=(const ScopedFlushDenormal&) = delete;

 private:
  unsigned int saved_ = 0;
};

// Subnormal entries (0 < |x| < numeric_limits::min) set to zero, in place: the chunk-end
// state on CPU, as ``chunked._flush_subnormals_`` (read why there).
template <typename T>
void flush_subnormals_kernel(T* __restrict__ p, int64_t n) {
  const T tiny = std::numeric_limits<T>::min();
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) p[i] = std::abs(p[i]) < tiny ? T(0) : p[i];
}

void flush_subnormals_(Tensor& t) {
  if (!t.is_contiguous()) {
    const double tiny = t.scalar_type() == at::kDouble ? std::numeric_limits<double>::min()
                                                       : std::numeric_limits<float>::min();
    t.masked_fill_(t.abs() < tiny, 0.0);
    return;
  }
  AT_DISPATCH_FLOATING_TYPES(t.scalar_type(), "flush_subnormals", [&] {
    flush_subnormals_kernel<scalar_t>(t.data_ptr<scalar_t>(), t.numel());
  });
}

bool rows_contiguous(std::initializer_list<Tensor> ts) {
  for (const auto& t : ts)
    if (t.stride(2) != 1) return false;
  return true;
}

// coefficients (G,) -> contiguous
Tensor coef(const Tensor& x) { return x.reshape({-1}).contiguous(); }

}  // namespace

// One chunk. Returns {y, WS_end[0..L), cache...} (cache only when keep).
vector<Tensor> chunk_forward(const vector<Tensor>& Wg, const vector<Tensor>& WS, const Tensor& q,
                             const Tensor& k, const Tensor& v, Tensor theta, const Tensor& eta,
                             const Tensor& alpha, const std::string& act_name, bool residual,
                             bool keep, double tau) {
  ScopedFlushDenormal ftz;
  const Act act = parse_act(act_name);
  const int64_t L = static_cast<int64_t>(Wg.size());
  const int64_t n = q.size(1);

  // 1. key path at the chunk-start weights
  // dact[l] = act'(z[l]) (kept for the backward, or undefined), act2[l] = act''(z[l]) from
  // the one-pass GELU (times g[l] below), or undefined: the backward evaluates it
  vector<Tensor> a{k}, z, g, delta(L), dact, act2;
  Tensor h = k, zl;
  for (int64_t l = 0; l < L; ++l) {
    zl = at::bmm(h, Wg[l].transpose(1, 2));
    if (l < L - 1) {
      z.push_back(zl);
      if (fast_gelu(act, zl)) {
        Tensor d1, d2;
        std::tie(h, d1, d2) = gelu_with_derivatives(zl, keep);
        dact.push_back(d1);
        act2.push_back(keep ? d2 : Tensor());
      } else {
        h = act_forward(act, zl);
        dact.push_back(keep ? act_backward(act, at::ones({}, zl.options()).expand_as(zl), zl)
                            : Tensor());
        act2.push_back(Tensor());
      }
      a.push_back(h);
    }
  }
  Tensor err = zl.sub_(v);
  if (residual) err.add_(k);

  // 2. back-propagated errors
  delta[L - 1] = err;
  g.resize(L > 1 ? L - 1 : 0);
  for (int64_t l = L - 2; l >= 0; --l) {
    g[l] = at::bmm(delta[l + 1], Wg[l + 1]);
    delta[l] = dact[l].defined() ? g[l] * dact[l] : act_backward(act, g[l], z[l]);
    if (act2[l].defined()) {  // the backward needs z and g only as act''(z) * g: keep that
      act2[l].mul_(g[l]);
      z[l] = g[l] = at::empty({0}, theta.options());
    }
  }

  // 2b. per-token clipping folded into the learning rate
  Tensor sq, clip;
  if (tau > 0) {
    for (int64_t l = 0; l < L; ++l) {
      auto norm = at::linalg_vector_norm(delta[l], 2, {-1}).mul_(
          at::linalg_vector_norm(a[l], 2, {-1}));
      sq = l == 0 ? norm.square() : sq.add_(norm.square());
    }
    clip = sq.clamp_min(tau * tau).rsqrt_().mul_(tau);
    theta = theta * clip;
  }

  // 3. gate matrices
  auto Pe = gate_products(eta, false);
  auto Pa = gate_products(alpha, true);
  auto theta_hat = at::cat({at::ones({theta.size(0), 1}, theta.options()), theta}, 1);
  auto M = Pe * theta_hat.unsqueeze(1);
  auto C = at::bmm(Pa.narrow(2, 1, n), M.narrow(1, 1, n));
  auto gamma = Pa.narrow(1, 1, n).select(2, 0).unsqueeze(2);
  auto rho = C.narrow(1, 1, n).select(2, 0).unsqueeze(2);
  auto Cst = C.narrow(1, 1, n).narrow(2, 1, n);

  // 4. retrieval in dual form
  vector<Tensor> hq{q}, zq, lhss, Gms;
  Tensor y;
  h = q;
  for (int64_t l = 0; l < L; ++l) {
    const bool wide = is_wide(Wg[l]);
    auto Gm = at::bmm(h, a[l].transpose(1, 2));
    auto P = keep ? Cst * Gm : Gm.mul_(Cst);
    Tensor lhs, zr;
    if (wide) {
      lhs = scaled_pair(h, gamma, rho);
      zr = at::bmm(lhs, WS[l].transpose(1, 2));
    } else {
      lhs = at::bmm(h, WS[l].transpose(1, 2));
      int64_t out = lhs.size(2) / 2;
      zr = at::addcmul(gamma * lhs.narrow(2, 0, out), rho, lhs.narrow(2, out, out));
    }
    zr.baddbmm_(P, delta[l], 1.0, -1.0);
    if (keep) {
      lhss.push_back(lhs);
      Gms.push_back(Gm);
    }
    if (l < L - 1) {
      if (keep) zq.push_back(zr);
      h = act_forward(act, zr);
      hq.push_back(h);
    } else {
      y = residual ? zr.add_(q) : zr;
    }
  }

  // 5. chunk end: W_end = g W_b + r S_b - sum_s w_s u_s, S_end = E S_b - sum_s e_s u_s
  auto w_end = C.select(1, n).narrow(1, 1, n).unsqueeze(2);
  auto e_end = M.select(1, n).narrow(1, 1, n).unsqueeze(2);
  auto g_end = Pa.select(1, n).select(1, 0).view({-1, 1, 1});
  auto r_end = C.select(1, n).select(1, 0).view({-1, 1, 1});
  auto E_end = M.select(1, n).select(1, 0).view({-1, 1, 1});
  vector<Tensor> result{y};
  for (int64_t l = 0; l < L; ++l) {
    const bool wide = is_wide(Wg[l]);
    auto Wb = half(WS[l], wide, 0), Sb = half(WS[l], wide, 1);
    auto next = at::empty_like(WS[l]);
    auto Wn = half(next, wide, 0), Sn = half(next, wide, 1);
    if (rows_contiguous({Wb, Sb, Wn, Sn})) {
      auto gc = coef(g_end), rc = coef(r_end), Ec = coef(E_end);
      AT_DISPATCH_FLOATING_TYPES(Wb.scalar_type(), "end_scale", [&] {
        end_scale_kernel<scalar_t>(Wb, Sb, Wn, Sn, gc.data_ptr<scalar_t>(),
                                   rc.data_ptr<scalar_t>(), Ec.data_ptr<scalar_t>());
      });
    } else {
      at::mul_out(Wn, Wb, g_end);
      Wn.addcmul_(Sb, r_end);
      at::mul_out(Sn, Sb, E_end);
    }
    if (wide) {
      next.baddbmm_(delta[l].transpose(1, 2), scaled_pair(a[l], w_end, e_end), 1.0, -1.0);
    } else {
      next.baddbmm_(scaled_pair(delta[l], w_end, e_end).transpose(1, 2), a[l], 1.0, -1.0);
    }
    flush_subnormals_(next);
    result.push_back(next);
  }

  if (keep) {
    for (auto& x : act2)
      if (!x.defined()) x = at::empty({0}, theta.options());
    for (auto* part : {&a, &z, &dact, &act2, &g, &delta, &hq, &zq, &lhss, &Gms})
      result.insert(result.end(), part->begin(), part->end());
    if (!clip.defined()) sq = clip = at::empty({0}, theta.options());
    result.insert(result.end(), {Pe, Pa, M, C, sq, clip});
  }
  return result;
}

// Backward of chunk_forward (``theta`` unclipped). Returns
// {dWg[0..L), dWS[0..L), dq, dk, dv, dtheta, deta, dalpha}.
vector<Tensor> chunk_backward(const vector<Tensor>& Wg, const vector<Tensor>& WS,
                              const Tensor& theta, const vector<Tensor>& cache,
                              const std::string& act_name, bool residual, const Tensor& dy,
                              const vector<Tensor>& dWS_end, double tau) {
  ScopedFlushDenormal ftz;
  const Act act = parse_act(act_name);
  const int64_t L = static_cast<int64_t>(Wg.size());
  const int64_t n = dy.size(1);
  TORCH_CHECK(static_cast<int64_t>(cache.size()) == 10 * L + 1, "chunk_backward: cache of ",
              cache.size(), " tensors, expected ", 10 * L + 1);
  auto it = cache.begin();
  auto take = [&it](int64_t count) {
    vector<Tensor> part(it, it + count);
    it += count;
    return part;
  };
  const auto a = take(L), z = take(L - 1), dact = take(L - 1), act2 = take(L - 1),
             g = take(L - 1), delta = take(L), hq = take(L), zq = take(L - 1), lhss = take(L),
             Gms = take(L);
  const Tensor Pe = it[0], Pa = it[1], M = it[2], C = it[3], sq = it[4], clip = it[5];
  const bool clipped = tau > 0 && clip.numel() > 0;

  auto gamma = Pa.narrow(1, 1, n).select(2, 0).unsqueeze(2);
  auto rho = C.narrow(1, 1, n).select(2, 0).unsqueeze(2);
  auto Cst = C.narrow(1, 1, n).narrow(2, 1, n);
  vector<bool> wides;
  for (const auto& w : Wg) wides.push_back(is_wide(w));
  const bool has_end = !dWS_end.empty();

  vector<Tensor> dWg, dWS, ddelta, da;
  for (const auto& w : Wg) dWg.push_back(at::zeros_like(w));
  // with an incoming end-state gradient, step 5 writes every element of dWS first
  for (const auto& w : WS) dWS.push_back(has_end ? at::empty_like(w) : at::zeros_like(w));
  for (const auto& x : delta) ddelta.push_back(at::zeros_like(x));
  for (const auto& x : a) da.push_back(at::zeros_like(x));
  auto dC = at::zeros_like(C), dPa = at::zeros_like(Pa), dM = at::zeros_like(M);
  auto dC_end = dC.select(1, n), dM_end = dM.select(1, n), dPa_end = dPa.select(1, n);

  // 5. chunk end
  if (has_end) {
    auto w_end = C.select(1, n).narrow(1, 1, n).unsqueeze(2);
    auto e_end = M.select(1, n).narrow(1, 1, n).unsqueeze(2);
    auto g_end = Pa.select(1, n).select(1, 0).view({-1, 1, 1});
    auto r_end = C.select(1, n).select(1, 0).view({-1, 1, 1});
    auto E_end = M.select(1, n).select(1, 0).view({-1, 1, 1});
    for (int64_t l = 0; l < L; ++l) {
      const bool wide = wides[l];
      auto Wb = half(WS[l], wide, 0), Sb = half(WS[l], wide, 1);
      auto dNW = half(dWS_end[l], wide, 0), dNS = half(dWS_end[l], wide, 1);
      auto dWb = half(dWS[l], wide, 0), dSb = half(dWS[l], wide, 1);
      if (rows_contiguous({Wb, Sb, dNW, dNS, dWb, dSb})) {
        auto gc = coef(g_end), rc = coef(r_end), Ec = coef(E_end);
        auto sums = at::empty({Wb.size(0), 3}, Wb.options());
        AT_DISPATCH_FLOATING_TYPES(Wb.scalar_type(), "end_scale_backward", [&] {
          end_scale_backward_kernel<scalar_t>(
              Wb, Sb, dNW, dNS, dWb, dSb, gc.data_ptr<scalar_t>(), rc.data_ptr<scalar_t>(),
              Ec.data_ptr<scalar_t>(), sums.data_ptr<scalar_t>());
        });
        dPa_end.select(1, 0).add_(sums.select(1, 0));
        dC_end.select(1, 0).add_(sums.select(1, 1));
        dM_end.select(1, 0).add_(sums.select(1, 2));
      } else {
        at::mul_out(dWb, dNW, g_end);
        at::mul_out(dSb, dNW, r_end);
        dSb.addcmul_(dNS, E_end);
        dPa_end.select(1, 0).add_((dNW * Wb).sum({1, 2}));
        dC_end.select(1, 0).add_((dNW * Sb).sum({1, 2}));
        dM_end.select(1, 0).add_((dNS * Sb).sum({1, 2}));
      }
      if (wide) {  // U = delta^T R, R = [w a | e a]
        auto R = scaled_pair(a[l], w_end, e_end);
        ddelta[l].baddbmm_(R, dWS_end[l].transpose(1, 2), 1.0, -1.0);
        auto dR = at::bmm(delta[l], dWS_end[l]).neg_();
        int64_t n_in = a[l].size(2);
        auto dRw = dR.narrow(2, 0, n_in), dRe = dR.narrow(2, n_in, n_in);
        da[l].add_(w_end * dRw).addcmul_(e_end, dRe);
        dC_end.narrow(1, 1, n).add_(rowdot(dRw, a[l]));
        dM_end.narrow(1, 1, n).add_(rowdot(dRe, a[l]));
      } else {  // U = R^T a, R = [w delta | e delta]
        auto R = scaled_pair(delta[l], w_end, e_end);
        auto dR = at::bmm(a[l], dWS_end[l].transpose(1, 2)).neg_();
        da[l].baddbmm_(R, dWS_end[l], 1.0, -1.0);
        int64_t out = delta[l].size(2);
        auto dRw = dR.narrow(2, 0, out), dRe = dR.narrow(2, out, out);
        ddelta[l].add_(w_end * dRw).addcmul_(e_end, dRe);
        dC_end.narrow(1, 1, n).add_(rowdot(dRw, delta[l]));
        dM_end.narrow(1, 1, n).add_(rowdot(dRe, delta[l]));
      }
    }
  }

  // 4. retrieval, last layer first
  Tensor dq = residual ? dy.clone() : Tensor();
  Tensor dz = dy;
  auto dgamma = at::zeros_like(gamma), drho = at::zeros_like(rho), dCst = at::zeros_like(Cst);
  for (int64_t l = L - 1; l >= 0; --l) {
    const auto& h = hq[l];
    const auto& lhs = lhss[l];
    Tensor dh;
    if (wides[l]) {
      auto dlhs = at::bmm(dz, WS[l]);  // (n, 2 in)
      dWS[l].baddbmm_(dz.transpose(1, 2), lhs);
      int64_t n_in = h.size(2);
      auto dlw = dlhs.narrow(2, 0, n_in), dls = dlhs.narrow(2, n_in, n_in);
      dgamma.add_(rowdot(dlw, h).unsqueeze(2));
      drho.add_(rowdot(dls, h).unsqueeze(2));
      dh = at::addcmul(gamma * dlw, rho, dls);
    } else {
      int64_t out = dz.size(2);
      dgamma.add_(rowdot(dz, lhs.narrow(2, 0, out)).unsqueeze(2));
      drho.add_(rowdot(dz, lhs.narrow(2, out, out)).unsqueeze(2));
      auto dXY = scaled_pair(dz, gamma, rho);
      dWS[l].baddbmm_(dXY.transpose(1, 2), h);
      dh = at::bmm(dXY, WS[l]);
    }
    auto dP = at::bmm(dz, delta[l].transpose(1, 2));  // minus sign folded below
    ddelta[l].baddbmm_((Cst * Gms[l]).transpose(1, 2), dz, 1.0, -1.0);
    dCst.addcmul_(dP, Gms[l], -1.0);
    auto dGm = dP.mul_(Cst).neg_();
    dh.baddbmm_(dGm, a[l]);
    da[l].baddbmm_(dGm.transpose(1, 2), h);
    if (l > 0) {
      dz = act_backward(act, dh, zq[l - 1]);
    } else {
      dq = dq.defined() ? dq.add_(dh) : dh;
    }
  }

  // 3. gates
  dC.narrow(1, 1, n).narrow(2, 1, n).add_(dCst * lower_mask(n, dCst, false));
  dC.narrow(1, 1, n).select(2, 0).add_(drho.squeeze(2));
  dPa.narrow(1, 1, n).select(2, 0).add_(dgamma.squeeze(2));
  dPa.narrow(2, 1, n).add_(at::bmm(dC, M.narrow(1, 1, n).transpose(1, 2)));
  dM.narrow(1, 1, n).add_(at::bmm(Pa.narrow(2, 1, n).transpose(1, 2), dC));
  auto dtheta = (dM * Pe).sum(1).narrow(1, 1, n);
  auto dPe = dM.clone();
  dPe.narrow(2, 1, n).mul_((clipped ? theta * clip : theta).unsqueeze(1));
  auto deta = gate_products_grad(Pe, dPe);
  auto dalpha = gate_products_grad(Pa, dPa).neg_();

  // 2b. clipping: theta_eff = theta * clip, clip = tau / sqrt(sq) where sq > tau^2
  if (clipped) {
    auto dclip = dtheta * theta;
    dtheta = dtheta * clip;
    auto dsq = at::where(sq > tau * tau, -clip / sq * dclip, at::zeros({}, sq.options()))
                   .unsqueeze(-1);
    for (int64_t l = 0; l < L; ++l) {
      ddelta[l].addcmul_(dsq * rowdot(a[l], a[l]).unsqueeze(2), delta[l]);
      da[l].addcmul_(dsq * rowdot(delta[l], delta[l]).unsqueeze(2), a[l]);
    }
  }

  // 2. back-propagated errors (delta_1 was computed last, so it is undone first)
  vector<Tensor> dz_key(L);
  for (int64_t l = 0; l < L - 1; ++l) {
    auto dg = ddelta[l] * dact[l];
    dz_key[l] = act2[l].numel() > 0 ? act2[l] * ddelta[l]  // act''(z) * g, kept
                                    : act_second(act, z[l]).mul_(ddelta[l]).mul_(g[l]);
    ddelta[l + 1].baddbmm_(dg, Wg[l + 1].transpose(1, 2));
    dWg[l + 1].baddbmm_(delta[l + 1].transpose(1, 2), dg);
  }
  auto derr = ddelta[L - 1];
  dz_key[L - 1] = derr;
  auto dv = derr.neg();
  Tensor dk = residual ? derr.clone() : Tensor();

  // 1. key path
  for (int64_t l = L - 1; l >= 0; --l) {
    dWg[l].baddbmm_(dz_key[l].transpose(1, 2), a[l]);
    da[l].baddbmm_(dz_key[l], Wg[l]);
    if (l > 0) dz_key[l - 1].addcmul_(da[l], dact[l - 1]);
  }
  dk = dk.defined() ? dk.add_(da[0]) : da[0];

  vector<Tensor> result(dWg);
  result.insert(result.end(), dWS.begin(), dWS.end());
  result.insert(result.end(), {dq, dk, dv, dtheta, deta, dalpha});
  return result;
}

// ------------------------------------------------------------------------------------------
// Causal depthwise convolution over time (see titans_ts/memory/conv.py):
//   out[b, t, c] = bias[c] + sum_j w[c, j] * x[b, t + j - (K - 1), c],
// where x at negative times comes from ``cache`` (B, K - 1, C) (zeros when it is empty).
// One pass over the data forward and one backward, parallel over (batch, time block) with
// whole contiguous rows of C channels per step.

namespace {

constexpr int64_t kTimeBlock = 64;

// o[i] += a[i] * b[i] (restrict: lets the compiler vectorise without alias checks)
template <typename T>
inline void fma_row(T* __restrict__ o, const T* __restrict__ a, const T* __restrict__ b,
                    int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] += a[i] * b[i];
}

template <typename T>
inline void add_row(T* __restrict__ o, const T* __restrict__ a, int64_t n) {
  for (int64_t i = 0; i < n; ++i) o[i] += a[i];
}

template <typename T>
const T* conv_row(const T* u, const T* cache, int64_t b, int64_t t, int64_t Tn, int64_t C,
                  int64_t K) {
  if (t >= 0) return u + (b * Tn + t) * C;
  return cache == nullptr ? nullptr : cache + (b * (K - 1) + t + K - 1) * C;
}

template <typename T>
void conv_forward_kernel(const T* u, const T* cache, const T* wT, const T* bias, T* out,
                         int64_t B, int64_t Tn, int64_t C, int64_t K) {
  const int64_t blocks = (Tn + kTimeBlock - 1) / kTimeBlock;
  at::parallel_for(0, B * blocks, 1, [&](int64_t first, int64_t last) {
    for (int64_t task = first; task < last; ++task) {
      const int64_t b = task / blocks, t0 = (task % blocks) * kTimeBlock;
      const int64_t t1 = std::min(Tn, t0 + kTimeBlock);
      for (int64_t t = t0; t < t1; ++t) {
        T* o = out + (b * Tn + t) * C;
        std::copy(bias, bias + C, o);
        for (int64_t j = 0; j < K; ++j) {
          const T* x = conv_row(u, cache, b, t + j - (K - 1), Tn, C, K);
          if (x != nullptr) fma_row(o, wT + j * C, x, C);
        }
      }
    }
  });
}

// dwT (K, C) and dbias (C,) are reduced from one accumulator per thread.
template <typename T>
void conv_backward_kernel(const T* u, const T* cache, const T* wT, const T* dout, T* du,
                          T* dcache, T* dwT, T* dbias, int64_t B, int64_t Tn, int64_t C,
                          int64_t K) {
  const int64_t blocks = (Tn + kTimeBlock - 1) / kTimeBlock;
  const int64_t threads = at::get_num_threads();
  std::vector<T> partial(static_cast<size_t>(threads * (K + 1) * C), T(0));
  at::parallel_for(0, B * blocks, 1, [&](int64_t first, int64_t last) {
    T* acc = partial.data() + at::get_thread_num() * (K + 1) * C;  // K rows of dw, then dbias
    for (int64_t task = first; task < last; ++task) {
      const int64_t b = task / blocks, t0 = (task % blocks) * kTimeBlock;
      const int64_t t1 = std::min(Tn, t0 + kTimeBlock);
      // input gradient at time s (s < 0: the cache): sum_j w[j] dout[s + K - 1 - j]
      for (int64_t s = t0 == 0 ? -(K - 1) : t0; s < t1; ++s) {
        T* dx = s >= 0 ? du + (b * Tn + s) * C
                       : (dcache == nullptr ? nullptr : dcache + (b * (K - 1) + s + K - 1) * C);
        if (dx == nullptr) continue;
        std::fill(dx, dx + C, T(0));
        for (int64_t j = 0; j < K; ++j) {
          const int64_t t = s + K - 1 - j;
          if (t >= 0 && t < Tn) fma_row(dx, wT + j * C, dout + (b * Tn + t) * C, C);
        }
      }
      for (int64_t t = t0; t < t1; ++t) {
        const T* g = dout + (b * Tn + t) * C;
        add_row(acc + K * C, g, C);
        for (int64_t j = 0; j < K; ++j) {
          const T* x = conv_row(u, cache, b, t + j - (K - 1), Tn, C, K);
          if (x != nullptr) fma_row(acc + j * C, g, x, C);
        }
      }
    }
  });
  std::fill(dwT, dwT + K * C, T(0));
  std::fill(dbias, dbias + C, T(0));
  for (int64_t r = 0; r < threads; ++r) {
    const T* acc = partial.data() + r * (K + 1) * C;
    add_row(dwT, acc, K * C);
    add_row(dbias, acc + K * C, C);
  }
}

void check_conv_inputs(const Tensor& u, const Tensor& weight, const Tensor& cache) {
  TORCH_CHECK(u.dim() == 3 && u.is_contiguous(), "conv: u must be contiguous (B, T, C)");
  TORCH_CHECK(weight.dim() == 2 && weight.size(0) == u.size(2), "conv: weight must be (C, K)");
  TORCH_CHECK(weight.scalar_type() == u.scalar_type() &&
                  (!cache.defined() || cache.scalar_type() == u.scalar_type()),
              "conv: u, weight and cache must share one dtype");
  TORCH_CHECK(!cache.defined() || cache.numel() == 0 ||
                  (cache.is_contiguous() && cache.size(0) == u.size(0) &&
                   cache.size(1) == weight.size(1) - 1 && cache.size(2) == u.size(2)),
              "conv: cache must be contiguous (B, K - 1, C)");
}

}  // namespace

// out (B, T, C) = causal depthwise conv of u with weight (C, K), bias (C,), cache (B, K-1, C)
// or an empty tensor for zeros.
Tensor conv_forward(const Tensor& u, const Tensor& weight, const Tensor& bias,
                    const Tensor& cache) {
  check_conv_inputs(u, weight, cache);
  const int64_t B = u.size(0), Tn = u.size(1), C = u.size(2), K = weight.size(1);
  auto out = at::empty_like(u);
  auto wT = weight.t().contiguous();
  TORCH_CHECK(bias.scalar_type() == u.scalar_type() && bias.numel() == C,
              "conv: bias must be (C,) in u's dtype");
  auto bias_c = bias.contiguous();
  const bool has_cache = cache.defined() && cache.numel() > 0;
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "conv_forward", [&] {
    conv_forward_kernel<scalar_t>(u.data_ptr<scalar_t>(),
                                  has_cache ? cache.data_ptr<scalar_t>() : nullptr,
                                  wT.data_ptr<scalar_t>(), bias_c.data_ptr<scalar_t>(),
                                  out.data_ptr<scalar_t>(), B, Tn, C, K);
  });
  return out;
}

// Returns {du (B, T, C), dcache (B, K-1, C) or empty, dweight (C, K), dbias (C,)}.
vector<Tensor> conv_backward(const Tensor& u, const Tensor& weight, const Tensor& cache,
                             const Tensor& dout) {
  check_conv_inputs(u, weight, cache);
  const int64_t B = u.size(0), Tn = u.size(1), C = u.size(2), K = weight.size(1);
  auto g = dout.contiguous();
  auto wT = weight.t().contiguous();
  const bool has_cache = cache.defined() && cache.numel() > 0;
  auto du = at::empty_like(u);
  auto dcache = has_cache ? at::empty_like(cache) : at::empty({0}, u.options());
  auto dwT = at::empty({K, C}, u.options());
  auto dbias = at::empty({C}, u.options());
  AT_DISPATCH_FLOATING_TYPES(u.scalar_type(), "conv_backward", [&] {
    conv_backward_kernel<scalar_t>(
        u.data_ptr<scalar_t>(), has_cache ? cache.data_ptr<scalar_t>() : nullptr,
        wT.data_ptr<scalar_t>(), g.data_ptr<scalar_t>(), du.data_ptr<scalar_t>(),
        has_cache ? dcache.data_ptr<scalar_t>() : nullptr, dwT.data_ptr<scalar_t>(),
        dbias.data_ptr<scalar_t>(), B, Tn, C, K);
  });
  return {du, dcache, dwT.t().contiguous(), dbias};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "Compiled CPU step of the titans_ts chunked memory executor";
  m.def("chunk_forward", &chunk_forward, "one chunk forward (see chunked._chunk_forward)",
        py::call_guard<py::gil_scoped_release>());
  m.def("chunk_backward", &chunk_backward, "its backward (see chunked._chunk_backward)",
        py::call_guard<py::gil_scoped_release>());
  m.def("gelu_derivatives",
        [](const Tensor& z) {
          TORCH_CHECK(z.scalar_type() == at::kFloat, "gelu_derivatives: float32 only");
          auto [act, dact, act2] = gelu_with_derivatives(z.contiguous(), true);
          return std::vector<Tensor>{act, dact, act2};
        },
        "one-pass float32 gelu, gelu', gelu'' (tests)", py::call_guard<py::gil_scoped_release>());
  m.def("conv_forward", &conv_forward, "causal depthwise conv (see conv.py)",
        py::call_guard<py::gil_scoped_release>());
  m.def("conv_backward", &conv_backward, "its backward",
        py::call_guard<py::gil_scoped_release>());
}

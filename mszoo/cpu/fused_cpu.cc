// Fused CPU kernels for MindSpore's ops.Custom(func_type="aot"): LayerNorm over the last axis and exact
// (erf) GELU, forward and backward, a transpose (A, B, C, D) -> (A, C, B, D) without MindSpore's
// per-element index table, softmax's backward, a bias gradient (column sums), Twins' PEG (a depthwise
// 3x3 convolution on channels-last tokens) and an unfold (im2col) with zero padding, each forward and
// backward, a per-sample scale (DropPath) and the gradients' global sum of squares; float32. Built on first
// use by mszoo/cpu/kernels.py.
//
// Calling convention (MindSpore 2.x CPU AOT): inputs then outputs in `params`, each with its rank in
// `ndims`, its shape in `shapes` and its dtype name in `dtypes`; return 0 on success.
//
// Numbers: row sums run in 16 fixed float lanes combined in double (the same order on every ISA); the
// weight and bias gradients are summed per fixed block of 32 rows in float and the blocks in double in a
// fixed order, so no result depends on the number of threads (MSZOO_KERNEL_THREADS, default 1, see
// NumThreads; small tensors always run on the calling thread). erf and exp are vectorisable
// float approximations within a few ulp of libm's.
// Each hot loop is compiled for AVX-512, AVX2+FMA and baseline x86-64 (target_clones: the loader picks
// the clone the CPU has), so one cached library runs on every x86-64 CPU.
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <cstdlib>
#include <thread>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MSZOO_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MSZOO_CLONES
#endif

namespace {

constexpr int64_t kBlockRows = 32;          // rows per weight/bias-gradient partial (fixed: deterministic)
constexpr int64_t kMinWorkPerThread = 1 << 15;  // elements; below this one thread does it all

// Threads for a kernel: MSZOO_KERNEL_THREADS (read per call), default 1, at most the usable CPUs. One by
// default: these kernels are memory-bound, and in a training step a second thread competes with MindSpore's
// own thread pool (measured: twins_pcpvt_small 6 %, tnt_s_patch16_224 15 % slower steps with 2 on 2 vCPUs).
int NumThreads(int64_t work) {
  static const int cpus = [] {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }();
  const char *env = std::getenv("MSZOO_KERNEL_THREADS");
  const int wanted = (env != nullptr && std::atoi(env) > 0) ? std::atoi(env) : 1;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({wanted, cpus, work / kMinWorkPerThread})));
}

// Runs fn(begin, end) over [0, n) split into contiguous chunks, one per thread (the caller runs one).
template <typename Fn>
void ParallelFor(int64_t n, int64_t work, Fn fn) {
  const int threads = static_cast<int>(std::min<int64_t>(NumThreads(work), std::max<int64_t>(n, 1)));
  if (threads <= 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    pool.emplace_back(fn, n * t / threads, n * (t + 1) / threads);
  }
  fn(int64_t{0}, n / threads);
  for (auto &th : pool) th.join();
}

int64_t Elements(int ndim, const int64_t *shape) {
  int64_t n = 1;
  for (int i = 0; i < ndim; ++i) n *= shape[i];
  return n;
}

bool AllFloat32(int nparam, const char **dtypes) {
  for (int i = 0; i < nparam; ++i) {
    if (std::strcmp(dtypes[i], "float32") != 0 && std::strcmp(dtypes[i], "float") != 0) return false;
  }
  return true;
}

inline float BitsToFloat(int32_t bits) {
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// exp(x) for x <= 0 (GELU's density): Cody-Waite reduction and a degree-6 polynomial, ~1 ulp.
inline float ExpNonPositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round to nearest
  const float r = (x - n * 0.693145751953125f) - n * 1.428606765330187e-06f;
  float p = 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  return p * BitsToFloat((static_cast<int32_t>(n) + 127) << 23);
}

// erf(x): the rational approximation Eigen and XLA use for float (a few ulp on [-4, 4], +-1 beyond).
inline float Erf(float x) {
  x = x > 4.0f ? 4.0f : (x < -4.0f ? -4.0f : x);
  const float x2 = x * x;
  float p = -2.72614225801306e-10f;
  p = p * x2 + 2.77068142495902e-08f;
  p = p * x2 - 2.10102402082508e-06f;
  p = p * x2 - 5.69250639462346e-05f;
  p = p * x2 - 7.34990630326855e-04f;
  p = p * x2 - 2.95459980854025e-03f;
  p = p * x2 - 1.60960333262415e-02f;
  float q = -1.45660718464996e-05f;
  q = q * x2 - 2.13374055278905e-04f;
  q = q * x2 - 1.68282697438203e-03f;
  q = q * x2 - 7.37332916720468e-03f;
  q = q * x2 - 1.42647390514189e-02f;
  return x * p / q;
}

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

MSZOO_CLONES void GeluForwardRange(const float *__restrict x, float *__restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * (Erf(x[i] * kInvSqrt2) * 0.5f + 0.5f);
}

MSZOO_CLONES void GeluBackwardRange(const float *__restrict x, const float *__restrict dy, float *__restrict dx,
                                    int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float cdf = Erf(x[i] * kInvSqrt2) * 0.5f + 0.5f;
    const float pdf = ExpNonPositive(x[i] * x[i] * -0.5f) * kInvSqrt2Pi;
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

constexpr int kLanes = 16;  // fixed accumulator lanes: the same sums on every ISA clone

// sum of x[c] for c < n: kLanes float partial sums (vectorised), combined in double.
inline double LaneSum(const float *x, int64_t n) {
  float acc[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += x[c + j];
  }
  double sum = 0.0;
  for (; c < n; ++c) sum += x[c];
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  return sum;
}

// sum of (x[c] - m)^2, as LaneSum.
inline double LaneSquares(const float *x, float m, int64_t n) {
  float acc[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += (x[c + j] - m) * (x[c + j] - m);
  }
  double sum = 0.0;
  for (; c < n; ++c) sum += static_cast<double>(x[c] - m) * (x[c] - m);
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  return sum;
}

// sum of a[c] * b[c], as LaneSum.
inline double LaneDot(const float *a, const float *b, int64_t n) {
  float acc[kLanes] = {};
  int64_t c = 0;
  for (; c + kLanes <= n; c += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += a[c + j] * b[c + j];
  }
  double sum = 0.0;
  for (; c < n; ++c) sum += static_cast<double>(a[c]) * b[c];
  for (int j = 0; j < kLanes; ++j) sum += acc[j];
  return sum;
}

// The blocks' float partial sums (`blocks` rows of `width`) added in double in block order: the fixed
// order that makes weight/bias gradients independent of the thread count.
std::vector<double> SumBlocks(const std::vector<float> &partial, int64_t blocks, int64_t width) {
  std::vector<double> sum(static_cast<size_t>(width), 0.0);
  for (int64_t k = 0; k < blocks; ++k) {
    const float *part = partial.data() + k * width;
    for (int64_t c = 0; c < width; ++c) sum[c] += part[c];
  }
  return sum;
}

MSZOO_CLONES void ScaleRange(const float *__restrict x, float scale, float *__restrict y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale;
}

// An unfold's window geometry, from its 6-element float input (kh, kw, sh, sw, ph, pw), and the window grid
// (oh, ow) it gives over an (h, w) map; false when the numbers are not a valid geometry.
struct UnfoldGeometry {
  int64_t kh, kw, sh, sw, ph, pw, oh, ow;
};

bool ReadUnfoldGeometry(int ndim, const int64_t *shape, const float *g, int64_t h, int64_t w,
                        UnfoldGeometry *out) {
  if (Elements(ndim, shape) != 6) return false;
  int64_t v[6];
  for (int k = 0; k < 6; ++k) {
    v[k] = static_cast<int64_t>(g[k]);
    if (static_cast<float>(v[k]) != g[k] || v[k] < (k < 4 ? 1 : 0)) return false;
  }
  if (h + 2 * v[4] < v[0] || w + 2 * v[5] < v[1]) return false;  // no window fits
  *out = {v[0], v[1], v[2], v[3], v[4], v[5], (h + 2 * v[4] - v[0]) / v[2] + 1, (w + 2 * v[5] - v[1]) / v[3] + 1};
  return true;
}

// The window at grid position (oy, ox) of one sample's (C, H, W) map, written as one row of C * kh * kw values
// in torch.nn.Unfold's order (channel, then kernel row, then kernel column); zeros where it overhangs.
void UnfoldWindow(const float *x, float *row, int64_t oy, int64_t ox, int64_t C, int64_t H, int64_t W,
                  const UnfoldGeometry &g) {
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t h = oy * g.sh - g.ph + i;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t w = ox * g.sw - g.pw + j;
        *row++ = (h >= 0 && h < H && w >= 0 && w < W) ? x[(c * H + h) * W + w] : 0.0f;
      }
    }
  }
}

// dx of one map row (c, h) of a sample: each pixel adds the values of the windows that read it, in kernel order.
void UnfoldGradRow(const float *drows, float *dx, int64_t c, int64_t h, int64_t C, int64_t W,
                   const UnfoldGeometry &g) {
  const int64_t width = C * g.kh * g.kw;
  for (int64_t w = 0; w < W; ++w) {
    float sum = 0.0f;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ty = h + g.ph - i;
      if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.oh) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t tx = w + g.pw - j;
        if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= g.ow) continue;
        sum += drows[((ty / g.sh) * g.ow + tx / g.sw) * width + (c * g.kh + i) * g.kw + j];
      }
    }
    dx[w] = sum;
  }
}

// Elements per block of a square sum (MszooSquareSum): summed in float lanes, the blocks in double.
constexpr int64_t kSquareBlock = 1 << 14;

MSZOO_CLONES double SquareSumRange(const float *x, int64_t n) { return LaneSquares(x, 0.0f, n); }

// Rows of a tensor seen as (rows, its last axis).
int64_t Rows(int ndim, const int64_t *shape) {
  const int64_t cols = shape[ndim - 1];
  return cols > 0 ? Elements(ndim, shape) / cols : 0;
}

// One row: mean, then 1/sqrt(var + eps) from the centred squares (two passes), then y.
MSZOO_CLONES void LayerNormRow(const float *__restrict x, const float *__restrict w, const float *__restrict b,
                               float *__restrict y, float *mean_out, float *rstd_out, int64_t cols, float eps) {
  const float m = static_cast<float>(LaneSum(x, cols) / static_cast<double>(cols));
  const double var = LaneSquares(x, m, cols) / static_cast<double>(cols);
  const float rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
  for (int64_t c = 0; c < cols; ++c) y[c] = (x[c] - m) * rstd * w[c] + b[c];
  *mean_out = m;
  *rstd_out = rstd;
}

// One row of dx (g = dy * w, xhat = (x - mean) * rstd: dx = rstd * (g - mean(g) - xhat * mean(g * xhat))),
// and its contribution to the block's dweight/dbias partials. `g` and `gx` are scratch rows.
MSZOO_CLONES void LayerNormGradRow(const float *__restrict dy, const float *__restrict x, float mean, float rstd,
                                   const float *__restrict w, float *__restrict dx, float *__restrict dw_part,
                                   float *__restrict db_part, float *__restrict g, float *__restrict gx,
                                   int64_t cols) {
  for (int64_t c = 0; c < cols; ++c) {
    const float xhat = (x[c] - mean) * rstd;
    g[c] = dy[c] * w[c];
    gx[c] = g[c] * xhat;
    dw_part[c] += dy[c] * xhat;
    db_part[c] += dy[c];
  }
  const float mean_g = static_cast<float>(LaneSum(g, cols) / static_cast<double>(cols));
  const float mean_gx = static_cast<float>(LaneSum(gx, cols) / static_cast<double>(cols));
  for (int64_t c = 0; c < cols; ++c) {
    const float xhat = (x[c] - mean) * rstd;
    dx[c] = rstd * (g[c] - mean_g - xhat * mean_gx);
  }
}


// out[a][c][b][:] = in[a][b][c][:] (D contiguous floats each), in tiles of kTile x kTile (b, c) pairs so
// both sides are read and written in cache-sized runs. Every output element is written exactly once.
constexpr int64_t kTile = 16;

void SwapAxesTile(const float *__restrict in, float *__restrict out, int64_t a, int64_t b0, int64_t c0,
                  int64_t B, int64_t C, int64_t D) {
  const int64_t b1 = std::min(B, b0 + kTile);
  const int64_t c1 = std::min(C, c0 + kTile);
  const float *src = in + a * B * C * D;
  float *dst = out + a * B * C * D;
  if (D == 1) {  // a plain 2-D transpose: element copies (a memcpy call per float would dominate)
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t b = b0; b < b1; ++b) dst[c * B + b] = src[b * C + c];
    }
    return;
  }
  for (int64_t c = c0; c < c1; ++c) {
    for (int64_t b = b0; b < b1; ++b) {
      std::memcpy(dst + (c * B + b) * D, src + (b * C + c) * D, static_cast<size_t>(D) * sizeof(float));
    }
  }
}

// One row of softmax's gradient: dx = y * (dy - sum(dy * y)).
MSZOO_CLONES void SoftmaxGradRow(const float *__restrict y, const float *__restrict dy, float *__restrict dx,
                                 int64_t cols) {
  const float total = static_cast<float>(LaneDot(dy, y, cols));
  for (int64_t c = 0; c < cols; ++c) dx[c] = y[c] * (dy[c] - total);
}

// part[c] = sum of x[r][c] over rows [begin, end) (row-major, `cols` wide), in float, row by row: the inner
// loop runs along a row, so it vectorises over columns and reads memory in order.
MSZOO_CLONES void ColumnSumRows(const float *__restrict x, float *__restrict part, int64_t begin, int64_t end,
                                int64_t cols) {
  for (int64_t r = begin; r < end; ++r) {
    const float *row = x + r * cols;
    for (int64_t c = 0; c < cols; ++c) part[c] += row[c];
  }
}

// Twins' PEG on a channels-last map (H, W, C): a depthwise 3x3 convolution (stride 1, zero padding 1) plus
// bias plus the map. `taps` holds the kernel (C, 1, 3, 3) as 9 rows of C (tap t = 3i + j at rows t * C).

// The kernel's taps as (9, C) rows; mirrored (`flip`) for the input gradient, which is the same convolution
// of dy with the kernel turned by 180 degrees.
std::vector<float> PegTaps(const float *kernel, int64_t C, bool flip) {
  std::vector<float> taps(static_cast<size_t>(9 * C));
  for (int64_t c = 0; c < C; ++c) {
    for (int t = 0; t < 9; ++t) taps[(flip ? 8 - t : t) * C + c] = kernel[c * 9 + t];
  }
  return taps;
}

// Row h of the output: y[h][w][c] = x[h][w][c] + bias[c] + sum over taps of taps[3i + j][c] * x[h+i-1][w+j-1][c]
// (bias may be null). The inner loop runs along the channels, contiguous in both x and y.
MSZOO_CLONES void PegRow(const float *__restrict x, const float *__restrict taps, const float *__restrict bias,
                         float *__restrict y, int64_t h, int64_t H, int64_t W, int64_t C) {
  for (int64_t w = 0; w < W; ++w) {
    float *out = y + (h * W + w) * C;
    const float *self = x + (h * W + w) * C;
    for (int64_t c = 0; c < C; ++c) out[c] = self[c] + (bias != nullptr ? bias[c] : 0.0f);
    for (int64_t i = 0; i < 3; ++i) {
      const int64_t hh = h + i - 1;
      if (hh < 0 || hh >= H) continue;
      for (int64_t j = 0; j < 3; ++j) {
        const int64_t ww = w + j - 1;
        if (ww < 0 || ww >= W) continue;
        const float *src = x + (hh * W + ww) * C;
        const float *tap = taps + (3 * i + j) * C;
        for (int64_t c = 0; c < C; ++c) out[c] += tap[c] * src[c];
      }
    }
  }
}

// Row h's share of the kernel and bias gradients, added to `part` (10 rows of C): part[3i + j][c] +=
// dy[h][w][c] * x[h+i-1][w+j-1][c], part[9][c] += dy[h][w][c].
MSZOO_CLONES void PegGradWeightRow(const float *__restrict x, const float *__restrict dy, float *__restrict part,
                                   int64_t h, int64_t H, int64_t W, int64_t C) {
  for (int64_t w = 0; w < W; ++w) {
    const float *g = dy + (h * W + w) * C;
    float *dbias = part + 9 * C;
    for (int64_t c = 0; c < C; ++c) dbias[c] += g[c];
    for (int64_t i = 0; i < 3; ++i) {
      const int64_t hh = h + i - 1;
      if (hh < 0 || hh >= H) continue;
      for (int64_t j = 0; j < 3; ++j) {
        const int64_t ww = w + j - 1;
        if (ww < 0 || ww >= W) continue;
        const float *src = x + (hh * W + ww) * C;
        float *acc = part + (3 * i + j) * C;
        for (int64_t c = 0; c < C; ++c) acc[c] += g[c] * src[c];
      }
    }
  }
}

// True when a tensor of this rank and shape is a depthwise 3x3 kernel (C, 1, 3, 3) for C channels.
bool IsPegKernel(int ndim, const int64_t *shape, int64_t C) {
  return ndim == 4 && shape[0] == C && shape[1] == 1 && shape[2] == 3 && shape[3] == 3;
}

}  // namespace

extern "C" {

// inputs x (..., C), weight (C), bias (C), eps (1,); outputs y (..., C), mean (...), rstd (...).
// epsilon is a 1-element input tensor: AOT kernels have no attribute channel without an init function.
int MszooLayerNormForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                          void *stream, void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 7 || !AllFloat32(nparam, dtypes)) return 1;
  const auto *x = static_cast<const float *>(params[0]);
  const auto *w = static_cast<const float *>(params[1]);
  const auto *b = static_cast<const float *>(params[2]);
  const float eps = *static_cast<const float *>(params[3]);
  auto *y = static_cast<float *>(params[4]);
  auto *mean = static_cast<float *>(params[5]);
  auto *rstd = static_cast<float *>(params[6]);
  const int64_t cols = shapes[0][ndims[0] - 1], rows = Rows(ndims[0], shapes[0]);
  ParallelFor(rows, rows * cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      LayerNormRow(x + r * cols, w, b, y + r * cols, mean + r, rstd + r, cols, eps);
    }
  });
  return 0;
}

// inputs dy (..., C), x (..., C), mean (...), rstd (...), weight (C); outputs dx (..., C), dweight (C),
// dbias (C).
int MszooLayerNormBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                           void *stream, void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 8 || !AllFloat32(nparam, dtypes)) return 1;
  const auto *dy = static_cast<const float *>(params[0]);
  const auto *x = static_cast<const float *>(params[1]);
  const auto *mean = static_cast<const float *>(params[2]);
  const auto *rstd = static_cast<const float *>(params[3]);
  const auto *w = static_cast<const float *>(params[4]);
  auto *dx = static_cast<float *>(params[5]);
  auto *dw = static_cast<float *>(params[6]);
  auto *db = static_cast<float *>(params[7]);
  const int64_t cols = shapes[0][ndims[0] - 1], rows = Rows(ndims[0], shapes[0]);
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  std::vector<float> partial(static_cast<size_t>(blocks * 2 * cols), 0.0f);
  ParallelFor(blocks, rows * cols, [&](int64_t begin, int64_t end) {
    std::vector<float> scratch(static_cast<size_t>(2 * cols));
    for (int64_t k = begin; k < end; ++k) {
      float *dw_part = partial.data() + k * 2 * cols;
      const int64_t last = std::min(rows, (k + 1) * kBlockRows);
      for (int64_t r = k * kBlockRows; r < last; ++r) {
        LayerNormGradRow(dy + r * cols, x + r * cols, mean[r], rstd[r], w, dx + r * cols, dw_part,
                         dw_part + cols, scratch.data(), scratch.data() + cols, cols);
      }
    }
  });
  const std::vector<double> sum = SumBlocks(partial, blocks, 2 * cols);
  for (int64_t c = 0; c < cols; ++c) {
    dw[c] = static_cast<float>(sum[c]);
    db[c] = static_cast<float>(sum[cols + c]);
  }
  return 0;
}

// input x; output y = GELU(x).
int MszooGeluForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                     void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 2 || !AllFloat32(nparam, dtypes)) return 1;
  const auto *x = static_cast<const float *>(params[0]);
  auto *y = static_cast<float *>(params[1]);
  const int64_t n = Elements(ndims[0], shapes[0]);
  ParallelFor(n, n, [&](int64_t begin, int64_t end) { GeluForwardRange(x + begin, y + begin, end - begin); });
  return 0;
}

// inputs x, dy; output dx = dy * (Phi(x) + x * phi(x)).
int MszooGeluBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                      void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 3 || !AllFloat32(nparam, dtypes)) return 1;
  const auto *x = static_cast<const float *>(params[0]);
  const auto *dy = static_cast<const float *>(params[1]);
  auto *dx = static_cast<float *>(params[2]);
  const int64_t n = Elements(ndims[0], shapes[0]);
  ParallelFor(n, n, [&](int64_t begin, int64_t end) {
    GeluBackwardRange(x + begin, dy + begin, dx + begin, end - begin);
  });
  return 0;
}

// input x viewed as (A, B, C, D); output (A, C, B, D): the transpose that swaps two adjacent groups of axes.
// Unlike MindSpore's CPU Transpose it keeps no per-element index table for the life of the graph.
int MszooSwapAxes(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                  void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 2 || ndims[0] != 4 || !AllFloat32(nparam, dtypes)) return 1;
  const auto *x = static_cast<const float *>(params[0]);
  auto *y = static_cast<float *>(params[1]);
  const int64_t A = shapes[0][0], B = shapes[0][1], C = shapes[0][2], D = shapes[0][3];
  const int64_t tiles_b = (B + kTile - 1) / kTile, tiles_c = (C + kTile - 1) / kTile;
  const int64_t tiles = A * tiles_b * tiles_c;
  ParallelFor(tiles, A * B * C * D, [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t a = t / (tiles_b * tiles_c), rest = t % (tiles_b * tiles_c);
      SwapAxesTile(x, y, a, (rest / tiles_c) * kTile, (rest % tiles_c) * kTile, B, C, D);
    }
  });
  return 0;
}

// inputs y = softmax(x) and dy, both (..., L); output dx (..., L): softmax's gradient over the last axis in
// one pass per row (MindSpore's expands to a ReduceSum, a BroadcastTo of the sums, a Sub and two Muls).
int MszooSoftmaxBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                         void *stream, void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 3 || !AllFloat32(nparam, dtypes)) return 1;
  const auto *y = static_cast<const float *>(params[0]);
  const auto *dy = static_cast<const float *>(params[1]);
  auto *dx = static_cast<float *>(params[2]);
  const int64_t cols = shapes[0][ndims[0] - 1], rows = Rows(ndims[0], shapes[0]);
  ParallelFor(rows, rows * cols, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) SoftmaxGradRow(y + r * cols, dy + r * cols, dx + r * cols, cols);
  });
  return 0;
}

// input x (R, C); output (C): the sum over rows, i.e. a bias's gradient. Blocks of kBlockRows rows are
// summed in float, the blocks in double in a fixed order (as LayerNorm's weight gradient): the result does
// not depend on the thread count.
int MszooColumnSum(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                   void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 2 || ndims[0] != 2 || !AllFloat32(nparam, dtypes)) return 1;
  const auto *x = static_cast<const float *>(params[0]);
  auto *out = static_cast<float *>(params[1]);
  const int64_t rows = shapes[0][0], cols = shapes[0][1];
  const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
  std::vector<float> partial(static_cast<size_t>(blocks * cols), 0.0f);
  ParallelFor(blocks, rows * cols, [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) {
      ColumnSumRows(x, partial.data() + k * cols, k * kBlockRows, std::min(rows, (k + 1) * kBlockRows), cols);
    }
  });
  const std::vector<double> sum = SumBlocks(partial, blocks, cols);
  for (int64_t c = 0; c < cols; ++c) out[c] = static_cast<float>(sum[c]);
  return 0;
}

// inputs x (B, H, W, C) (a token map, channels last), kernel (C, 1, 3, 3), bias (C); output y (B, H, W, C):
// Twins' PEG, x + bias + the depthwise 3x3 convolution of x (stride 1, zero padding 1). On the tokens' own
// layout: no transposes to NCHW and back, and no oneDNN NCHW depthwise convolution (a reference kernel
// wherever AVX-512 is allowed).
int MszooPegForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                    void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 4 || ndims[0] != 4 || !AllFloat32(nparam, dtypes)) return 1;
  const int64_t B = shapes[0][0], H = shapes[0][1], W = shapes[0][2], C = shapes[0][3];
  if (!IsPegKernel(ndims[1], shapes[1], C) || ndims[2] != 1 || shapes[2][0] != C) return 1;
  const auto *x = static_cast<const float *>(params[0]);
  const std::vector<float> taps = PegTaps(static_cast<const float *>(params[1]), C, false);
  const auto *bias = static_cast<const float *>(params[2]);
  auto *y = static_cast<float *>(params[3]);
  const int64_t map = H * W * C;
  ParallelFor(B * H, B * map * 9, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) PegRow(x + r / H * map, taps.data(), bias, y + r / H * map, r % H, H, W, C);
  });
  return 0;
}

// inputs dy (B, H, W, C), x (B, H, W, C), kernel (C, 1, 3, 3); outputs dx (B, H, W, C), dkernel (C, 1, 3, 3),
// dbias (C): MszooPegForward's gradient. dx is dy plus dy convolved with the turned kernel; the kernel and
// bias gradients are summed per map row in float and the rows in double in a fixed order (no result depends
// on the thread count).
int MszooPegBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                     void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 6 || ndims[0] != 4 || !AllFloat32(nparam, dtypes)) return 1;
  const int64_t B = shapes[0][0], H = shapes[0][1], W = shapes[0][2], C = shapes[0][3];
  if (!IsPegKernel(ndims[2], shapes[2], C)) return 1;
  const auto *dy = static_cast<const float *>(params[0]);
  const auto *x = static_cast<const float *>(params[1]);
  const std::vector<float> turned = PegTaps(static_cast<const float *>(params[2]), C, true);
  auto *dx = static_cast<float *>(params[3]);
  auto *dkernel = static_cast<float *>(params[4]);
  auto *dbias = static_cast<float *>(params[5]);
  const int64_t map = H * W * C, rows = B * H, width = 10 * C;
  std::vector<float> partial(static_cast<size_t>(rows * width), 0.0f);
  ParallelFor(rows, B * map * 18, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      PegRow(dy + r / H * map, turned.data(), nullptr, dx + r / H * map, r % H, H, W, C);
      PegGradWeightRow(x + r / H * map, dy + r / H * map, partial.data() + r * width, r % H, H, W, C);
    }
  });
  const std::vector<double> sum = SumBlocks(partial, rows, width);
  for (int64_t c = 0; c < C; ++c) {
    for (int t = 0; t < 9; ++t) dkernel[c * 9 + t] = static_cast<float>(sum[t * C + c]);
    dbias[c] = static_cast<float>(sum[9 * C + c]);
  }
  return 0;
}

// inputs x (B, C, H, W), geometry (6,) = kh, kw, sh, sw, ph, pw; output rows (B, H' * W', C * kh * kw):
// torch.nn.Unfold with zero padding, each window one row (the matrix a convolution multiplies). One pass,
// instead of a Pad, a space-to-depth transpose, slices and concatenations.
int MszooUnfoldForward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                       void *stream, void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 3 || ndims[0] != 4 || !AllFloat32(nparam, dtypes)) return 1;
  const int64_t B = shapes[0][0], C = shapes[0][1], H = shapes[0][2], W = shapes[0][3];
  UnfoldGeometry g;
  if (!ReadUnfoldGeometry(ndims[1], shapes[1], static_cast<const float *>(params[1]), H, W, &g)) return 1;
  const int64_t windows = g.oh * g.ow, width = C * g.kh * g.kw;
  if (Elements(ndims[2], shapes[2]) != B * windows * width) return 1;
  const auto *x = static_cast<const float *>(params[0]);
  auto *rows = static_cast<float *>(params[2]);
  ParallelFor(B * windows, B * windows * width, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / windows, window = r % windows;
      UnfoldWindow(x + b * C * H * W, rows + r * width, window / g.ow, window % g.ow, C, H, W, g);
    }
  });
  return 0;
}

// inputs drows (B, H' * W', C * kh * kw), x (B, C, H, W) (for its shape), geometry (6,); output dx (B, C, H, W):
// MszooUnfoldForward's gradient, each pixel the sum of the window values read from it (a gather: no two
// threads write one pixel, and the order of the sum is fixed).
int MszooUnfoldBackward(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes,
                        void *stream, void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 4 || ndims[1] != 4 || !AllFloat32(nparam, dtypes)) return 1;
  const int64_t B = shapes[1][0], C = shapes[1][1], H = shapes[1][2], W = shapes[1][3];
  UnfoldGeometry g;
  if (!ReadUnfoldGeometry(ndims[2], shapes[2], static_cast<const float *>(params[2]), H, W, &g)) return 1;
  const int64_t per_sample = g.oh * g.ow * C * g.kh * g.kw;
  if (Elements(ndims[0], shapes[0]) != B * per_sample) return 1;
  const auto *drows = static_cast<const float *>(params[0]);
  auto *dx = static_cast<float *>(params[3]);
  ParallelFor(B * C * H, B * per_sample, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / (C * H), c = r / H % C, h = r % H;
      UnfoldGradRow(drows + b * per_sample, dx + r * W, c, h, C, W, g);
    }
  });
  return 0;
}

// inputs x (B, ...), scale (B, 1, ..., 1); output y (B, ...) = x * scale, each sample by its own factor
// (DropPath's mask; its gradient is the same product with dy). The same float products as a broadcasting Mul,
// without writing the broadcast mask first.
int MszooSampleScale(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                     void *extra) {
  (void)stream;
  (void)extra;
  if (nparam != 3 || ndims[0] < 1 || !AllFloat32(nparam, dtypes)) return 1;
  const int64_t samples = Elements(ndims[1], shapes[1]), total = Elements(ndims[0], shapes[0]);
  if (shapes[0][0] != samples || Elements(ndims[2], shapes[2]) != total) return 1;
  const int64_t each = samples > 0 ? total / samples : 0;
  const auto *x = static_cast<const float *>(params[0]);
  const auto *scale = static_cast<const float *>(params[1]);
  auto *y = static_cast<float *>(params[2]);
  ParallelFor(samples, total, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) ScaleRange(x + b * each, scale[b], y + b * each, each);
  });
  return 0;
}

// inputs: one or more float32 tensors (a model's gradients); output (1,): the sum of the squares of all their
// elements, the global gradient norm's square. One pass over the gradients instead of a Mul and a ReduceSum
// per tensor and an AddN. Each tensor is cut into blocks of kSquareBlock elements; the blocks' sums are added
// in double in a fixed order, so the result does not depend on the thread count.
int MszooSquareSum(int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *stream,
                   void *extra) {
  (void)stream;
  (void)extra;
  if (nparam < 2 || !AllFloat32(nparam, dtypes)) return 1;
  const int inputs = nparam - 1;
  std::vector<int64_t> first_block(static_cast<size_t>(inputs) + 1, 0), sizes(static_cast<size_t>(inputs));
  for (int i = 0; i < inputs; ++i) {
    sizes[i] = Elements(ndims[i], shapes[i]);
    first_block[i + 1] = first_block[i] + (sizes[i] + kSquareBlock - 1) / kSquareBlock;
  }
  const int64_t blocks = first_block[inputs];
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
  ParallelFor(blocks, blocks * kSquareBlock, [&](int64_t begin, int64_t end) {
    const auto after = std::upper_bound(first_block.begin(), first_block.end(), begin);
    int i = static_cast<int>(after - first_block.begin()) - 1;
    for (int64_t k = begin; k < end; ++k) {
      while (k >= first_block[i + 1]) ++i;
      const int64_t start = (k - first_block[i]) * kSquareBlock;
      partial[k] = SquareSumRange(static_cast<const float *>(params[i]) + start,
                                  std::min(kSquareBlock, sizes[i] - start));
    }
  });
  double sum = 0.0;
  for (double part : partial) sum += part;
  *static_cast<float *>(params[inputs]) = static_cast<float>(sum);
  return 0;
}

}  // extern "C"

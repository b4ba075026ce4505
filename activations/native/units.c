/* One-pass float32 CPU kernels of the noisy hard units and nrelu (activations/native/__init__.py).

   The formulas are those of activations/hard_blocks.py and the nrelu blocks of
   activations/noisy_relu.py, element by element, so a unit reads x and the noise once and
   writes its output once instead of a dozen passes over memory. Each call handles a range of
   rows on one thread; the caller cuts the tensor into ranges that do not depend on the thread
   count and adds the partial sums of dL/dp in range order, so a seed gives the same bits on
   one thread or many. Built with -ffp-contract=off: forward and backward evaluate the same
   expressions to the same bits (nrelu's backward mask is forward's).
*/
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

/* e^z by Cephes' expf: z = n ln2 + r, |r| <= ln2/2, a degree-7 polynomial in r, times 2^n.
   About 1 ulp; written without calls or branches so that the loops vectorise. exp_f(0) = 1
   exactly, so q = sigmoid(0) - 1/2 is exactly 0 in the linear regime. */
static inline float exp_f(float z) {
    z = z < -87.0f ? -87.0f : (z > 88.0f ? 88.0f : z);
    float n = floorf(z * 1.44269504088896341f + 0.5f);
    float r = z - n * 0.693359375f - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { int32_t i; float f; } scale = {((int32_t)n + 127) << 23};
    return p * scale.f;
}

static inline float sigmoid_f(float z) { return 1.0f / (1.0f + exp_f(-z)); }

/* softshrink(x, threshold): x - t above t, x + t below -t, 0 between. */
static inline float shrink_f(float x, float t) {
    return x > t ? x - t : (x < -t ? x + t : 0.0f);
}

/* phi = k*(x - alpha*s + coefk * q*|q| * xi) + offset, q = sigmoid(pk*s) - 1/2, written over
   xi. Rows [r0, r1) of width elements; pk[j] = -k*|p_j| per column (a per-channel p). */
void hard_forward(const float *restrict x, float *restrict y, const float *restrict pk,
                  int64_t r0, int64_t r1, int64_t width, float thr, float alpha, float coefk,
                  float k, float off, int affine) {
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * width;
        float *yr = y + r * width;
        for (int64_t j = 0; j < width; j++) {
            float xv = xr[j], s = shrink_f(xv, thr);
            float q = sigmoid_f(pk[j] * s) - 0.5f;
            float v = (xv - alpha * s) + coefk * (q * fabsf(q)) * yr[j];
            yr[j] = affine ? v * k + off : v;
        }
    }
}

/* The same for a flat tensor with one scalar p: elements [i0, i1). */
void hard_forward_flat(const float *restrict x, float *restrict y, float pk, int64_t i0,
                       int64_t i1, float thr, float alpha, float coefk, float k, float off,
                       int affine) {
    for (int64_t i = i0; i < i1; i++) {
        float xv = x[i], s = shrink_f(xv, thr);
        float q = sigmoid_f(pk * s) - 0.5f;
        float v = (xv - alpha * s) + coefk * (q * fabsf(q)) * y[i];
        y[i] = affine ? v * k + off : v;
    }
}

/* dL/dx = g * (base + sr*R + lin*[s == 0]) over xi, R = |q|*(1 - 4q^2)*xi; and, when part is
   not NULL, part[j] = sum over the rows of g*R*s per column (in double). */
void hard_backward(const float *restrict x, float *restrict y, const float *restrict g,
                   const float *restrict pk, const float *restrict sr, int64_t r0, int64_t r1,
                   int64_t width, float thr, float base, float lin, double *restrict part) {
    if (part)
        for (int64_t j = 0; j < width; j++) part[j] = 0.0;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = x + r * width, *gr = g + r * width;
        float *yr = y + r * width;
        for (int64_t j = 0; j < width; j++) {
            float s = shrink_f(xr[j], thr);
            float q = sigmoid_f(pk[j] * s) - 0.5f;
            float rr = (1.0f - 4.0f * (q * q)) * fabsf(q) * yr[j];
            float gv = gr[j];
            if (part) part[j] += (double)(gv * rr * s);
            yr[j] = gv * (base + sr[j] * rr + (s == 0.0f ? lin : 0.0f));
        }
    }
}

#define LANES 16

/* The same for a flat tensor with one scalar p; *part = sum of g*R*s over [i0, i1), added
   in LANES fixed lanes (vectorised) and the lanes in order. */
void hard_backward_flat(const float *restrict x, float *restrict y, const float *restrict g,
                        float pk, float sr, int64_t i0, int64_t i1, float thr, float base,
                        float lin, double *restrict part) {
    double acc[LANES] = {0};
    int64_t i = i0;
    for (; i + LANES <= i1; i += LANES) {
        for (int l = 0; l < LANES; l++) {
            float s = shrink_f(x[i + l], thr);
            float q = sigmoid_f(pk * s) - 0.5f;
            float rr = (1.0f - 4.0f * (q * q)) * fabsf(q) * y[i + l];
            float gv = g[i + l];
            acc[l] += (double)(gv * rr * s);
            y[i + l] = gv * (base + sr * rr + (s == 0.0f ? lin : 0.0f));
        }
    }
    for (int l = 0; i < i1; i++, l++) {
        float s = shrink_f(x[i], thr);
        float q = sigmoid_f(pk * s) - 0.5f;
        float rr = (1.0f - 4.0f * (q * q)) * fabsf(q) * y[i];
        float gv = g[i];
        acc[l] += (double)(gv * rr * s);
        y[i] = gv * (base + sr * rr + (s == 0.0f ? lin : 0.0f));
    }
    if (part) {
        double total = 0.0;
        for (int l = 0; l < LANES; l++) total += acc[l];
        *part = total;
    }
}

/* nrelu: pre = x + scale*sqrt(sigmoid(x))*z; forward max(0, pre) over z. */
void nrelu_forward(const float *restrict x, float *restrict y, float scale, int64_t i0,
                   int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
        float xv = x[i], root = sqrtf(sigmoid_f(xv));
        float pre = xv + scale * root * y[i];
        y[i] = pre > 0.0f ? pre : 0.0f;
    }
}

/* nrelu backward over z: g * [pre > 0] * (1 + z * scale/2 * sqrt(s)*(1 - s)), z held fixed. */
void nrelu_backward(const float *restrict x, float *restrict y, const float *restrict g,
                    float scale, int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
        float xv = x[i], sv = sigmoid_f(xv), root = sqrtf(sv), z = y[i];
        float pre = xv + scale * root * z;
        float local = 1.0f + (root - root * sv) * z * (0.5f * scale);
        y[i] = pre > 0.0f ? g[i] * local : 0.0f;
    }
}

/* ---- Small tensors (a recurrent gate's): the formulas of activations/hard_dense.py ----
   x is [rows, width] with row stride ld (an LSTM's gates are a column slice); s, xi, y, r
   and g are contiguous. Everything is one thread: the caller's tensor is too small to split. */

/* s = softshrink(x, thr), contiguous; returns how many s != 0 (the saturated elements). */
int64_t hard_shrink(const float *restrict x, int64_t ld, float *restrict s, int64_t rows,
                    int64_t width, float thr) {
    int64_t n = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld;
        float *sr = s + r * width;
        int32_t count = 0;
        for (int64_t j = 0; j < width; j++) {
            float xv = xr[j], v = shrink_f(xv, thr);
            sr[j] = v;
            count += (xv > thr || xv < -thr) ? 1 : 0;
        }
        n += count;
    }
    return n;
}

/* out[i] = the next of draws where s[i] != 0, in order, else 0: with AVX-512 16 at a time
   (vexpandps), else one at a time without a branch (a saturated element's position is
   random: a branch on it mispredicts). The same values either way. */
static void expand(const float *restrict s, const float *restrict draws, int64_t n,
                   float *restrict out, int64_t numel) {
    int64_t i = 0, next = 0;
#if defined(__AVX512F__)
    for (; i + 16 <= numel; i += 16) {
        __mmask16 m = _mm512_cmp_ps_mask(_mm512_loadu_ps(s + i), _mm512_setzero_ps(), _CMP_NEQ_UQ);
        _mm512_storeu_ps(out + i, _mm512_maskz_expandloadu_ps(m, draws + next));
        next += __builtin_popcount((unsigned)m);
    }
#endif
    for (; i < numel; i++) {
        int64_t nz = s[i] != 0.0f;
        out[i] = draws[next < n ? next : n - 1] * (float)nz; /* n >= 1: nothing drawn, no call */
        next += nz;
    }
}

/* pk[j] = -k*|p[j*pstride]|: p is a row (pstride 1) or a scalar (pstride 0). NULL when out of
   memory. */
static float *p_row(const float *p, int64_t pstride, int64_t width, float k) {
    float *pk = malloc((size_t)(width > 0 ? width : 1) * sizeof(float));
    if (pk)
        for (int64_t j = 0; j < width; j++) pk[j] = -k * fabsf(p[j * pstride]);
    return pk;
}

#if defined(__AVX512F__)
/* hard_small_forward where only the n saturated elements drew, with AVX-512: the linear
   elements (s = 0, so g = 1/2 and q = r = 0) by the same formula with g = 1/2 and no
   exponential; the saturated ones gathered in row-major order (vcompressps, the order of
   their draws), computed together, and put back. The same values as the loop over every
   element (exp_f(0) is 1 exactly), at a fraction of its exponentials. */
static int saturated_forward(const float *restrict x, int64_t ld, const float *restrict s,
                             const float *restrict draws, int64_t n, float *restrict r_out,
                             const float *restrict pk, float *restrict y, int64_t rows,
                             int64_t width, float alpha, float coefk, float k, float off,
                             int affine) {
    float *buf = malloc((size_t)n * 4 * sizeof(float));
    int32_t *at = malloc((size_t)n * sizeof(int32_t));
    if (!buf || !at) {
        free(buf);
        free(at);
        return -1;
    }
    float *sc = buf, *xc = buf + n, *pc = buf + 2 * n, *rc = buf + 3 * n;
    int64_t m = 0;
    const __m512i lanes = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld, *sr = s + r * width;
        float *yr = y + r * width, *rr = r_out + r * width;
        for (int64_t j = 0; j < width; j++) {
            float sv = sr[j], g = 0.5f, q = g - 0.5f, a = fabsf(q) * 0.0f;
            float v = (xr[j] - alpha * sv) + coefk * (q * a);
            yr[j] = affine ? v * k + off : v;
            rr[j] = a * ((1.0f - g) * g);
        }
        for (int64_t j = 0; j < width && m < n; j += 16) {
            __mmask16 tail = width - j >= 16 ? 0xFFFF : (__mmask16)((1u << (width - j)) - 1u);
            __m512 sv = _mm512_maskz_loadu_ps(tail, sr + j);
            __mmask16 hit = _mm512_mask_cmp_ps_mask(tail, sv, _mm512_setzero_ps(), _CMP_NEQ_UQ);
            if (!hit) continue;
            _mm512_mask_compressstoreu_ps(sc + m, hit, sv);
            _mm512_mask_compressstoreu_ps(xc + m, hit, _mm512_maskz_loadu_ps(tail, xr + j));
            _mm512_mask_compressstoreu_ps(pc + m, hit, _mm512_maskz_loadu_ps(tail, pk + j));
            __m512i flat = _mm512_add_epi32(_mm512_set1_epi32((int32_t)(r * width + j)), lanes);
            _mm512_mask_compressstoreu_epi32(at + m, hit, flat);
            m += __builtin_popcount((unsigned)hit);
        }
    }
    for (int64_t i = 0; i < m; i++) {  /* the loop of hard_small_forward, on the gathered */
        float sv = sc[i], g = sigmoid_f(pc[i] * sv), q = g - 0.5f;
        float a = fabsf(q) * draws[i];
        float v = (xc[i] - alpha * sv) + coefk * (q * a);
        xc[i] = affine ? v * k + off : v;
        rc[i] = a * ((1.0f - g) * g);
    }
    for (int64_t i = 0; i < m; i++) {
        y[at[i]] = xc[i];
        r_out[at[i]] = rc[i];
    }
    free(buf);
    free(at);
    return m == n ? 0 : -2;
}
#endif

/* phi = k*(x - alpha*s + coefk*q*|q|*xi) + off with g = sigmoid(pk*s), q = g - 1/2; and,
   written over xi when keep_r, r = |q|*xi*g*(1 - g) (what backward needs: it holds xi).
   With draws (n_draws >= 1 of them), xi is first filled with them where s != 0, in row-major
   order, else 0 (the n draws of the saturated elements). Returns -1 when out of memory, else 0. */
int hard_small_forward(const float *restrict x, int64_t ld, const float *restrict s,
                       const float *restrict draws, int64_t n_draws, float *restrict xi,
                       const float *restrict p, int64_t pstride, float *restrict y,
                       int64_t rows, int64_t width, float alpha, float coefk, float k,
                       float off, int affine, int keep_r) {
    float *pk = p_row(p, pstride, width, k);
    if (!pk) return -1;
#if defined(__AVX512F__)
    if (draws && keep_r && rows * width <= INT32_MAX) {
        int status = saturated_forward(x, ld, s, draws, n_draws, xi, pk, y, rows, width, alpha,
                                       coefk, k, off, affine);
        free(pk);
        return status;
    }
#endif
    if (draws) expand(s, draws, n_draws, xi, rows * width);
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * ld, *sr = s + r * width;
        float *xir = xi + r * width, *yr = y + r * width;
        for (int64_t j = 0; j < width; j++) {
            float sv = sr[j], g = sigmoid_f(pk[j] * sv), q = g - 0.5f;
            float a = fabsf(q) * xir[j];
            float v = (xr[j] - alpha * sv) + coefk * (q * a);
            yr[j] = affine ? v * k + off : v;
            if (keep_r) xir[j] = a * ((1.0f - g) * g);
        }
    }
    free(pk);
    return 0;
}

/* dL/dx = k*(g - alpha*g*[s != 0]) + slope*|p|*g*r into out, with r as forward kept it in
   rx or, when from_xi, computed from the xi in rx (first into out: a condition inside the
   loops would make them compute it always). When dp is not NULL, dp = factor*sgn(p)*sum of
   g*r*s over the rows (summed in double, in row order), per column (pstride 1) or over
   everything (pstride 0). Returns -1 when out of memory, else 0. */
int hard_small_backward(const float *restrict s, const float *restrict rx,
                        const float *restrict g, const float *restrict p, int64_t pstride,
                        float *out, float *restrict dp, int64_t rows, int64_t width,
                        float alpha, float k, float slope, float factor, int from_xi) {
    float *pk = p_row(p, pstride, width, k), slope_k = -slope / k;
    double *part = dp ? calloc((size_t)(width > 0 ? width : 1), sizeof(double)) : NULL;
    if (!pk || (dp && !part)) {
        free(pk);
        free(part);
        return -1;
    }
    for (int64_t r = 0; r < rows; r++) {
        const float *sr = s + r * width, *gr = g + r * width, *rr = rx + r * width;
        float *outr = out + r * width;
        if (from_xi) {
            for (int64_t j = 0; j < width; j++) {
                float gg = sigmoid_f(pk[j] * sr[j]);
                outr[j] = fabsf(gg - 0.5f) * rr[j] * ((1.0f - gg) * gg);
            }
            rr = outr;
        }
        if (part)
            for (int64_t j = 0; j < width; j++) part[j] += (double)(gr[j] * rr[j] * sr[j]);
        /* slope*|p| = (-slope/k)*pk (exact for k a power of 2); rr may be outr: each j reads,
           then writes */
        for (int64_t j = 0; j < width; j++) {
            float sv = sr[j], gv = gr[j], gxr = gv * rr[j];
            float gx = gv - (sv != 0.0f ? alpha * gv : 0.0f);
            outr[j] = k * gx + slope_k * pk[j] * gxr;
        }
    }
    if (part) {
        if (pstride == 0) {
            double total = 0.0;
            for (int64_t j = 0; j < width; j++) total += part[j];
            float sgn = (p[0] > 0.0f) - (p[0] < 0.0f);
            dp[0] = (float)total * sgn * factor;
        } else {
            for (int64_t j = 0; j < width; j++) {
                float sgn = (p[j] > 0.0f) - (p[j] < 0.0f);
                dp[j] = (float)part[j] * sgn * factor;
            }
        }
    }
    free(pk);
    free(part);
    return 0;
}

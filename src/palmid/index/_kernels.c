/*
 * Hamming kernels of palmid's 1:N index (the Python side is palmid/index/kernels.py; read it first).
 *
 * scan_min        the exhaustive first pass: for every enrolled row, the smallest Hamming distance between its
 *                 scan code and any of the probe's shifted scan codes. Rows are stored in groups of 8
 *                 ("lanes"), word-major inside a group (group g, word w, lane j = row 8g + j, word w), so one
 *                 512-bit register holds word w of 8 rows and every probe word is broadcast against it: the
 *                 minimum over all the probe's codes costs one pass over memory.
 * min_rows        the same minimum for a list of gathered rows of a row-major code array (the shortlist).
 * select_rows     the rows of a distance array below a radius (the exact k smallest, with the histogram that
 *                 scan_min keeps while it scans).
 *
 * Implementations, all with identical results: AVX-512 (F + BW + VPOPCNTDQ), scalar with the POPCNT instruction
 * (x86-64 without AVX-512), and plain portable C. `kernel` = 0 picks the best this CPU has (checked at run time:
 * the build uses no -march flags), 1 forces the portable one, 2 POPCNT, 3 AVX-512 (an explicit choice the CPU lacks
 * raises ValueError; tests compare every available one). The GIL is released while they run, so Python threads can
 * split a scan.
 * Arguments are checked here as well as in Python: a wrong size raises ValueError, never reads out of bounds.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PALMID_X86 1
#include <immintrin.h>
#endif

#define LANES 8
#define PROBE_BLOCK 8
#define MAX_WORDS 64     /* scan codes up to 512 bytes */
#define MAX_ROW_BYTES 1024
#define MAX_PROBES 4096
#define PREFETCH_ROWS 6

/* What the caller asks for (the `kernel` argument) and what runs. An explicit choice the CPU lacks is an error. */
enum { KERNEL_BEST = 0, KERNEL_PORTABLE = 1, KERNEL_POPCNT = 2, KERNEL_AVX512 = 3 };
enum { IMPL_PORTABLE, IMPL_POPCNT, IMPL_AVX512 };

/* ------------------------------------------------------------------------------------------- portable */
/* The scalar kernels, compiled twice: plain C, and (x86) with the POPCNT instruction, which the plain build may
 * not assume. */
#define SCAN_MIN_SCALAR(NAME, ATTRIBUTE)                                                                          \
    ATTRIBUTE static void NAME(const uint64_t *codes, Py_ssize_t total_words, Py_ssize_t group_start,              \
                               Py_ssize_t group_stop, Py_ssize_t words, const uint64_t *probes, Py_ssize_t n_probes,\
                               uint16_t *out) {                                                                   \
        for (Py_ssize_t g = group_start; g < group_stop; g++) {                                                   \
            const uint64_t *base = codes + g * total_words * LANES;                                               \
            unsigned best[LANES];                                                                                 \
            for (int lane = 0; lane < LANES; lane++) best[lane] = 0xFFFFu;                                        \
            for (Py_ssize_t p = 0; p < n_probes; p++) {                                                           \
                const uint64_t *probe = probes + p * total_words;                                                 \
                unsigned d[LANES] = {0};                                                                          \
                for (Py_ssize_t w = 0; w < words; w++) {                                                          \
                    const uint64_t q = probe[w];                                                                  \
                    const uint64_t *x = base + w * LANES;                                                         \
                    for (int lane = 0; lane < LANES; lane++) d[lane] += (unsigned)__builtin_popcountll(x[lane] ^ q);\
                }                                                                                                 \
                for (int lane = 0; lane < LANES; lane++)                                                          \
                    if (d[lane] < best[lane]) best[lane] = d[lane];                                               \
            }                                                                                                     \
            for (int lane = 0; lane < LANES; lane++) out[(g - group_start) * LANES + lane] = (uint16_t)best[lane]; \
        }                                                                                                         \
    }

#define MIN_ROWS_SCALAR(NAME, ATTRIBUTE)                                                                          \
    ATTRIBUTE static void NAME(const uint8_t *codes, Py_ssize_t row_bytes, Py_ssize_t width, const int64_t *rows,  \
                               Py_ssize_t n_rows, const uint8_t *probes, Py_ssize_t n_probes, int32_t *out) {     \
        for (Py_ssize_t i = 0; i < n_rows; i++) {                                                                 \
            const uint8_t *row = codes + rows[i] * row_bytes;                                                     \
            int32_t best = INT32_MAX;                                                                             \
            for (Py_ssize_t p = 0; p < n_probes; p++) {                                                           \
                const uint8_t *probe = probes + p * width;                                                        \
                int32_t d = 0;                                                                                    \
                Py_ssize_t b = 0;                                                                                 \
                for (; b + 8 <= width; b += 8) {                                                                  \
                    uint64_t x, y;                                                                                \
                    memcpy(&x, row + b, 8);                                                                       \
                    memcpy(&y, probe + b, 8);                                                                     \
                    d += __builtin_popcountll(x ^ y);                                                             \
                }                                                                                                 \
                for (; b < width; b++) d += __builtin_popcount((unsigned)(row[b] ^ probe[b]));                    \
                if (d < best) best = d;                                                                           \
            }                                                                                                     \
            out[i] = best;                                                                                        \
        }                                                                                                         \
    }

#define NO_ATTRIBUTE
SCAN_MIN_SCALAR(scan_min_portable, NO_ATTRIBUTE)
MIN_ROWS_SCALAR(min_rows_portable, NO_ATTRIBUTE)
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define POPCNT_TARGET __attribute__((target("popcnt")))
SCAN_MIN_SCALAR(scan_min_popcnt, POPCNT_TARGET)
MIN_ROWS_SCALAR(min_rows_popcnt, POPCNT_TARGET)
#endif

/* ------------------------------------------------------------------------------------------- AVX-512 */
#ifdef PALMID_X86
#define AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vpopcntdq")))

static int has_avx512(void) { /* after __builtin_cpu_init (features() calls it) */
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vpopcntdq");
}

/* One block of B probe codes against groups [group_start, group_stop): B accumulators stay in registers. */
#define DEFINE_SCAN_BLOCK(B)                                                                                     \
    AVX512_TARGET static void scan_block_##B(const uint64_t *codes, Py_ssize_t total_words, Py_ssize_t group_start, \
                                             Py_ssize_t group_stop, Py_ssize_t words, const uint64_t *pb,         \
                                             uint16_t *out, int first) {                                          \
        for (Py_ssize_t g = group_start; g < group_stop; g++) {                                                   \
            const uint64_t *base = codes + g * total_words * LANES;                                               \
            __m512i acc[B];                                                                                       \
            for (int j = 0; j < B; j++) acc[j] = _mm512_setzero_si512();                                          \
            for (Py_ssize_t w = 0; w < words; w++) {                                                              \
                __m512i x = _mm512_loadu_si512((const void *)(base + w * LANES));                                 \
                for (int j = 0; j < B; j++) {                                                                     \
                    __m512i p = _mm512_set1_epi64((long long)pb[j * total_words + w]);                            \
                    acc[j] = _mm512_add_epi64(acc[j], _mm512_popcnt_epi64(_mm512_xor_si512(x, p)));               \
                }                                                                                                 \
            }                                                                                                     \
            __m512i best = acc[0];                                                                                \
            for (int j = 1; j < B; j++) best = _mm512_min_epu64(best, acc[j]);                                    \
            __m128i *slot = (__m128i *)(out + (g - group_start) * LANES);                                         \
            __m128i d = _mm512_cvtepi64_epi16(best);                                                              \
            _mm_storeu_si128(slot, first ? d : _mm_min_epu16(d, _mm_loadu_si128(slot)));                          \
        }                                                                                                         \
    }
DEFINE_SCAN_BLOCK(1)
DEFINE_SCAN_BLOCK(2)
DEFINE_SCAN_BLOCK(3)
DEFINE_SCAN_BLOCK(4)
DEFINE_SCAN_BLOCK(5)
DEFINE_SCAN_BLOCK(6)
DEFINE_SCAN_BLOCK(7)
DEFINE_SCAN_BLOCK(8)

typedef void (*scan_block_fn)(const uint64_t *, Py_ssize_t, Py_ssize_t, Py_ssize_t, Py_ssize_t, const uint64_t *,
                              uint16_t *, int);
static const scan_block_fn scan_blocks[PROBE_BLOCK + 1] = {
    NULL, scan_block_1, scan_block_2, scan_block_3, scan_block_4, scan_block_5, scan_block_6, scan_block_7,
    scan_block_8};

/* Probe codes in blocks of 8 (the last block smaller) over a slab of groups small enough to stay in the L2 cache
 * while every block reads it. */
static void scan_min_avx512(const uint64_t *codes, Py_ssize_t total_words, Py_ssize_t group_start,
                            Py_ssize_t group_stop, Py_ssize_t words, const uint64_t *probes, Py_ssize_t n_probes,
                            uint16_t *out) {
    for (Py_ssize_t p = 0; p < n_probes; p += PROBE_BLOCK) {
        Py_ssize_t block = n_probes - p < PROBE_BLOCK ? n_probes - p : PROBE_BLOCK;
        scan_blocks[block](codes, total_words, group_start, group_stop, words, probes + p * total_words, out, p == 0);
    }
}

/* The lane sums of 8 registers in one register (lanes in the order v0 v4 v1 v5 v2 v6 v3 v7: only their minimum
 * is used). */
AVX512_TARGET static inline __m512i sum8(const __m512i v[8]) {
    /* level 1: pairs (0,1) (2,3) (4,5) (6,7): interleave 256-bit halves */
    __m512i a[4];
    for (int j = 0; j < 4; j++) {
        __m512i lo = _mm512_shuffle_i64x2(v[2 * j], v[2 * j + 1], 0x44); /* v0.lo, v1.lo */
        __m512i hi = _mm512_shuffle_i64x2(v[2 * j], v[2 * j + 1], 0xEE); /* v0.hi, v1.hi */
        a[j] = _mm512_add_epi64(lo, hi); /* lanes 0-3: v0 partial (4), lanes 4-7: v1 partial (4) */
    }
    __m512i b[2];
    for (int j = 0; j < 2; j++) {
        __m512i lo = _mm512_shuffle_i64x2(a[2 * j], a[2 * j + 1], 0x88); /* 128-bit blocks 0,2 of each */
        __m512i hi = _mm512_shuffle_i64x2(a[2 * j], a[2 * j + 1], 0xDD); /* blocks 1,3 */
        b[j] = _mm512_add_epi64(lo, hi); /* each 128-bit block: 2 partials of one register */
    }
    __m512i lo = _mm512_unpacklo_epi64(b[0], b[1]);
    __m512i hi = _mm512_unpackhi_epi64(b[0], b[1]);
    return _mm512_add_epi64(lo, hi);
}

AVX512_TARGET static void min_rows_avx512(const uint8_t *codes, Py_ssize_t row_bytes, Py_ssize_t width,
                                          const int64_t *rows, Py_ssize_t n_rows, const uint8_t *probes,
                                          Py_ssize_t n_blocks, Py_ssize_t probe_stride, int32_t *out) {
    const Py_ssize_t chunks = (width + 63) / 64;
    const Py_ssize_t tail = width - (chunks - 1) * 64;
    const __mmask64 tail_mask = tail >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << tail) - 1);
    const Py_ssize_t lines = (width + 63) / 64 + 1;
    for (Py_ssize_t i = 0; i < n_rows; i++) {
        if (i + PREFETCH_ROWS < n_rows) { /* shortlist rows are scattered: fetch ahead, the latency dominates */
            const char *ahead = (const char *)(codes + rows[i + PREFETCH_ROWS] * row_bytes);
            for (Py_ssize_t l = 0; l < lines; l++) _mm_prefetch(ahead + 64 * l, _MM_HINT_T0);
        }
        const uint8_t *row = codes + rows[i] * row_bytes;
        __m512i x[MAX_ROW_BYTES / 64];
        for (Py_ssize_t c = 0; c + 1 < chunks; c++) x[c] = _mm512_loadu_si512((const void *)(row + 64 * c));
        x[chunks - 1] = _mm512_maskz_loadu_epi8(tail_mask, (const void *)(row + 64 * (chunks - 1)));
        __m512i best = _mm512_set1_epi64(INT32_MAX);
        for (Py_ssize_t blk = 0; blk < n_blocks; blk++) {
            const uint8_t *pb = probes + blk * PROBE_BLOCK * probe_stride;
            __m512i acc[PROBE_BLOCK];
            for (int j = 0; j < PROBE_BLOCK; j++) {
                const uint8_t *probe = pb + j * probe_stride;
                __m512i s = _mm512_popcnt_epi64(_mm512_xor_si512(x[0], _mm512_loadu_si512((const void *)probe)));
                for (Py_ssize_t c = 1; c < chunks; c++) {
                    __m512i q = _mm512_loadu_si512((const void *)(probe + 64 * c));
                    s = _mm512_add_epi64(s, _mm512_popcnt_epi64(_mm512_xor_si512(x[c], q)));
                }
                acc[j] = s;
            }
            best = _mm512_min_epi64(best, sum8(acc));
        }
        out[i] = (int32_t)_mm512_reduce_min_epi64(best);
    }
}
#endif

static int cpu_features = -1; /* bit 0: POPCNT, bit 1: AVX-512 (F, BW, VPOPCNTDQ) */

static int features(void) {
    if (cpu_features < 0) {
#ifdef PALMID_X86
        __builtin_cpu_init();
        cpu_features = (__builtin_cpu_supports("popcnt") ? 1 : 0) | (has_avx512() ? 2 : 0);
#else
        cpu_features = 0;
#endif
    }
    return cpu_features;
}

/* The implementation for a `kernel` argument, or -1 (with ValueError set) when it is unknown or unavailable. */
static int resolve(int kernel) {
    int have = features();
    switch (kernel) {
    case KERNEL_BEST:
        return (have & 2) ? IMPL_AVX512 : (have & 1) ? IMPL_POPCNT : IMPL_PORTABLE;
    case KERNEL_PORTABLE:
        return IMPL_PORTABLE;
    case KERNEL_POPCNT:
        if (have & 1) return IMPL_POPCNT;
        break;
    case KERNEL_AVX512:
        if (have & 2) return IMPL_AVX512;
        break;
    default:
        PyErr_SetString(PyExc_ValueError, "unknown kernel");
        return -1;
    }
    PyErr_SetString(PyExc_ValueError, "this CPU does not have the requested kernel's instructions");
    return -1;
}

/* ------------------------------------------------------------------------------------------- Python API */
static int check_buffer(Py_buffer *view, Py_ssize_t need, const char *what) {
    if (view->len < need) {
        PyErr_Format(PyExc_ValueError, "%s buffer is too small (%zd bytes, need %zd)", what, view->len, need);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(scan_min_doc,
             "scan_min(codes, total_words, group_start, group_stop, words, probes, n_probes, out, row_limit, hist,\n"
             "         kernel)\n\n"
             "Smallest Hamming distance over the probes' first `words` words, for the rows of groups\n"
             "[group_start, group_stop) of the lane-major uint64 `codes`; writes uint16 per row into `out` and adds\n"
             "the distances of the rows below `row_limit` to the uint32 histogram `hist` (64 * words + 1 bins).");

#define HIST_COPIES 4
#define SLAB_GROUPS 256

static PyObject *py_scan_min(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer codes, probes, out, hist;
    Py_ssize_t total_words, group_start, group_stop, words, n_probes, row_limit;
    int kernel;
    if (!PyArg_ParseTuple(args, "y*nnnny*nw*nw*i", &codes, &total_words, &group_start, &group_stop, &words, &probes,
                          &n_probes, &out, &row_limit, &hist, &kernel))
        return NULL;
    PyObject *result = NULL;
    uint32_t *copies = NULL;
    if (total_words < 1 || total_words > MAX_WORDS || words < 1 || words > total_words || group_start < 0 ||
        group_stop < group_start || n_probes < 1 || n_probes > MAX_PROBES) {
        PyErr_SetString(PyExc_ValueError, "scan_min: invalid sizes");
        goto done;
    }
    const int impl = resolve(kernel);
    if (impl < 0) goto done;
    const Py_ssize_t bins = 64 * words + 1;
    if (check_buffer(&codes, group_stop * total_words * LANES * 8, "codes") ||
        check_buffer(&probes, n_probes * total_words * 8, "probes") ||
        check_buffer(&out, (group_stop - group_start) * LANES * 2, "out") ||
        check_buffer(&hist, bins * 4, "hist"))
        goto done;
    copies = PyMem_RawCalloc((size_t)(HIST_COPIES * bins), sizeof(uint32_t));
    if (copies == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    uint16_t *dist = (uint16_t *)out.buf;
    for (Py_ssize_t slab = group_start; slab < group_stop; slab += SLAB_GROUPS) {
        Py_ssize_t stop = slab + SLAB_GROUPS < group_stop ? slab + SLAB_GROUPS : group_stop;
        uint16_t *slab_out = dist + (slab - group_start) * LANES;
        const uint64_t *code_words = (const uint64_t *)codes.buf, *probe_words = (const uint64_t *)probes.buf;
#ifdef PALMID_X86
        if (impl == IMPL_AVX512)
            scan_min_avx512(code_words, total_words, slab, stop, words, probe_words, n_probes, slab_out);
        else if (impl == IMPL_POPCNT)
            scan_min_popcnt(code_words, total_words, slab, stop, words, probe_words, n_probes, slab_out);
        else
#endif
            scan_min_portable(code_words, total_words, slab, stop, words, probe_words, n_probes, slab_out);
        /* histogram of the slab while it is in the cache (four copies: no chain of dependent increments) */
        Py_ssize_t valid = row_limit - slab * LANES;
        Py_ssize_t count = (stop - slab) * LANES;
        if (valid < count) count = valid > 0 ? valid : 0;
        Py_ssize_t i = 0;
        for (; i + HIST_COPIES <= count; i += HIST_COPIES)
            for (int c = 0; c < HIST_COPIES; c++) copies[c * bins + slab_out[i + c]]++;
        for (; i < count; i++) copies[slab_out[i]]++;
    }
    uint32_t *total = (uint32_t *)hist.buf;
    for (Py_ssize_t b = 0; b < bins; b++)
        for (int c = 0; c < HIST_COPIES; c++) total[b] += copies[c * bins + b];
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(copies);
    PyBuffer_Release(&codes);
    PyBuffer_Release(&probes);
    PyBuffer_Release(&out);
    PyBuffer_Release(&hist);
    return result;
}

/* select_rows, one row at a time from `start` */
static void select_tail(const uint16_t *d, Py_ssize_t start, Py_ssize_t n, unsigned radius, Py_ssize_t at_radius,
                        int64_t *rows, Py_ssize_t capacity, Py_ssize_t *written, Py_ssize_t *equal, int *overflow) {
    for (Py_ssize_t i = start; i < n; i++) {
        unsigned v = d[i];
        if (v > radius) continue;
        if (v == radius) {
            if (*equal >= at_radius) continue;
            (*equal)++;
        }
        if (*written >= capacity) {
            *overflow = 1;
            return;
        }
        rows[(*written)++] = i;
    }
}

#ifdef PALMID_X86
/* select_rows over whole blocks of 32 distances, skipping blocks with none within the radius; returns where the
 * blocks end (the rest goes to select_tail). */
AVX512_TARGET static Py_ssize_t select_skip_avx512(const uint16_t *d, Py_ssize_t n, uint16_t radius,
                                                   Py_ssize_t at_radius, int64_t *rows, Py_ssize_t capacity,
                                                   Py_ssize_t *written, Py_ssize_t *equal, int *overflow) {
    const __m512i r = _mm512_set1_epi16((short)radius);
    Py_ssize_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m512i v = _mm512_loadu_si512((const void *)(d + i));
        uint32_t below = (uint32_t)_mm512_cmplt_epu16_mask(v, r);
        uint32_t at = (uint32_t)_mm512_cmpeq_epu16_mask(v, r);
        if (*equal >= at_radius) at = 0;
        uint32_t hit = below | at;
        while (hit) { /* the set lanes in row order */
            int lane = __builtin_ctz(hit);
            hit &= hit - 1;
            if (at >> lane & 1u) {
                if (*equal >= at_radius) continue;
                (*equal)++;
            }
            if (*written >= capacity) {
                *overflow = 1;
                return i;
            }
            rows[(*written)++] = i + lane;
        }
    }
    return i;
}
#endif

PyDoc_STRVAR(select_rows_doc,
             "select_rows(distances, n, radius, at_radius, out, kernel) -> count\n\n"
             "Writes into the int64 `out`, in ascending order, the rows of the first `n` uint16 `distances` that are\n"
             "below `radius`, and the first `at_radius` rows equal to it; returns how many were written.");

static PyObject *py_select_rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer distances, out;
    Py_ssize_t n, radius, at_radius;
    int kernel;
    if (!PyArg_ParseTuple(args, "y*nnnw*i", &distances, &n, &radius, &at_radius, &out, &kernel)) return NULL;
    PyObject *result = NULL;
    if (n < 0 || radius < 0 || radius > 0xFFFF || at_radius < 0) {
        PyErr_SetString(PyExc_ValueError, "select_rows: invalid sizes");
        goto done;
    }
    const int impl = resolve(kernel);
    if (impl < 0) goto done;
    if (check_buffer(&distances, n * 2, "distances")) goto done;
    const Py_ssize_t capacity = out.len / 8;
    const uint16_t *d = (const uint16_t *)distances.buf;
    int64_t *rows = (int64_t *)out.buf;
    Py_ssize_t written = 0, equal = 0;
    int overflow = 0;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t start = 0;
#ifdef PALMID_X86
    if (impl == IMPL_AVX512) start = select_skip_avx512(d, n, (uint16_t)radius, at_radius, rows, capacity,
                                                            &written, &equal, &overflow);
#endif
    if (!overflow) select_tail(d, start, n, (unsigned)radius, at_radius, rows, capacity, &written, &equal, &overflow);
    Py_END_ALLOW_THREADS
    if (overflow) {
        PyErr_SetString(PyExc_ValueError, "select_rows: more rows than the output holds");
        goto done;
    }
    result = PyLong_FromSsize_t(written);
done:
    PyBuffer_Release(&distances);
    PyBuffer_Release(&out);
    return result;
}

PyDoc_STRVAR(min_rows_doc,
             "min_rows(codes, n_code_rows, row_bytes, width, rows, n_rows, probes, n_probes, out, kernel)\n\n"
             "For each of the int64 `rows` of the row-major uint8 `codes`, the smallest Hamming distance of its\n"
             "first `width` bytes to any of the probes (`n_probes` x `width` bytes); writes int32 into `out`.");

static PyObject *py_min_rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer codes, rows, probes, out;
    Py_ssize_t n_code_rows, row_bytes, width, n_rows, n_probes;
    int kernel;
    if (!PyArg_ParseTuple(args, "y*nnny*ny*nw*i", &codes, &n_code_rows, &row_bytes, &width, &rows, &n_rows,
                          &probes, &n_probes, &out, &kernel))
        return NULL;
    PyObject *result = NULL;
    uint8_t *padded = NULL;
    if (width < 1 || width > MAX_ROW_BYTES || row_bytes < width || n_code_rows < 0 || n_rows < 0 ||
        n_probes < 1 || n_probes > MAX_PROBES) {
        PyErr_SetString(PyExc_ValueError, "min_rows: invalid sizes");
        goto done;
    }
    const int impl = resolve(kernel);
    if (impl < 0) goto done;
    if (check_buffer(&codes, n_code_rows * row_bytes, "codes") || check_buffer(&rows, n_rows * 8, "rows") ||
        check_buffer(&probes, n_probes * width, "probes") || check_buffer(&out, n_rows * 4, "out"))
        goto done;
    const int64_t *row_ids = (const int64_t *)rows.buf;
    for (Py_ssize_t i = 0; i < n_rows; i++) {
        if (row_ids[i] < 0 || row_ids[i] >= n_code_rows) {
            PyErr_SetString(PyExc_ValueError, "min_rows: row number out of range");
            goto done;
        }
    }
    const int fast = impl == IMPL_AVX512;
    Py_ssize_t blocks = (n_probes + PROBE_BLOCK - 1) / PROBE_BLOCK;
    Py_ssize_t stride = ((width + 63) / 64) * 64;
    if (fast) {
        padded = PyMem_RawCalloc((size_t)(blocks * PROBE_BLOCK), (size_t)stride);
        if (padded == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        for (Py_ssize_t p = 0; p < blocks * PROBE_BLOCK; p++) {
            Py_ssize_t src = p < n_probes ? p : n_probes - 1;
            memcpy(padded + p * stride, (const uint8_t *)probes.buf + src * width, (size_t)width);
        }
    }
    Py_BEGIN_ALLOW_THREADS
#ifdef PALMID_X86
    if (fast)
        min_rows_avx512((const uint8_t *)codes.buf, row_bytes, width, row_ids, n_rows, padded, blocks, stride,
                        (int32_t *)out.buf);
    else if (impl == IMPL_POPCNT)
        min_rows_popcnt((const uint8_t *)codes.buf, row_bytes, width, row_ids, n_rows, (const uint8_t *)probes.buf,
                        n_probes, (int32_t *)out.buf);
    else
#endif
        min_rows_portable((const uint8_t *)codes.buf, row_bytes, width, row_ids, n_rows,
                          (const uint8_t *)probes.buf, n_probes, (int32_t *)out.buf);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_RawFree(padded);
    PyBuffer_Release(&codes);
    PyBuffer_Release(&rows);
    PyBuffer_Release(&probes);
    PyBuffer_Release(&out);
    return result;
}

static PyObject *py_best_kernel(PyObject *self, PyObject *args) {
    (void)self;
    (void)args;
    static const char *names[] = {"portable", "popcnt", "avx512"};
    return PyUnicode_FromString(names[resolve(KERNEL_BEST)]);
}

static PyMethodDef methods[] = {
    {"scan_min", py_scan_min, METH_VARARGS, scan_min_doc},
    {"min_rows", py_min_rows, METH_VARARGS, min_rows_doc},
    {"select_rows", py_select_rows, METH_VARARGS, select_rows_doc},
    {"best_kernel", py_best_kernel, METH_NOARGS, "Name of the implementation kernel=0 runs on this CPU."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "palmid.index._kernels",
    .m_doc = "Hamming kernels of the 1:N index (see palmid.index.kernels).",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }

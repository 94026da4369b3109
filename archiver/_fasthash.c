/*
 * archiver._fasthash: the inner loops of a redaction token tree, and two small hot
 * paths of ingest (base32 of WARC digests, batches of manifest files), in C.
 *
 * A 5 KB article has about 400 tokens; its token tree is about 800 SHA-256
 * computations of one or two blocks each. In Python each costs a call, two
 * concatenations and a hash object, which made the token tree most of the CPU
 * time of ingesting and verifying an article. These functions do the same
 * hashing with no Python objects per hash: SHA-256 blocks on the CPU's SHA
 * instructions or OpenSSL's block function (below), SHAKE-256 in AVX-512 lanes or with
 * OpenSSL's libcrypto (the library Python's hashlib uses). archiver/fasthash.py holds the reference
 * implementation in Python (fsutil.write_new for the batch writer), used when
 * this module is not built, and the tests check that both give the same bytes.
 *
 *   leaf_hashes(salts, tokens) -> bytes
 *       for each token i: SHA-256(0x00 || salts[16i:16i+16] || UTF-8(token i)),
 *       concatenated (32 bytes each)
 *   split_tokens(text, pos=0) -> list[str]
 *       re.compile(r"\S+\s*").findall(text, pos): the tokens of a text
 *   perfect_root(nodes) -> bytes
 *       the RFC 9162 root of 2^k node hashes given concatenated (32 bytes each),
 *       each interior node SHA-256(0x01 || left || right)
 *   text_root(text, seed) -> (bytes, int)
 *       the whole token tree of a decoded text (str, or the bytes of its
 *       UTF-8) in one call: its tokens (a leading white-space run, then each
 *       run of non-space characters with the white space after it), their
 *       salts (SHAKE-256 blocks of the seed),
 *       their leaves and the RFC 9162 root of any number of them, with the
 *       token count; the verifier has each article's text whole, and the
 *       Python around the calls above was most of its token-tree time
 *   text_roots([(text, seed), ...]) -> [(root, tokens), ...]
 *       text_root of each, in one call: the salts of several texts are derived
 *       eight SHAKE-256 streams at a time in AVX-512 lanes (below)
 *   utf8_nfc_plain(data) -> bool
 *       whether data is UTF-8 text already in the text digest's normal form, judged from
 *       the bytes (below); False means "decode and see"
 *   write_new_files(items, sync) -> None
 *       for each (path, data): create path (O_EXCL, O_NOFOLLOW, 0644), write
 *       data, fsync if sync: what fsutil.write_new does, for a batch of files
 *       with the GIL released once (per file and per system call, the writer
 *       thread's GIL hand-overs cost the ingesting thread more than the writes)
 *   b32encode(data) -> str
 *       base64.b32encode(data).decode(): the form of WARC digests, written for
 *       every record (the standard library's is a Python loop)
 *   json_finish(value, max_depth) -> (value, members, plain, refused)
 *   json_colons(data) -> int
 *       the checks json's C parser leaves to strict parsing (canonical.py; below)
 *   warc_member(data, cap, max_header) -> (consumed, values, block, sha256) | 0 | -1
 *       one gzip member holding one WARC record, read whole when it is sound and
 *       plain: the fast path of warcscan.read_record (below); 0 asks for more
 *       input, -1 for the streaming reader, which says precisely what is wrong
 *   json_canonical(value) -> bytes | None
 *       canonical.canonical_bytes of a plain value (below), None for any other
 *   sha_ni(enable=None) -> bool
 *       whether the tree's SHA-256 runs on the CPU's SHA extensions (x86 SHA-NI,
 *       detected at import); sha_ni(False) switches to OpenSSL's block function,
 *       sha_ni(True) back where the CPU has them (the tests compare both)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <zlib.h>
#ifdef HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif

#define SALT 16
#define HASH 32

/* ---- SHA-256 of the tree's small messages ---------------------------------------------------
 *
 * A tree hashes two kinds of short message: a leaf, 0x00 || salt || token (one 64-byte block
 * for any token up to 38 bytes of UTF-8), and an interior node, 0x01 || left || right (65
 * bytes: two blocks). Through SHA256_Init/Update/Final each costs about twice its block
 * function, in buffering and padding; here messages are padded once, in place, and their
 * blocks go straight to a block function: sixteen messages at once in AVX-512 lanes where the
 * CPU has them (a tree's leaves, and the nodes of each level, are independent), else the
 * CPU's SHA instructions, two independent messages interleaved (the instructions' latency
 * leaves room for a second stream), else OpenSSL's SHA256_Transform. What is left over from
 * groups of sixteen goes the second way. Every path gives SHA-256; the tests compare them
 * with hashlib and with each other.
 */
#define SMALL_BLOCKS 4 /* a longer leaf (a token over 230 bytes) takes SHA256_Init/Update/Final */

static const uint32_t SHA256_IV[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

static void
compress_openssl(uint32_t st[8], const unsigned char *block)
{
    SHA256_CTX c;
    memcpy(c.h, st, 32);
    SHA256_Transform(&c, block);
    memcpy(st, c.h, 32);
}

static int use_shani; /* the CPU's SHA instructions, when it has them and they are not switched off */
static int use_x16;   /* sixteen messages at once (AVX-512), likewise */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_SHANI 1
#include <cpuid.h>
#include <immintrin.h>
#define SHANI_FN __attribute__((target("sha,sse4.1,ssse3")))

static int
cpu_has_shani(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 19)) || !(c & (1u << 9)))
        return 0; /* SSE4.1 and SSSE3 */
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    __cpuid_count(7, 0, a, b, c, d);
    return (b >> 29) & 1; /* SHA */
}

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* the state as the instructions hold it: ABEF and CDGH */
SHANI_FN static inline void
shani_load(const uint32_t st[8], __m128i *abef, __m128i *cdgh)
{
    __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)st), 0xB1);  /* CDAB */
    __m128i hgfe = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(st + 4)), 0x1B); /* EFGH */
    *abef = _mm_alignr_epi8(dcba, hgfe, 8);
    *cdgh = _mm_blend_epi16(hgfe, dcba, 0xF0);
}

SHANI_FN static inline void
shani_store(uint32_t st[8], __m128i abef, __m128i cdgh)
{
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)st, _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)(st + 4), _mm_alignr_epi8(dchg, feba, 8));
}

#define SHANI_BSWAP _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL)
#define SHANI_WORDS(p, i) _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)((p) + 16 * (i))), SHANI_BSWAP)
/* the next four schedule words into w0, from the previous sixteen in w0..w3 (oldest first) */
#define SHANI_SCHED(w0, w1, w2, w3)                                                                  \
    w0 = _mm_sha256msg2_epu32(                                                                       \
        _mm_add_epi32(_mm_sha256msg1_epu32(w0, w1), _mm_alignr_epi8(w3, w2, 4)), w3)
/* four rounds with schedule words w, constants of quad i */
#define SHANI_ROUNDS(abef, cdgh, w, i)                                                               \
    do {                                                                                             \
        __m128i m_ = _mm_add_epi32(w, _mm_loadu_si128((const __m128i *)(K256 + 4 * (i))));          \
        cdgh = _mm_sha256rnds2_epu32(cdgh, abef, m_);                                                \
        abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(m_, 0x0E));                       \
    } while (0)
/* quad i of lane L (variables L##abef, L##cdgh, L##w0..3), its words in x0 (x1..x3: the next) */
#define SHANI_QUAD(L, i, x0, x1, x2, x3)                                                             \
    do {                                                                                             \
        if ((i) >= 4)                                                                                \
            SHANI_SCHED(L##x0, L##x1, L##x2, L##x3);                                                 \
        SHANI_ROUNDS(L##abef, L##cdgh, L##x0, i);                                                    \
    } while (0)
#define SHANI_ALL_QUADS(Q)                                                                           \
    Q(0, w0, w1, w2, w3); Q(1, w1, w2, w3, w0); Q(2, w2, w3, w0, w1); Q(3, w3, w0, w1, w2);           \
    Q(4, w0, w1, w2, w3); Q(5, w1, w2, w3, w0); Q(6, w2, w3, w0, w1); Q(7, w3, w0, w1, w2);           \
    Q(8, w0, w1, w2, w3); Q(9, w1, w2, w3, w0); Q(10, w2, w3, w0, w1); Q(11, w3, w0, w1, w2);         \
    Q(12, w0, w1, w2, w3); Q(13, w1, w2, w3, w0); Q(14, w2, w3, w0, w1); Q(15, w3, w0, w1, w2)

SHANI_FN static void
compress_shani(uint32_t st[8], const unsigned char *block)
{
    __m128i a_abef, a_cdgh;
    shani_load(st, &a_abef, &a_cdgh);
    __m128i save_abef = a_abef, save_cdgh = a_cdgh;
    __m128i a_w0 = SHANI_WORDS(block, 0), a_w1 = SHANI_WORDS(block, 1);
    __m128i a_w2 = SHANI_WORDS(block, 2), a_w3 = SHANI_WORDS(block, 3);
#define Q1(i, x0, x1, x2, x3) SHANI_QUAD(a_, i, x0, x1, x2, x3)
    SHANI_ALL_QUADS(Q1);
#undef Q1
    shani_store(st, _mm_add_epi32(a_abef, save_abef), _mm_add_epi32(a_cdgh, save_cdgh));
}

/* one block of each of two independent messages, their rounds interleaved */
SHANI_FN static void
compress_shani2(uint32_t sa[8], const unsigned char *ba, uint32_t sb[8], const unsigned char *bb)
{
    __m128i a_abef, a_cdgh, b_abef, b_cdgh;
    shani_load(sa, &a_abef, &a_cdgh);
    shani_load(sb, &b_abef, &b_cdgh);
    __m128i a_save0 = a_abef, a_save1 = a_cdgh, b_save0 = b_abef, b_save1 = b_cdgh;
    __m128i a_w0 = SHANI_WORDS(ba, 0), a_w1 = SHANI_WORDS(ba, 1);
    __m128i a_w2 = SHANI_WORDS(ba, 2), a_w3 = SHANI_WORDS(ba, 3);
    __m128i b_w0 = SHANI_WORDS(bb, 0), b_w1 = SHANI_WORDS(bb, 1);
    __m128i b_w2 = SHANI_WORDS(bb, 2), b_w3 = SHANI_WORDS(bb, 3);
#define Q2(i, x0, x1, x2, x3)                                                                        \
    SHANI_QUAD(a_, i, x0, x1, x2, x3);                                                               \
    SHANI_QUAD(b_, i, x0, x1, x2, x3)
    SHANI_ALL_QUADS(Q2);
#undef Q2
    shani_store(sa, _mm_add_epi32(a_abef, a_save0), _mm_add_epi32(a_cdgh, a_save1));
    shani_store(sb, _mm_add_epi32(b_abef, b_save0), _mm_add_epi32(b_cdgh, b_save1));
}

/* Sixteen messages at once, one in each 32-bit lane of the AVX-512 registers. The SHA
   instructions hash one message at a time, at about one block per 55-70 ns here (their
   latency leaves room for a second stream, not more); a tree has hundreds of independent
   leaves and nodes per level, and sixteen lanes of ordinary vector operations take about
   35 ns a block. */
#define X16_FN __attribute__((target("avx512f,avx512bw")))

static int
cpu_has_x16(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))
        return 0; /* OSXSAVE: the system saves the vector state it enables */
    if (__get_cpuid_max(0, NULL) < 7)
        return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if ((lo & 0xE6) != 0xE6)
        return 0; /* the system enables the SSE, AVX and AVX-512 state */
    __cpuid_count(7, 0, a, b, c, d);
    return ((b >> 16) & 1) && ((b >> 30) & 1); /* AVX512F, AVX512BW */
}

#define X16_ROR(x, n) _mm512_ror_epi32(x, n)
#define X16_XOR3(x, y, z) _mm512_ternarylogic_epi32(x, y, z, 0x96)

/* SHA-256 of 16 messages of `blocks` padded 64-byte blocks each, message l at
   base + l * stride; the 16 digests to out, 32 bytes each, one after the other */
X16_FN static void
sha256_x16(const unsigned char *base, int stride, int blocks, unsigned char *out)
{
    const __m512i lane = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                             14, 15),
                                            _mm512_set1_epi32(stride));
    const __m512i bswap = _mm512_set4_epi32(0x0c0d0e0f, 0x08090a0b, 0x04050607, 0x00010203);
    __m512i s[8], w[16];
    for (int i = 0; i < 8; i++)
        s[i] = _mm512_set1_epi32((int)SHA256_IV[i]);
    for (int k = 0; k < blocks; k++) {
        for (int t = 0; t < 16; t++)
            w[t] = _mm512_shuffle_epi8(
                _mm512_i32gather_epi32(_mm512_add_epi32(lane, _mm512_set1_epi32(64 * k + 4 * t)), base, 1),
                bswap);
        __m512i a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
        _Pragma("GCC unroll 64") for (int t = 0; t < 64; t++)
        {
            if (t >= 16) {
                __m512i w15 = w[(t - 15) & 15], w2 = w[(t - 2) & 15];
                __m512i s0 = X16_XOR3(X16_ROR(w15, 7), X16_ROR(w15, 18), _mm512_srli_epi32(w15, 3));
                __m512i s1 = X16_XOR3(X16_ROR(w2, 17), X16_ROR(w2, 19), _mm512_srli_epi32(w2, 10));
                w[t & 15] = _mm512_add_epi32(_mm512_add_epi32(w[t & 15], s0),
                                             _mm512_add_epi32(w[(t - 7) & 15], s1));
            }
            __m512i t1 = _mm512_add_epi32(
                _mm512_add_epi32(h, X16_XOR3(X16_ROR(e, 6), X16_ROR(e, 11), X16_ROR(e, 25))),
                _mm512_add_epi32(_mm512_ternarylogic_epi32(e, f, g, 0xCA), /* Ch */
                                 _mm512_add_epi32(w[t & 15], _mm512_set1_epi32((int)K256[t]))));
            __m512i t2 = _mm512_add_epi32(X16_XOR3(X16_ROR(a, 2), X16_ROR(a, 13), X16_ROR(a, 22)),
                                          _mm512_ternarylogic_epi32(a, b, c, 0xE8)); /* Maj */
            h = g;
            g = f;
            f = e;
            e = _mm512_add_epi32(d, t1);
            d = c;
            c = b;
            b = a;
            a = _mm512_add_epi32(t1, t2);
        }
        s[0] = _mm512_add_epi32(s[0], a);
        s[1] = _mm512_add_epi32(s[1], b);
        s[2] = _mm512_add_epi32(s[2], c);
        s[3] = _mm512_add_epi32(s[3], d);
        s[4] = _mm512_add_epi32(s[4], e);
        s[5] = _mm512_add_epi32(s[5], f);
        s[6] = _mm512_add_epi32(s[6], g);
        s[7] = _mm512_add_epi32(s[7], h);
    }
    const __m512i at = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
                                                           14, 15),
                                          _mm512_set1_epi32(HASH));
    for (int i = 0; i < 8; i++)
        _mm512_i32scatter_epi32(out, _mm512_add_epi32(at, _mm512_set1_epi32(4 * i)),
                                _mm512_shuffle_epi8(s[i], bswap), 1);
}

#endif /* HAVE_SHANI */

static void
compress1(uint32_t st[8], const unsigned char *block)
{
#ifdef HAVE_SHANI
    if (use_shani) {
        compress_shani(st, block);
        return;
    }
#endif
    compress_openssl(st, block);
}

static void
compress_two(uint32_t sa[8], const unsigned char *ba, uint32_t sb[8], const unsigned char *bb)
{
#ifdef HAVE_SHANI
    if (use_shani) {
        compress_shani2(sa, ba, sb, bb);
        return;
    }
#endif
    compress_openssl(sa, ba);
    compress_openssl(sb, bb);
}

static void
digest_out(const uint32_t st[8], unsigned char out[HASH])
{
    for (int i = 0; i < 8; i++) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint32_t be = __builtin_bswap32(st[i]);
        memcpy(out + 4 * i, &be, 4);
#else
        out[4 * i] = (unsigned char)(st[i] >> 24);
        out[4 * i + 1] = (unsigned char)(st[i] >> 16);
        out[4 * i + 2] = (unsigned char)(st[i] >> 8);
        out[4 * i + 3] = (unsigned char)st[i];
#endif
    }
}

/* SHA-256 padding after the len message bytes already in buf; the number of blocks */
static int
pad_message(unsigned char *buf, size_t len)
{
    int blocks = (int)((len + 9 + 63) / 64);
    size_t end = 64 * (size_t)blocks;
    buf[len] = 0x80;
    memset(buf + len + 1, 0, end - len - 9);
    uint64_t bits = (uint64_t)len * 8;
    for (int b = 0; b < 8; b++)
        buf[end - 1 - b] = (unsigned char)(bits >> (8 * b));
    return blocks;
}

/* the padded leaf message 0x00 || salt || token in buf (SMALL_BLOCKS blocks); 0 if longer */
static int
leaf_message(unsigned char *buf, const unsigned char *salt, const unsigned char *token, size_t len)
{
    if (1 + SALT + len + 9 > 64 * SMALL_BLOCKS)
        return 0;
    buf[0] = 0x00;
    memcpy(buf + 1, salt, SALT);
    memcpy(buf + 1 + SALT, token, len);
    return pad_message(buf, 1 + SALT + len);
}

static void
leaf_long(const unsigned char *salt, const unsigned char *token, size_t len, unsigned char *out)
{
    static const unsigned char leaf_prefix = 0x00;
    SHA256_CTX c;
    SHA256_Init(&c);
    SHA256_Update(&c, &leaf_prefix, 1);
    SHA256_Update(&c, salt, SALT);
    SHA256_Update(&c, token, len);
    SHA256_Final(out, &c);
}

static void
leaf1(const unsigned char *salt, const unsigned char *token, size_t len, unsigned char *out)
{
    unsigned char buf[64 * SMALL_BLOCKS];
    int blocks = leaf_message(buf, salt, token, len);
    if (blocks == 0) {
        leaf_long(salt, token, len, out);
        return;
    }
    uint32_t st[8];
    memcpy(st, SHA256_IV, sizeof st);
    for (int k = 0; k < blocks; k++)
        compress1(st, buf + 64 * k);
    digest_out(st, out);
}

/* two leaves at once: the interleaved block function wants two messages */
static void
leaf2(const unsigned char *salt_a, const unsigned char *tok_a, size_t len_a, unsigned char *out_a,
      const unsigned char *salt_b, const unsigned char *tok_b, size_t len_b, unsigned char *out_b)
{
    unsigned char buf_a[64 * SMALL_BLOCKS], buf_b[64 * SMALL_BLOCKS];
    int na = leaf_message(buf_a, salt_a, tok_a, len_a), nb = leaf_message(buf_b, salt_b, tok_b, len_b);
    if (na == 0 || nb == 0) {
        leaf1(salt_a, tok_a, len_a, out_a);
        leaf1(salt_b, tok_b, len_b, out_b);
        return;
    }
    uint32_t sa[8], sb[8];
    memcpy(sa, SHA256_IV, sizeof sa);
    memcpy(sb, SHA256_IV, sizeof sb);
    int k = 0;
    for (; k < na && k < nb; k++)
        compress_two(sa, buf_a + 64 * k, sb, buf_b + 64 * k);
    for (; k < na; k++)
        compress1(sa, buf_a + 64 * k);
    for (; k < nb; k++)
        compress1(sb, buf_b + 64 * k);
    digest_out(sa, out_a);
    digest_out(sb, out_b);
}

/* the padded node message 0x01 || left || right: two blocks (the inputs may alias the output) */
static void
node_message(unsigned char buf[128], const unsigned char *left, const unsigned char *right)
{
    buf[0] = 0x01;
    memcpy(buf + 1, left, HASH);
    memcpy(buf + 1 + HASH, right, HASH);
    pad_message(buf, 1 + 2 * HASH);
}

/* RFC 9162 MTH of count >= 1 hashes, level by level in place (nodes is overwritten): pairing
   neighbours and carrying an odd last node up unchanged gives the same root as splitting at
   the largest power of two below n */
static void
tree_root(unsigned char *nodes, Py_ssize_t count, unsigned char out[HASH])
{
    while (count > 1) {
        Py_ssize_t pairs = count / 2, j = 0;
#ifdef HAVE_SHANI
        if (use_x16) {
            unsigned char buf[16 * 128];
            for (; j + 16 <= pairs; j += 16) {
                for (int l = 0; l < 16; l++)
                    node_message(buf + 128 * l, nodes + 2 * (j + l) * HASH, nodes + (2 * (j + l) + 1) * HASH);
                sha256_x16(buf, 128, 2, nodes + j * HASH);
            }
        }
#endif
        for (; j + 1 < pairs; j += 2) {
            unsigned char a[128], b[128];
            uint32_t sa[8], sb[8];
            node_message(a, nodes + 2 * j * HASH, nodes + (2 * j + 1) * HASH);
            node_message(b, nodes + (2 * j + 2) * HASH, nodes + (2 * j + 3) * HASH);
            memcpy(sa, SHA256_IV, sizeof sa);
            memcpy(sb, SHA256_IV, sizeof sb);
            compress_two(sa, a, sb, b);
            compress_two(sa, a + 64, sb, b + 64);
            digest_out(sa, nodes + j * HASH);
            digest_out(sb, nodes + (j + 1) * HASH);
        }
        if (j < pairs) {
            unsigned char a[128];
            uint32_t sa[8];
            node_message(a, nodes + 2 * j * HASH, nodes + (2 * j + 1) * HASH);
            memcpy(sa, SHA256_IV, sizeof sa);
            compress1(sa, a);
            compress1(sa, a + 64);
            digest_out(sa, nodes + j * HASH);
        }
        if (count % 2)
            memmove(nodes + pairs * HASH, nodes + (count - 1) * HASH, HASH);
        count = pairs + count % 2;
    }
    memcpy(out, nodes, HASH);
}

static PyObject *
leaf_hashes(PyObject *self, PyObject *args)
{
    Py_buffer salts;
    PyObject *tokens;
    if (!PyArg_ParseTuple(args, "y*O!:leaf_hashes", &salts, &PyList_Type, &tokens))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(tokens);
    if (salts.len != n * SALT) {
        PyBuffer_Release(&salts);
        PyErr_SetString(PyExc_ValueError, "leaf_hashes: need 16 bytes of salt per token");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, n * HASH);
    if (out == NULL) {
        PyBuffer_Release(&salts);
        return NULL;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    const unsigned char *salt = (const unsigned char *)salts.buf;
    /* in pairs, for the interleaved block function; a lone last token alone */
    for (Py_ssize_t i = 0; i < n; i += 2) {
        const char *utf8[2] = {NULL, NULL};
        Py_ssize_t len[2] = {0, 0};
        for (Py_ssize_t k = 0; k < 2 && i + k < n; k++) {
            PyObject *tok = PyList_GET_ITEM(tokens, i + k);
            if (!PyUnicode_Check(tok)) {
                PyErr_SetString(PyExc_TypeError, "leaf_hashes: tokens must be str");
                goto fail;
            }
            utf8[k] = PyUnicode_AsUTF8AndSize(tok, &len[k]);
            if (utf8[k] == NULL)
                goto fail; /* e.g. a lone surrogate: the same error str.encode raises */
        }
        if (i + 1 < n)
            leaf2(salt + i * SALT, (const unsigned char *)utf8[0], (size_t)len[0], dst + i * HASH,
                  salt + (i + 1) * SALT, (const unsigned char *)utf8[1], (size_t)len[1], dst + (i + 1) * HASH);
        else
            leaf1(salt + i * SALT, (const unsigned char *)utf8[0], (size_t)len[0], dst + i * HASH);
    }
    PyBuffer_Release(&salts);
    return out;
fail:
    PyBuffer_Release(&salts);
    Py_DECREF(out);
    return NULL;
}

static PyObject *
perfect_root(PyObject *self, PyObject *args)
{
    Py_buffer nodes;
    if (!PyArg_ParseTuple(args, "y*:perfect_root", &nodes))
        return NULL;
    Py_ssize_t count = nodes.len / HASH;
    if (nodes.len % HASH != 0 || count == 0 || (count & (count - 1)) != 0) {
        PyBuffer_Release(&nodes);
        PyErr_SetString(PyExc_ValueError, "perfect_root: need 2^k hashes of 32 bytes");
        return NULL;
    }
    if (count == 1) {
        PyObject *one = PyBytes_FromStringAndSize(nodes.buf, HASH);
        PyBuffer_Release(&nodes);
        return one;
    }
    unsigned char *level = PyMem_Malloc((size_t)count * HASH);
    if (level == NULL) {
        PyBuffer_Release(&nodes);
        return PyErr_NoMemory();
    }
    memcpy(level, nodes.buf, (size_t)count * HASH);
    tree_root(level, count, level);
    PyObject *root = PyBytes_FromStringAndSize((const char *)level, HASH);
    PyMem_Free(level);
    PyBuffer_Release(&nodes);
    return root;
}

static PyObject *
split_tokens(PyObject *self, PyObject *args)
{
    /* re.findall(r"\S+\s*", text, pos): \s in a str pattern is Py_UNICODE_ISSPACE */
    PyObject *text;
    Py_ssize_t pos = 0;
    if (!PyArg_ParseTuple(args, "U|n:split_tokens", &text, &pos))
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    Py_ssize_t i = pos < 0 ? 0 : pos;
    while (i < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
        i++;
    while (i < n) {
        Py_ssize_t start = i;
        while (i < n && !Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            i++;
        while (i < n && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
            i++;
        PyObject *tok = PyUnicode_Substring(text, start, i);
        if (tok == NULL || PyList_Append(out, tok) < 0) {
            Py_XDECREF(tok);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(tok);
    }
    return out;
}

#define SALT_BLOCK 1024
static const char salt_prefix[] = "archiver/token-salt/1";

/* The white space of the token rule (docs/format.md: Python's \s, str.isspace), read from
 * UTF-8: U+0009-000D, U+001C-0020, U+0085, U+00A0, U+1680, U+2000-200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000. Scanning the UTF-8 a token's leaf hashes anyway, and not the
 * code points through Py_UNICODE_ISSPACE, made cutting an Arabic article four times faster.
 * The tests check the set against str.isspace over all of Unicode. Sets *width to the
 * character's length in bytes (the text is valid UTF-8: Python encoded it). */
static inline int
utf8_space(const unsigned char *p, int *width)
{
    unsigned char b = p[0];
    if (b < 0x80) {
        *width = 1;
        return (b >= 0x09 && b <= 0x0D) || (b >= 0x1C && b <= 0x20);
    }
    if (b < 0xE0) {
        *width = 2;
        return b == 0xC2 && (p[1] == 0x85 || p[1] == 0xA0);
    }
    if (b < 0xF0) {
        *width = 3;
        if (b == 0xE2 && p[1] == 0x80)
            return p[2] <= 0x8A || p[2] == 0xA8 || p[2] == 0xA9 || p[2] == 0xAF;
        return (b == 0xE1 && p[1] == 0x9A && p[2] == 0x80) || (b == 0xE2 && p[1] == 0x81 && p[2] == 0x9F) ||
               (b == 0xE3 && p[1] == 0x80 && p[2] == 0x80);
    }
    *width = 4;
    return 0;
}

static inline int
utf8_space_within(const unsigned char *p, Py_ssize_t left, int *width)
{
    if (left >= 4 || p[0] < 0x80)
        return utf8_space(p, width);
    unsigned char q[4] = {0, 0, 0, 0};
    memcpy(q, p, (size_t)left);
    int space = utf8_space(q, width);
    if (*width > left) { /* a truncated sequence: one character, not white space */
        *width = (int)left;
        return 0;
    }
    return space;
}

static int
salts_of_block(const unsigned char *seed, Py_ssize_t seed_len, uint64_t block, unsigned char *out,
               size_t len)
{
    unsigned char be[8];
    for (int b = 0; b < 8; b++)
        be[b] = (unsigned char)(block >> (56 - 8 * b));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_shake256(), NULL) == 1 &&
             EVP_DigestUpdate(ctx, salt_prefix, sizeof salt_prefix - 1) == 1 &&
             EVP_DigestUpdate(ctx, seed, (size_t)seed_len) == 1 && EVP_DigestUpdate(ctx, be, 8) == 1 &&
             EVP_DigestFinalXOF(ctx, out, len) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
}

/* ---- SHAKE-256 of the salts, eight blocks at a time ----------------------------------------
 *
 * Each block of 1,024 tokens has its own SHAKE-256 stream; its output is squeezed one
 * permutation at a time, each depending on the last, so one stream cannot go faster than one
 * Keccak-f[1600] after another (about 0.75 us each through libcrypto here: an article's salts,
 * some 6 KB, were a quarter of its tree). Different streams are independent: eight of them go
 * through the eight 64-bit lanes of AVX-512 registers at once (state word i of stream l in
 * lane l of register i), about five times the throughput. A verify's worker hands the trees of
 * a whole WARC part over in one call (text_roots), so eight articles' salts fill the lanes; a
 * text of over 1,024 tokens fills them with its own blocks. The tests compare every output
 * with hashlib.shake_256. */
#ifdef HAVE_SHANI
static const uint64_t KECCAK_RC[24] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808AULL, 0x8000000080008000ULL,
    0x000000000000808BULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008AULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000AULL,
    0x000000008000808BULL, 0x800000000000008BULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800AULL, 0x800000008000000AULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};

#define KX_ROL(x, n) _mm512_rol_epi64(x, n)
#define KX_XOR5(a, b, c, d, e) _mm512_ternarylogic_epi64(_mm512_ternarylogic_epi64(a, b, c, 0x96), d, e, 0x96)
#define KX_CHI(a, b, c) _mm512_ternarylogic_epi64(a, b, c, 0xD2) /* a ^ (~b & c) */
/* theta's column term d applied to a lane, then rho's rotation by n */
#define KX_RHO(a, d, n) KX_ROL(_mm512_xor_si512(a, d), n)

/* Keccak-f[1600] on eight states; lane x + 5y of a state is s[x + 5y] */
X16_FN static void
keccak_x8(__m512i s[25])
{
    __m512i a00 = s[0], a01 = s[1], a02 = s[2], a03 = s[3], a04 = s[4], a05 = s[5], a06 = s[6],
            a07 = s[7], a08 = s[8], a09 = s[9], a10 = s[10], a11 = s[11], a12 = s[12], a13 = s[13],
            a14 = s[14], a15 = s[15], a16 = s[16], a17 = s[17], a18 = s[18], a19 = s[19],
            a20 = s[20], a21 = s[21], a22 = s[22], a23 = s[23], a24 = s[24];
    for (int r = 0; r < 24; r++) {
        __m512i c0 = KX_XOR5(a00, a05, a10, a15, a20), c1 = KX_XOR5(a01, a06, a11, a16, a21),
                c2 = KX_XOR5(a02, a07, a12, a17, a22), c3 = KX_XOR5(a03, a08, a13, a18, a23),
                c4 = KX_XOR5(a04, a09, a14, a19, a24);
        __m512i d0 = _mm512_xor_si512(c4, KX_ROL(c1, 1)), d1 = _mm512_xor_si512(c0, KX_ROL(c2, 1)),
                d2 = _mm512_xor_si512(c1, KX_ROL(c3, 1)), d3 = _mm512_xor_si512(c2, KX_ROL(c4, 1)),
                d4 = _mm512_xor_si512(c3, KX_ROL(c0, 1));
        /* rho and pi: lane (x, y) goes to (y, 2x + 3y), rotated by its offset */
        __m512i b00 = _mm512_xor_si512(a00, d0), b10 = KX_RHO(a01, d1, 1), b20 = KX_RHO(a02, d2, 62),
                b05 = KX_RHO(a03, d3, 28), b15 = KX_RHO(a04, d4, 27), b16 = KX_RHO(a05, d0, 36),
                b01 = KX_RHO(a06, d1, 44), b11 = KX_RHO(a07, d2, 6), b21 = KX_RHO(a08, d3, 55),
                b06 = KX_RHO(a09, d4, 20), b07 = KX_RHO(a10, d0, 3), b17 = KX_RHO(a11, d1, 10),
                b02 = KX_RHO(a12, d2, 43), b12 = KX_RHO(a13, d3, 25), b22 = KX_RHO(a14, d4, 39),
                b23 = KX_RHO(a15, d0, 41), b08 = KX_RHO(a16, d1, 45), b18 = KX_RHO(a17, d2, 15),
                b03 = KX_RHO(a18, d3, 21), b13 = KX_RHO(a19, d4, 8), b14 = KX_RHO(a20, d0, 18),
                b24 = KX_RHO(a21, d1, 2), b09 = KX_RHO(a22, d2, 61), b19 = KX_RHO(a23, d3, 56),
                b04 = KX_RHO(a24, d4, 14);
        /* chi, and iota on lane (0, 0) */
        a00 = _mm512_xor_si512(KX_CHI(b00, b01, b02), _mm512_set1_epi64((long long)KECCAK_RC[r]));
        a01 = KX_CHI(b01, b02, b03), a02 = KX_CHI(b02, b03, b04), a03 = KX_CHI(b03, b04, b00),
        a04 = KX_CHI(b04, b00, b01);
        a05 = KX_CHI(b05, b06, b07), a06 = KX_CHI(b06, b07, b08), a07 = KX_CHI(b07, b08, b09),
        a08 = KX_CHI(b08, b09, b05), a09 = KX_CHI(b09, b05, b06);
        a10 = KX_CHI(b10, b11, b12), a11 = KX_CHI(b11, b12, b13), a12 = KX_CHI(b12, b13, b14),
        a13 = KX_CHI(b13, b14, b10), a14 = KX_CHI(b14, b10, b11);
        a15 = KX_CHI(b15, b16, b17), a16 = KX_CHI(b16, b17, b18), a17 = KX_CHI(b17, b18, b19),
        a18 = KX_CHI(b18, b19, b15), a19 = KX_CHI(b19, b15, b16);
        a20 = KX_CHI(b20, b21, b22), a21 = KX_CHI(b21, b22, b23), a22 = KX_CHI(b22, b23, b24),
        a23 = KX_CHI(b23, b24, b20), a24 = KX_CHI(b24, b20, b21);
    }
    s[0] = a00, s[1] = a01, s[2] = a02, s[3] = a03, s[4] = a04, s[5] = a05, s[6] = a06, s[7] = a07;
    s[8] = a08, s[9] = a09, s[10] = a10, s[11] = a11, s[12] = a12, s[13] = a13, s[14] = a14;
    s[15] = a15, s[16] = a16, s[17] = a17, s[18] = a18, s[19] = a19, s[20] = a20, s[21] = a21;
    s[22] = a22, s[23] = a23, s[24] = a24;
}
#endif /* HAVE_SHANI */

#define SHAKE_RATE 136                /* SHAKE-256's rate in bytes */
#define SHAKE_ONE_BLOCK (SHAKE_RATE - 1) /* the longest message that pads into one block */

/* one SHAKE-256 output to derive: of a message of at most SHAKE_ONE_BLOCK bytes */
typedef struct {
    const unsigned char *msg;
    size_t msg_len;
    unsigned char *out;
    size_t out_len;
} shake_job;

#ifdef HAVE_SHANI
/* the absorbed (padded, one-block) message of `job` as the state of lane l */
X16_FN static void
shake_lane_load(__m512i s[25], int l, const shake_job *job)
{
    uint64_t w[25];
    unsigned char *p = (unsigned char *)w; /* (x86 is little-endian, as Keccak's lanes are) */
    memset(w, 0, sizeof w);
    memcpy(p, job->msg, job->msg_len);
    p[job->msg_len] ^= 0x1F;
    p[SHAKE_RATE - 1] ^= 0x80;
    for (int i = 0; i < 25; i++)
        s[i] = _mm512_mask_set1_epi64(s[i], (__mmask8)(1u << l), (long long)w[i]);
}

/* every job's output, eight at a time: a lane that has squeezed its job's whole output
   takes the next job, so jobs of different lengths waste no lane for long */
X16_FN static void
shake256_x8(const shake_job *jobs, size_t n)
{
    __m512i s[25];
    for (int i = 0; i < 25; i++)
        s[i] = _mm512_setzero_si512();
    const shake_job *lane_job[8] = {NULL};
    size_t done[8] = {0}, next = 0;
    int active = 0;
    for (; active < 8 && next < n; active++, next++) {
        shake_lane_load(s, active, &jobs[next]);
        lane_job[active] = &jobs[next];
    }
    uint64_t rate[SHAKE_RATE / 8][8] __attribute__((aligned(64)));
    while (active) {
        keccak_x8(s);
        for (int i = 0; i < SHAKE_RATE / 8; i++)
            _mm512_store_si512((void *)rate[i], s[i]);
        for (int l = 0; l < 8; l++) {
            const shake_job *job = lane_job[l];
            if (job == NULL)
                continue;
            size_t take = job->out_len - done[l] < SHAKE_RATE ? job->out_len - done[l] : SHAKE_RATE;
            unsigned char *o = job->out + done[l];
            size_t i = 0;
            for (; i + 8 <= take; i += 8)
                memcpy(o + i, &rate[i / 8][l], 8);
            if (i < take)
                memcpy(o + i, &rate[i / 8][l], take - i);
            done[l] += take;
            if (done[l] < job->out_len)
                continue;
            done[l] = 0;
            if (next < n) { /* (loading sets every word of the lane's state) */
                shake_lane_load(s, l, &jobs[next]);
                lane_job[l] = &jobs[next++];
            } else {
                lane_job[l] = NULL;
                active--;
            }
        }
    }
}
#endif /* HAVE_SHANI */

/* One text of text_roots: its UTF-8 and seed, then its tokens, leaves and root */
typedef struct {
    PyObject *text; /* a reference held while the GIL is released (bytes, or the str whose UTF-8 u is) */
    const unsigned char *u;
    Py_ssize_t nbytes;
    Py_buffer seed;
    Py_ssize_t *starts; /* token i is u[starts[i] : starts[i + 1]] */
    Py_ssize_t count;
    unsigned char *leaves; /* count * HASH bytes */
    unsigned char root[HASH];
} tree_text;

/* the tokens of a text: 0 if out of memory (no GIL needed: the raw allocator) */
static int
cut_tokens(tree_text *t)
{
    const unsigned char *u = t->u;
    Py_ssize_t nbytes = t->nbytes, cap = nbytes / 8 + 16, count = 0, at = 0;
    Py_ssize_t *starts = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)(cap + 1));
    if (starts == NULL)
        return 0;
    int width;
    int leading = nbytes > 0 && utf8_space_within(u, nbytes, &width);
    while (at < nbytes) {
        if (count == cap) {
            Py_ssize_t *grown = PyMem_RawRealloc(starts, sizeof(Py_ssize_t) * (size_t)(2 * cap + 1));
            if (grown == NULL) {
                PyMem_RawFree(starts);
                return 0;
            }
            starts = grown;
            cap *= 2;
        }
        starts[count++] = at;
        /* (a truncated sequence at the end of bytes that are not UTF-8 after all is one
           character: never read past the end, whatever the caller passed) */
        if (!leading) {
            while (at < nbytes && !utf8_space_within(u + at, nbytes - at, &width))
                at += width;
        }
        leading = 0;
        while (at < nbytes && utf8_space_within(u + at, nbytes - at, &width))
            at += width;
    }
    starts[count] = at;
    t->starts = starts;
    t->count = count;
    return 1;
}

/* the leaves of tokens first .. first + in_block - 1 of a text, given their salts */
static void
block_leaves(tree_text *t, Py_ssize_t first, Py_ssize_t in_block, const unsigned char *salts)
{
    const unsigned char *u = t->u;
    const Py_ssize_t *starts = t->starts;
    unsigned char *leaves = t->leaves;
    Py_ssize_t i = 0;
    while (i < in_block) {
        Py_ssize_t end = in_block;
#ifdef HAVE_SHANI
        if (use_x16 && i + 16 <= in_block) {
            /* sixteen one-block leaves at once; a group with a longer token, in pairs */
            unsigned char buf[16 * 64];
            int l = 0;
            for (; l < 16; l++) {
                Py_ssize_t k = first + i + l;
                size_t len = (size_t)(starts[k + 1] - starts[k]);
                if (1 + SALT + len + 9 > 64)
                    break;
                leaf_message(buf + 64 * l, salts + 16 * (i + l), u + starts[k], len);
            }
            if (l == 16) {
                sha256_x16(buf, 64, 1, leaves + (first + i) * HASH);
                i += 16;
                continue;
            }
            end = i + 16;
        }
#endif
        for (; i < end; i += 2) {
            Py_ssize_t k = first + i;
            const unsigned char *tok = u + starts[k];
            size_t len = (size_t)(starts[k + 1] - starts[k]);
            if (i + 1 < end)
                leaf2(salts + 16 * i, tok, len, leaves + k * HASH, salts + 16 * (i + 1), u + starts[k + 1],
                      (size_t)(starts[k + 2] - starts[k + 1]), leaves + (k + 1) * HASH);
            else
                leaf1(salts + 16 * i, tok, len, leaves + k * HASH);
        }
    }
}

/* a block of salts to derive: tokens first .. first + in_block - 1 of text t */
typedef struct {
    tree_text *t;
    Py_ssize_t first, in_block;
    unsigned char *salts;
    unsigned char msg[SHAKE_RATE];
} salt_block;

#define WINDOW_BLOCKS 64             /* blocks of salts derived together */
#define WINDOW_BYTES (256 * 1024)    /* at most this much of them held at once */

/* a text whose leaves are all made: its root; its tokens and leaves freed */
static void
finish_text(tree_text *t)
{
    if (t->count > 0) {
        tree_root(t->leaves, t->count, t->root);
    } else {
        SHA256_CTX c;
        SHA256_Init(&c);
        SHA256_Final(t->root, &c);
    }
    PyMem_RawFree(t->starts);
    PyMem_RawFree(t->leaves);
    t->starts = NULL;
    t->leaves = NULL;
}

/* a text's tokens, and room for its leaves: 0 if out of memory */
static int
start_text(tree_text *t)
{
    if (!cut_tokens(t))
        return 0;
    return t->count == 0 || (t->leaves = PyMem_RawMalloc((size_t)t->count * HASH)) != NULL;
}

/* every text's root, without the GIL: 1, or 0 out of memory, or -1 if libcrypto failed.
   Windows of salt blocks in the texts' order, each window's leaves right after its salts,
   each text finished (and its tokens and leaves freed) once its last block is in: what is
   held at once is a window of salts and the texts it spans, not the whole batch. */
static int
trees_of(tree_text *texts, Py_ssize_t n)
{
    if (n == 0)
        return 1;
    if (!start_text(&texts[0]))
        return 0;
    size_t cap = WINDOW_BYTES; /* (at least one whole block: 16 KB) */
    if (n == 1 && 16 * (size_t)texts[0].count < cap)
        cap = 16 * (size_t)texts[0].count;
    unsigned char *buf = cap ? PyMem_RawMalloc(cap) : NULL;
    salt_block *win = PyMem_RawMalloc(sizeof(salt_block) * WINDOW_BLOCKS);
    int ok = (cap == 0 || buf != NULL) && win != NULL;
    Py_ssize_t j = 0, first = 0, finished = 0; /* the next block: text j from token first */
    while (ok == 1 && j < n) {
        int k = 0;
        size_t used = 0;
        while (j < n && k < WINDOW_BLOCKS) {
            tree_text *t = &texts[j];
            if (t->starts == NULL && !start_text(t)) {
                ok = 0;
                break;
            }
            if (first >= t->count) {
                j++, first = 0;
                continue;
            }
            Py_ssize_t in_block = t->count - first < SALT_BLOCK ? t->count - first : SALT_BLOCK;
            if (used + 16 * (size_t)in_block > cap)
                break;
            win[k] = (salt_block){t, first, in_block, buf + used, {0}};
            used += 16 * (size_t)in_block;
            first += in_block;
            k++;
        }
#ifdef HAVE_SHANI
        shake_job jobs[WINDOW_BLOCKS];
        size_t jn = 0;
#endif
        for (int b = 0; b < k && ok == 1; b++) {
            salt_block *s = &win[b];
            uint64_t block = (uint64_t)(s->first / SALT_BLOCK);
            size_t prefix = sizeof salt_prefix - 1, seed_len = (size_t)s->t->seed.len;
#ifdef HAVE_SHANI
            if (use_x16 && k > 1 && prefix + seed_len + 8 <= SHAKE_ONE_BLOCK) {
                memcpy(s->msg, salt_prefix, prefix);
                memcpy(s->msg + prefix, s->t->seed.buf, seed_len);
                for (int c = 0; c < 8; c++)
                    s->msg[prefix + seed_len + (size_t)c] = (unsigned char)(block >> (56 - 8 * c));
                jobs[jn++] = (shake_job){s->msg, prefix + seed_len + 8, s->salts, 16 * (size_t)s->in_block};
                continue;
            }
#endif
            /* (one block alone goes faster through libcrypto than through one lane of eight) */
            if (!salts_of_block(s->t->seed.buf, s->t->seed.len, block, s->salts, 16 * (size_t)s->in_block))
                ok = -1;
        }
#ifdef HAVE_SHANI
        if (ok == 1 && jn > 0)
            shake256_x8(jobs, jn);
#endif
        for (int b = 0; b < k && ok == 1; b++)
            block_leaves(win[b].t, win[b].first, win[b].in_block, win[b].salts);
        for (; ok == 1 && finished < j; finished++) /* (texts before j have all their leaves) */
            finish_text(&texts[finished]);
    }
    PyMem_RawFree(buf);
    PyMem_RawFree(win);
    return ok;
}

/* (text, seed) into t, holding what it points into; 0 with an exception set */
static int
tree_text_init(tree_text *t, PyObject *text, PyObject *seed)
{
    const char *utf8;
    Py_ssize_t nbytes;
    if (PyBytes_Check(text)) { /* the UTF-8 of a text its caller has decoded */
        utf8 = PyBytes_AS_STRING(text);
        nbytes = PyBytes_GET_SIZE(text);
    } else if (PyUnicode_Check(text)) {
        utf8 = PyUnicode_AsUTF8AndSize(text, &nbytes);
        if (utf8 == NULL) /* a lone surrogate: the error str.encode raises */
            return 0;
    } else {
        PyErr_SetString(PyExc_TypeError, "text_root: text must be str or bytes (UTF-8)");
        return 0;
    }
    if (PyObject_GetBuffer(seed, &t->seed, PyBUF_SIMPLE) < 0)
        return 0;
    Py_INCREF(text);
    t->text = text;
    t->u = (const unsigned char *)utf8;
    t->nbytes = nbytes;
    return 1;
}

static void
tree_texts_free(tree_text *texts, Py_ssize_t n)
{
    for (Py_ssize_t j = 0; j < n; j++) {
        if (texts[j].text == NULL)
            continue;
        PyBuffer_Release(&texts[j].seed);
        Py_DECREF(texts[j].text);
        PyMem_RawFree(texts[j].starts);
        PyMem_RawFree(texts[j].leaves);
    }
    PyMem_Free(texts);
}

/* the trees of n texts: 1, or 0 with an exception set */
static int
roots_of(tree_text *texts, Py_ssize_t n)
{
    int got;
    Py_BEGIN_ALLOW_THREADS
    got = trees_of(texts, n);
    Py_END_ALLOW_THREADS
    if (got == 0)
        PyErr_NoMemory();
    else if (got < 0)
        PyErr_SetString(PyExc_RuntimeError, "text_root: SHAKE-256 failed in libcrypto");
    return got == 1;
}

static PyObject *
text_root(PyObject *self, PyObject *args)
{
    PyObject *text, *seed;
    if (!PyArg_ParseTuple(args, "OO:text_root", &text, &seed))
        return NULL;
    tree_text *t = PyMem_Calloc(1, sizeof(tree_text));
    if (t == NULL)
        return PyErr_NoMemory();
    PyObject *out = NULL;
    if (tree_text_init(t, text, seed) && roots_of(t, 1))
        out = Py_BuildValue("(y#n)", (const char *)t->root, (Py_ssize_t)HASH, t->count);
    tree_texts_free(t, 1);
    return out;
}

static PyObject *
text_roots(PyObject *self, PyObject *args)
{
    PyObject *items;
    if (!PyArg_ParseTuple(args, "O!:text_roots", &PyList_Type, &items))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items);
    tree_text *texts = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(tree_text));
    if (texts == NULL)
        return PyErr_NoMemory();
    PyObject *out = NULL;
    Py_ssize_t j = 0;
    for (; j < n; j++) {
        PyObject *item = PyList_GET_ITEM(items, j); /* (the list cannot change: the GIL is held) */
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "text_roots: items must be (text, seed) tuples");
            break;
        }
        if (!tree_text_init(&texts[j], PyTuple_GET_ITEM(item, 0), PyTuple_GET_ITEM(item, 1)))
            break;
    }
    if (j == n && roots_of(texts, n) && (out = PyList_New(n)) != NULL) {
        for (j = 0; j < n; j++) {
            PyObject *pair = Py_BuildValue("(y#n)", (const char *)texts[j].root, (Py_ssize_t)HASH, texts[j].count);
            if (pair == NULL) {
                Py_CLEAR(out);
                break;
            }
            PyList_SET_ITEM(out, j, pair);
        }
    }
    tree_texts_free(texts, n);
    return out;
}

/* ---- UTF-8 text already in the text digest's normal form --------------------------------------
 *
 * A text's digest is the SHA-256 of its NFC form without BOM, with CR LF and CR as LF, in UTF-8
 * (textdigest.py). An article as archived is already that: its digest is the block's own
 * SHA-256. Python learns it by decoding the text (about 14 us for 5 KB of Arabic) and asking
 * unicodedata; utf8_nfc_plain learns it from the bytes, conservatively: valid UTF-8 whose every
 * code point is one NFC leaves alone in any neighbourhood (assigned, combining class 0, its own
 * NFC, never the second of a composition pair) other than NUL, CR and U+FEFF. A text made only of
 * such characters is its own NFC form. Only U+0000-U+07FF and U+2000-U+207F are covered (Latin,
 * Greek, Cyrillic, Hebrew, Arabic, Syriac; general punctuation); anything else returns 0, which
 * means "decode and see", not "not text". The tables were made from unicodedata (Python 3.11,
 * Unicode 14); tests/test_fasthash.py makes them again the same way and checks every code
 * point, alone and beside each other one of the tables. */
static const unsigned char NFC_SAFE_LOW[256] = {
    0xFE, 0xDF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0xEF, 0xBC,
    0x70, 0xD7, 0xFF, 0xFF, 0xFB, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0x07, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0xFF, 0xFF, 0xFF, 0x7F, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xE7, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x49, 0x00, 0xFF, 0xFF, 0xFF, 0x87, 0x1F, 0x00,
    0xFF, 0xFF, 0x00, 0xF8, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0x00, 0x00, 0xFF, 0xFF, 0xFE, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F, 0x60, 0x60, 0xC2, 0xFF, 0xFF,
    0xFF, 0xBF, 0xFD, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0xE0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x03, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 0xF0, 0xC7,
};
static const unsigned char NFC_SAFE_PUNCT[16] = {
    0xFC, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xDF, 0xFF, 0xF3, 0xFF,
};


static inline int
nfc_safe_bit(const unsigned char *table, unsigned cp)
{
    return (table[cp >> 3] >> (cp & 7)) & 1;
}

/* the tables spread out for the loops below, a byte per character: an ASCII byte is its own
   index; a two-byte sequence (lead C2-DF) is at 128 + (lead - C2) * 256 + its second byte,
   0 where the second is not a continuation byte (filled at import) */
static unsigned char nfc_safe[128 + 30 * 256];

static void
nfc_tables_init(void)
{
    for (unsigned c = 0; c < 128; c++)
        nfc_safe[c] = (unsigned char)nfc_safe_bit(NFC_SAFE_LOW, c);
    for (unsigned lead = 0xC2; lead <= 0xDF; lead++)
        for (unsigned next = 0x80; next <= 0xBF; next++)
            nfc_safe[128 + (lead - 0xC2) * 256 + next] =
                (unsigned char)nfc_safe_bit(NFC_SAFE_LOW, ((lead & 0x1F) << 6) | (next & 0x3F));
}

/* the careful way: what the fast loop leaves undecided (a three-byte character; a refusal) */
static int
nfc_plain_slow(const unsigned char *p, const unsigned char *end)
{
    while (p < end) {
        unsigned c = p[0];
        if (c < 0x80) {
            if (!nfc_safe[c])
                return 0;
            p++;
        } else if (c >= 0xC2 && c <= 0xDF) {
            if (end - p < 2 || !nfc_safe[128 + (c - 0xC2) * 256 + p[1]])
                return 0;
            p += 2;
        } else if (c == 0xE2) { /* U+2000-U+2FFF: never overlong, never a surrogate */
            if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
                return 0;
            unsigned cp = ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
            if (cp >= 0x2080 || !nfc_safe_bit(NFC_SAFE_PUNCT, cp - 0x2000))
                return 0;
            p += 3;
        } else {
            return 0;
        }
    }
    return 1;
}

static PyObject *
utf8_nfc_plain(PyObject *self, PyObject *arg)
{
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *p = b.buf, *end = p + b.len;
    int ok = 1;
    while (p < end) {
        /* runs of one kind at a time (a word of Arabic letters is a run of two-byte
           sequences): a loop per kind is predicted well within a run, where one loop that
           branched on each character's length was a third slower */
        const unsigned char *run = p;
        while (p < end && *p < 0x80 && nfc_safe[*p])
            p++;
        while (end - p >= 2 && p[0] - 0xC2u < 30u && nfc_safe[128 + (p[0] - 0xC2) * 256 + p[1]])
            p += 2;
        if (p == run) { /* neither goes on: a three-byte character, or something not accepted */
            ok = nfc_plain_slow(p, end);
            break;
        }
    }
    PyBuffer_Release(&b);
    return PyBool_FromLong(ok);
}

static PyObject *
write_new_files(PyObject *self, PyObject *args)
{
    PyObject *items;
    int sync;
    if (!PyArg_ParseTuple(args, "O!p:write_new_files", &PyList_Type, &items, &sync))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items);
    PyObject **paths = PyMem_Calloc((size_t)(n ? n : 1), sizeof(PyObject *));
    Py_buffer *datas = PyMem_Calloc((size_t)(n ? n : 1), sizeof(Py_buffer));
    if (paths == NULL || datas == NULL) {
        PyMem_Free(paths);
        PyMem_Free(datas);
        return PyErr_NoMemory();
    }
    Py_ssize_t ready = 0;
    PyObject *result = NULL;
    for (; ready < n; ready++) {
        PyObject *item = PyList_GET_ITEM(items, ready);
        PyObject *path_obj;
        if (!PyArg_ParseTuple(item, "Oy*:write_new_files item", &path_obj, &datas[ready]))
            goto done;
        if (!PyUnicode_FSConverter(path_obj, &paths[ready])) {
            PyBuffer_Release(&datas[ready]);
            goto done;
        }
    }
    Py_ssize_t failed = -1;
    int err = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && failed < 0; i++) {
        const char *path = PyBytes_AS_STRING(paths[i]);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0) {
            failed = i;
            err = errno;
            break;
        }
        const char *p = datas[i].buf;
        Py_ssize_t left = datas[i].len;
        while (left > 0) {
            ssize_t w = write(fd, p, (size_t)left);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                break;
            }
            p += w;
            left -= w;
        }
        if (left > 0 || (sync && fsync(fd) != 0)) {
            failed = i;
            err = errno;
            close(fd);
            unlink(path); /* no partial record left behind, as write_new */
            break;
        }
        if (close(fd) != 0) {
            failed = i;
            err = errno;
            unlink(path);
        }
    }
    Py_END_ALLOW_THREADS
    if (failed >= 0) {
        errno = err;
        PyObject *name = PyList_GET_ITEM(items, failed);
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, PyTuple_GET_ITEM(name, 0));
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < ready; i++) {
        Py_XDECREF(paths[i]);
        PyBuffer_Release(&datas[i]);
    }
    PyMem_Free(paths);
    PyMem_Free(datas);
    return result;
}

static PyObject *
b32encode(PyObject *self, PyObject *args)
{
    /* RFC 4648 base32 with padding, as base64.b32encode */
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    static const int pad_for[5] = {0, 6, 4, 3, 1}; /* '=' after 0..4 leftover bytes */
    Py_buffer in;
    if (!PyArg_ParseTuple(args, "y*:b32encode", &in))
        return NULL;
    if (in.len > PY_SSIZE_T_MAX / 8 * 5 - 5) {
        PyBuffer_Release(&in);
        return PyErr_NoMemory();
    }
    Py_ssize_t groups = (in.len + 4) / 5;
    PyObject *out = PyUnicode_New(groups * 8, 127);
    if (out == NULL) {
        PyBuffer_Release(&in);
        return NULL;
    }
    Py_UCS1 *dst = PyUnicode_1BYTE_DATA(out);
    const unsigned char *src = (const unsigned char *)in.buf;
    for (Py_ssize_t g = 0; g < groups; g++) {
        unsigned char block[5] = {0, 0, 0, 0, 0};
        Py_ssize_t take = in.len - g * 5 < 5 ? in.len - g * 5 : 5;
        memcpy(block, src + g * 5, (size_t)take);
        uint64_t v = ((uint64_t)block[0] << 32) | ((uint64_t)block[1] << 24) |
                     ((uint64_t)block[2] << 16) | ((uint64_t)block[3] << 8) | block[4];
        for (int k = 0; k < 8; k++)
            dst[g * 8 + k] = (Py_UCS1)alphabet[(v >> (35 - 5 * k)) & 31];
        if (take < 5)
            memset(dst + g * 8 + 8 - pad_for[take], '=', (size_t)pad_for[take]);
    }
    PyBuffer_Release(&in);
    return out;
}

/* ---- strict JSON: what a plain JSON parser leaves to check --------------------------------------
 *
 * canonical.load_strict_plain parses with a parser that has no per-object hook (orjson, or
 * json's C scanner: a Python call per object was half of parsing a manifest), then
 * json_finish walks the value once: it counts the members, notes plainness (every name
 * ASCII, every integer within +-(2**53 - 1)), notes what strict parsing refuses (nesting
 * deeper than max_depth, a float: orjson makes one of a fraction, an exponent or an
 * integer beyond 64 bits), and rebuilds dicts with interned member names (a verify holds
 * every manifest, each with the same eighty-odd names). Given a set of member names, it
 * interns their string values too: a manifest's key ids, roles, file names and formats
 * are the same in most of an archive's manifests, a quarter of a parsed one's memory
 * (interned, they also cross marshal from a worker as one object). json_colons counts the name
 * separators in the text: fewer members than separators means a name was given twice
 * (the dict kept one), which the long way then reports by name.
 */
#define MAX_SAFE_INTEGER 9007199254740991LL
#define JSON_WALK_LIMIT 1000 /* (Python's own recursion limit) */

typedef struct {
    Py_ssize_t members;
    int plain;
    int refused; /* too deep, or a float: the long way decides */
} json_shape;

static PyObject *
json_walk(PyObject *v, int depth, int max_depth, PyObject *shared, json_shape *shape)
{
    if (depth > max_depth) {
        shape->refused = 1;
        return Py_NewRef(v);
    }
    if (PyDict_CheckExact(v)) {
        PyObject *out = PyDict_New();
        if (out == NULL)
            return NULL;
        Py_ssize_t pos = 0;
        PyObject *key, *value;
        while (PyDict_Next(v, &pos, &key, &value)) {
            shape->members++;
            if (!PyUnicode_Check(key)) { /* json never makes one */
                Py_DECREF(out);
                PyErr_SetString(PyExc_TypeError, "json_finish: a member name that is not str");
                return NULL;
            }
            if (!PyUnicode_IS_ASCII(key))
                shape->plain = 0;
            Py_INCREF(key);
            PyUnicode_InternInPlace(&key);
            int share = shared != NULL && PyUnicode_CheckExact(value) ? PySet_Contains(shared, key) : 0;
            PyObject *walked = NULL;
            if (share > 0) {
                walked = Py_NewRef(value);
                PyUnicode_InternInPlace(&walked);
            } else if (share == 0) {
                walked = json_walk(value, depth + 1, max_depth, shared, shape);
            }
            int failed = walked == NULL || PyDict_SetItem(out, key, walked) < 0;
            Py_DECREF(key);
            Py_XDECREF(walked);
            if (failed) {
                Py_DECREF(out);
                return NULL;
            }
        }
        return out;
    }
    if (PyList_CheckExact(v)) {
        Py_ssize_t n = PyList_GET_SIZE(v);
        PyObject *out = PyList_New(n);
        if (out == NULL)
            return NULL;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *walked = json_walk(PyList_GET_ITEM(v, i), depth + 1, max_depth, shared, shape);
            if (walked == NULL) {
                Py_DECREF(out);
                return NULL;
            }
            PyList_SET_ITEM(out, i, walked);
        }
        return out;
    }
    if (PyLong_CheckExact(v)) {
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred())
            return NULL;
        if (overflow || x > MAX_SAFE_INTEGER || x < -MAX_SAFE_INTEGER)
            shape->plain = 0;
    } else if (PyFloat_Check(v)) {
        shape->refused = 1;
    }
    return Py_NewRef(v);
}

static PyObject *
json_finish(PyObject *self, PyObject *args)
{
    PyObject *value, *shared = Py_None;
    int max_depth;
    if (!PyArg_ParseTuple(args, "Oi|O:json_finish", &value, &max_depth, &shared))
        return NULL;
    if (max_depth < 1 || max_depth > JSON_WALK_LIMIT) { /* (the walk recurses on the C stack) */
        PyErr_SetString(PyExc_ValueError, "json_finish: max_depth out of range");
        return NULL;
    }
    if (shared != Py_None && !PyAnySet_Check(shared)) {
        PyErr_SetString(PyExc_TypeError, "json_finish: shared must be a set of member names or None");
        return NULL;
    }
    json_shape shape = {0, 1, 0};
    PyObject *walked = json_walk(value, 1, max_depth, shared == Py_None ? NULL : shared, &shape);
    if (walked == NULL)
        return NULL;
    return Py_BuildValue("(NnNN)", walked, shape.members, PyBool_FromLong(shape.plain),
                         PyBool_FromLong(shape.refused));
}

static PyObject *
json_colons(PyObject *self, PyObject *args)
{
    Py_buffer data;
    if (!PyArg_ParseTuple(args, "y*:json_colons", &data))
        return NULL;
    const unsigned char *p = data.buf;
    Py_ssize_t n = data.len, count = 0;
    int in_string = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character, whatever it is */
            else if (c == '"')
                in_string = 0;
        } else if (c == '"') {
            in_string = 1;
        } else if (c == ':') {
            count++;
        }
    }
    PyBuffer_Release(&data);
    return PyLong_FromSsize_t(count);
}

/* ---- one WARC record, whole ------------------------------------------------------------------
 *
 * A full verify reads 165,000 records of a few KB each, one gzip member per record. Through
 * warcread.RecordReader each costs a decompressor object, a few slicing copies, a header parse
 * in Python and two hash objects: about 60 us, more than the record's inflate and hashes. This
 * does the common case in one call, with one z_stream reused (inflateReset), and accepts only
 * what the streaming reader accepts with the same result: a member that inflates completely to
 * at most ``cap`` bytes, a header of printable ASCII lines (no folded lines, no control
 * characters but the CRLFs: its values are then the same after Python's str.strip) starting
 * WARC/1.0 or WARC/1.1, within ``max_header`` bytes (warcread.MAX_HEADER), a Content-Length of 1 to 16 digits at most
 * 2^53 in the first such field, the block of exactly that length, then CRLF CRLF and the end of
 * the member. Anything else returns -1 and the caller reads the member again with the streaming
 * reader, which finds the fault and words it; 0 means the input ended inside the member.
 */

#ifdef HAVE_LIBDEFLATE
/* libdeflate inflates a small member in about half zlib's time. It takes the member whole and
 * cannot tell a truncated member from a corrupt one, nor does it check a gzip header's own CRC
 * (FHCRC): for those, and for anything it refuses, zlib decides, as without it. */
static struct libdeflate_decompressor *member_d;
#define GZIP_FLAGS_FOR_LIBDEFLATE 0x1d /* FTEXT, FEXTRA, FNAME, FCOMMENT; not FHCRC, nor reserved */
#endif
static z_stream member_z;
static int member_z_ready;
static unsigned char *member_out;
static size_t member_out_size;

static Py_ssize_t
header_end(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i + 3 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n' && p[i + 2] == '\r' && p[i + 3] == '\n')
            return (Py_ssize_t)i;
    return -1;
}

/* the header fields a record's findings keep (warcscan.RecordInfo), in their order: the
 * module's WARC_FIELDS, which fasthash.py compares with its own before it uses warc_member */
#define WARC_FIELD(name) {name, sizeof(name) - 1}
static const struct {
    const char *name;
    size_t len;
} WARC_FIELDS[] = {WARC_FIELD("warc-type"),          WARC_FIELD("warc-record-id"),
                   WARC_FIELD("warc-date"),          WARC_FIELD("content-type"),
                   WARC_FIELD("warc-target-uri"),    WARC_FIELD("warc-block-digest"),
                   WARC_FIELD("warc-payload-digest"), WARC_FIELD("warc-refers-to"),
                   WARC_FIELD("warc-concurrent-to")};
#define N_WARC_FIELDS ((int)(sizeof WARC_FIELDS / sizeof WARC_FIELDS[0]))

/* the values of WARC_FIELDS in the header (each one's first occurrence, None where absent) as
 * Python's reader takes them, or NULL with *plain = 0 (not plain: the streaming reader
 * decides) or with an exception set. Every line is checked; only these values become
 * Python objects (building every field's name and value was a third of this call). */
static PyObject *
header_fields(const unsigned char *h, size_t n, long long *content_length, int *plain)
{
    *plain = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = h[i];
        if (c == '\r') {
            if (i + 1 >= n || h[i + 1] != '\n')
                return NULL;
            i++;
        } else if (c == '\n' || c < 0x20 || c > 0x7e) {
            return NULL;
        }
    }
    size_t line_end = 0;
    while (line_end < n && h[line_end] != '\r')
        line_end++;
    if (line_end != 8 || (memcmp(h, "WARC/1.1", 8) != 0 && memcmp(h, "WARC/1.0", 8) != 0))
        return NULL;
    PyObject *values[N_WARC_FIELDS] = {NULL};
    *content_length = -1;
    size_t pos = line_end;
    int ok = 1;
    while (ok && pos < n) {
        pos += 2; /* the CRLF before this line */
        size_t start = pos, colon = 0;
        int has_colon = 0;
        while (pos < n && h[pos] != '\r') {
            if (h[pos] == ':' && !has_colon) {
                has_colon = 1;
                colon = pos;
            }
            pos++;
        }
        /* a folded line (starting with a space), a line without a colon, an empty name or one
         * with spaces around it, a name longer than any WARC field's: the streaming reader
         * decides */
        char name[64];
        size_t name_len = colon - start;
        if (!has_colon || colon == start || h[start] == ' ' || h[colon - 1] == ' ' ||
            name_len >= sizeof name) {
            ok = 0;
            break;
        }
        size_t vs = colon + 1, ve = pos;
        while (vs < ve && h[vs] == ' ')
            vs++;
        while (ve > vs && h[ve - 1] == ' ')
            ve--;
        for (size_t k = 0; k < name_len; k++) {
            unsigned char c = h[start + k];
            name[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
        }
        if (*content_length == -1 && name_len == 14 && memcmp(name, "content-length", 14) == 0) {
            size_t digits = ve - vs;
            long long v = 0;
            int number = digits >= 1 && digits <= 16;
            for (size_t k = vs; number && k < ve; k++) {
                if (h[k] < '0' || h[k] > '9')
                    number = 0;
                else
                    v = v * 10 + (h[k] - '0');
            }
            if (!number || v > (1LL << 53)) {
                ok = 0;
                break;
            }
            *content_length = v;
        }
        for (int f = 0; f < N_WARC_FIELDS; f++) {
            if (values[f] == NULL && WARC_FIELDS[f].len == name_len &&
                memcmp(name, WARC_FIELDS[f].name, name_len) == 0) {
                values[f] = PyUnicode_DecodeASCII((const char *)h + vs, (Py_ssize_t)(ve - vs), NULL);
                if (values[f] == NULL) {
                    *plain = 1; /* (the exception is set) */
                    ok = 0;
                }
                break;
            }
        }
    }
    PyObject *out = NULL;
    if (ok && *content_length >= 0) {
        out = PyTuple_New(N_WARC_FIELDS);
        if (out == NULL)
            *plain = 1;
        for (int f = 0; out != NULL && f < N_WARC_FIELDS; f++) {
            PyTuple_SET_ITEM(out, f, values[f] != NULL ? values[f] : Py_NewRef(Py_None));
            values[f] = NULL;
        }
        if (out != NULL)
            *plain = 1;
    }
    for (int f = 0; f < N_WARC_FIELDS; f++)
        Py_XDECREF(values[f]);
    return out;
}

static PyObject *
warc_member(PyObject *self, PyObject *args)
{
    Py_buffer in;
    Py_ssize_t cap, max_header;
    if (!PyArg_ParseTuple(args, "y*nn:warc_member", &in, &cap, &max_header))
        return NULL;
    PyObject *result = NULL;
    int verdict = -1; /* returned when no tuple is: -1 streaming reader, 0 more input */
    if (cap < 0 || cap > ((Py_ssize_t)1 << 30) || max_header < 0 || max_header > cap) {
        PyErr_SetString(PyExc_ValueError, "warc_member: cap or max_header out of range");
        goto done;
    }
    if (!member_z_ready) {
        memset(&member_z, 0, sizeof member_z);
        if (inflateInit2(&member_z, 31) != Z_OK) {
            PyErr_SetString(PyExc_MemoryError, "warc_member: inflateInit2 failed");
            goto done;
        }
        member_z_ready = 1;
    } else if (inflateReset2(&member_z, 31) != Z_OK) {
        PyErr_SetString(PyExc_RuntimeError, "warc_member: inflateReset2 failed");
        goto done;
    }
    if ((size_t)cap + 1 > member_out_size) {
        unsigned char *grown = realloc(member_out, (size_t)cap + 1);
        if (grown == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        member_out = grown;
        member_out_size = (size_t)cap + 1;
    }
    const unsigned char *src = in.buf;
    size_t src_left = (size_t)in.len, out_len = 0;
#ifdef HAVE_LIBDEFLATE
    if (member_d == NULL && (member_d = libdeflate_alloc_decompressor()) == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (in.len > 10 && (src[3] & ~GZIP_FLAGS_FOR_LIBDEFLATE) == 0) {
        size_t used = 0;
        enum libdeflate_result r =
            libdeflate_gzip_decompress_ex(member_d, src, src_left, member_out, member_out_size, &used, &out_len);
        if (r == LIBDEFLATE_INSUFFICIENT_SPACE)
            goto done; /* larger than cap */
        if (r == LIBDEFLATE_SUCCESS) {
            src_left -= used;
            goto inflated;
        }
        out_len = 0; /* truncated or corrupt: zlib says which */
    }
#endif
    /* zlib counts in uInt: feed and drain in pieces well under 4 GB */
    int rc = Z_OK;
    while (rc == Z_OK) {
        size_t feed = src_left < (1u << 30) ? src_left : (1u << 30);
        member_z.next_in = (unsigned char *)src;
        member_z.avail_in = (uInt)feed;
        member_z.next_out = member_out + out_len;
        member_z.avail_out = (uInt)(member_out_size - out_len); /* one byte over cap: seen */
        rc = inflate(&member_z, Z_NO_FLUSH);
        size_t used = feed - member_z.avail_in;
        src += used;
        src_left -= used;
        out_len = member_out_size - member_z.avail_out;
        if (rc == Z_BUF_ERROR && member_z.avail_out > 0 && src_left == 0) {
            verdict = 0; /* the input ends inside the member */
            goto done;
        }
        if (rc == Z_OK && member_z.avail_out == 0)
            goto done; /* larger than cap */
        if (rc == Z_OK && src_left == 0) {
            verdict = 0;
            goto done;
        }
    }
    if (rc != Z_STREAM_END)
        goto done;
#ifdef HAVE_LIBDEFLATE
inflated:
#endif
    if (out_len > (size_t)cap)
        goto done;
    size_t search = (size_t)max_header + 4;
    Py_ssize_t end = header_end(member_out, out_len < search ? out_len : search);
    if (end < 0)
        goto done;
    long long length = -1;
    int plain = 0;
    PyObject *fields = header_fields(member_out, (size_t)end, &length, &plain);
    if (fields == NULL)
        goto done; /* not plain, or (plain set) an exception */
    size_t body = (size_t)end + 4;
    if (out_len < body + 4 || (unsigned long long)length != (unsigned long long)(out_len - body - 4) ||
        memcmp(member_out + out_len - 4, "\r\n\r\n", 4) != 0) {
        Py_DECREF(fields);
        goto done;
    }
    unsigned char digest[HASH];
    SHA256_CTX sha; /* (not SHA256(): in OpenSSL 3 it looks the algorithm up on every call) */
    SHA256_Init(&sha);
    SHA256_Update(&sha, member_out + body, (size_t)length);
    SHA256_Final(digest, &sha);
    result = Py_BuildValue("(nNy#y#)", (Py_ssize_t)(in.len - (Py_ssize_t)src_left), fields,
                           (const char *)member_out + body, (Py_ssize_t)length, (const char *)digest,
                           (Py_ssize_t)HASH);
done:
    PyBuffer_Release(&in);
    if (result != NULL || PyErr_Occurred())
        return result;
    return PyLong_FromLong(verdict);
}

#ifndef HAVE_SHANI
static int
cpu_has_shani(void)
{
    return 0;
}

static int
cpu_has_x16(void)
{
    return 0;
}
#endif

/* fn(enable=None): switch one of the tree's paths on (where the CPU has it) or off; whether it is on */
static PyObject *
switch_path(PyObject *args, const char *format, int *flag, int (*available)(void))
{
    PyObject *enable = Py_None;
    if (!PyArg_ParseTuple(args, format, &enable))
        return NULL;
    if (enable != Py_None) {
        int want = PyObject_IsTrue(enable);
        if (want < 0)
            return NULL;
        *flag = want && available();
    }
    return PyBool_FromLong(*flag);
}

static PyObject *
x16(PyObject *self, PyObject *args)
{
    return switch_path(args, "|O:x16", &use_x16, cpu_has_x16);
}

static PyObject *
sha_ni(PyObject *self, PyObject *args)
{
    return switch_path(args, "|O:sha_ni", &use_shani, cpu_has_shani);
}

/* ---- RFC 8785 of a plain value ----------------------------------------------------------------
 *
 * canonical.canonical_bytes of a plain value is json's C encoder with sorted keys and no white
 * space, then str.encode: about 30 us for a 2 KB manifest, once per signature checked or made.
 * This writes the same UTF-8 directly. It takes exactly the plain values: dict (exactly) with
 * ASCII str keys (sorted by their bytes, which for ASCII is RFC 8785's UTF-16 order), list,
 * str, int within +-(2^53 - 1), True, False, None. For anything else (a float, a larger
 * integer, a subclass, a non-ASCII key, a lone surrogate, nesting over 256) it returns None and
 * the caller takes the general path, which refuses or encodes as before.
 */
typedef struct {
    char *buf;
    size_t len, cap;
} jbuf;

static int
jb_grow(jbuf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 1;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more)
        cap *= 2;
    char *grown = PyMem_Realloc(b->buf, cap);
    if (grown == NULL)
        return 0;
    b->buf = grown;
    b->cap = cap;
    return 1;
}

static int
jb_put(jbuf *b, const char *p, size_t n)
{
    if (!jb_grow(b, n))
        return 0;
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    return 1;
}

/* a JSON string, escaped as JSON.stringify (and json with ensure_ascii=False) does */
static int
jb_string(jbuf *b, const char *s, Py_ssize_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (!jb_grow(b, (size_t)n * 6 + 2))
        return 0;
    char *o = b->buf + b->len;
    *o++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\t': *o++ = 't'; break;
        case '\n': *o++ = 'n'; break;
        case '\f': *o++ = 'f'; break;
        case '\r': *o++ = 'r'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->buf);
    return 1;
}

typedef struct {
    const char *s;
    Py_ssize_t n;
    PyObject *value;
} jmember;

static int
jmember_cmp(const void *x, const void *y)
{
    const jmember *a = x, *b = y;
    Py_ssize_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->s, b->s, (size_t)n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

#define JSON_NOT_PLAIN 0
#define JSON_DONE 1
#define JSON_ERROR -1 /* an exception is set (out of memory) */
#define JSON_MAX_NEST 256

static int
jb_value(jbuf *b, PyObject *v, int depth)
{
    if (depth > JSON_MAX_NEST)
        return JSON_NOT_PLAIN;
    if (v == Py_None)
        return jb_put(b, "null", 4) ? JSON_DONE : JSON_ERROR;
    if (v == Py_True)
        return jb_put(b, "true", 4) ? JSON_DONE : JSON_ERROR;
    if (v == Py_False)
        return jb_put(b, "false", 5) ? JSON_DONE : JSON_ERROR;
    if (PyUnicode_CheckExact(v)) {
        Py_ssize_t n;
        const char *u = PyUnicode_AsUTF8AndSize(v, &n);
        if (u == NULL) { /* a lone surrogate: the general path says so */
            PyErr_Clear();
            return JSON_NOT_PLAIN;
        }
        return jb_string(b, u, n) ? JSON_DONE : JSON_ERROR;
    }
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (overflow || x > 9007199254740991LL || x < -9007199254740991LL)
            return JSON_NOT_PLAIN;
        char num[24];
        int k = snprintf(num, sizeof num, "%lld", x);
        return jb_put(b, num, (size_t)k) ? JSON_DONE : JSON_ERROR;
    }
    if (PyList_CheckExact(v)) {
        if (!jb_put(b, "[", 1))
            return JSON_ERROR;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
            if (i && !jb_put(b, ",", 1))
                return JSON_ERROR;
            int r = jb_value(b, PyList_GET_ITEM(v, i), depth + 1); /* (no Python code runs) */
            if (r != JSON_DONE)
                return r;
        }
        return jb_put(b, "]", 1) ? JSON_DONE : JSON_ERROR;
    }
    if (PyDict_CheckExact(v)) {
        Py_ssize_t n = PyDict_GET_SIZE(v), pos = 0, i = 0;
        jmember stack_members[32];
        jmember *m = n <= 32 ? stack_members : PyMem_Malloc(sizeof(jmember) * (size_t)n);
        if (m == NULL) {
            PyErr_NoMemory();
            return JSON_ERROR;
        }
        PyObject *key, *value;
        int r = JSON_DONE;
        while (PyDict_Next(v, &pos, &key, &value)) {
            if (!PyUnicode_CheckExact(key) || !PyUnicode_IS_ASCII(key)) {
                r = JSON_NOT_PLAIN;
                break;
            }
            m[i].s = (const char *)PyUnicode_DATA(key); /* ASCII: one byte per character */
            m[i].n = PyUnicode_GET_LENGTH(key);
            m[i].value = value;
            i++;
        }
        if (r == JSON_DONE) {
            qsort(m, (size_t)i, sizeof(jmember), jmember_cmp);
            r = jb_put(b, "{", 1) ? JSON_DONE : JSON_ERROR;
            for (Py_ssize_t k = 0; k < i && r == JSON_DONE; k++) {
                if ((k && !jb_put(b, ",", 1)) || !jb_string(b, m[k].s, m[k].n) || !jb_put(b, ":", 1)) {
                    r = JSON_ERROR;
                    break;
                }
                r = jb_value(b, m[k].value, depth + 1);
            }
            if (r == JSON_DONE && !jb_put(b, "}", 1))
                r = JSON_ERROR;
        }
        if (m != stack_members)
            PyMem_Free(m);
        if (r == JSON_ERROR && !PyErr_Occurred())
            PyErr_NoMemory();
        return r;
    }
    return JSON_NOT_PLAIN;
}

static PyObject *
json_canonical(PyObject *self, PyObject *args)
{
    PyObject *value;
    if (!PyArg_ParseTuple(args, "O:json_canonical", &value))
        return NULL;
    jbuf b = {NULL, 0, 0};
    int r = jb_value(&b, value, 1);
    PyObject *out = NULL;
    if (r == JSON_DONE)
        out = PyBytes_FromStringAndSize(b.buf, (Py_ssize_t)b.len);
    else if (r == JSON_NOT_PLAIN)
        out = Py_NewRef(Py_None);
    else if (!PyErr_Occurred())
        PyErr_NoMemory();
    PyMem_Free(b.buf);
    return out;
}

static PyMethodDef methods[] = {
    {"text_root", text_root, METH_VARARGS,
     "text_root(text, seed) -> (root, tokens): the whole token tree of a text"},
    {"text_roots", text_roots, METH_VARARGS,
     "text_roots([(text, seed), ...]) -> [(root, tokens), ...]: text_root of each, salts eight at a time"},
    {"utf8_nfc_plain", utf8_nfc_plain, METH_O,
     "utf8_nfc_plain(data) -> whether data is UTF-8 text already in the text digest's normal form"},
    {"write_new_files", write_new_files, METH_VARARGS,
     "write_new_files([(path, data), ...], sync) -> create each file anew with its data"},
    {"b32encode", b32encode, METH_VARARGS,
     "b32encode(data) -> base64.b32encode(data).decode('ascii'), faster"},
    {"split_tokens", split_tokens, METH_VARARGS,
     "split_tokens(text, pos=0) -> re.findall(r'\\S+\\s*', text, pos), faster"},
    {"leaf_hashes", leaf_hashes, METH_VARARGS,
     "leaf_hashes(salts, tokens) -> SHA-256(0x00 || salt_i || UTF-8(token_i)) for each token, concatenated"},
    {"perfect_root", perfect_root, METH_VARARGS,
     "perfect_root(nodes) -> the RFC 9162 root of 2^k concatenated 32-byte hashes"},
    {"json_finish", json_finish, METH_VARARGS,
     "json_finish(value, max_depth) -> (value, members, plain, refused): see canonical.py"},
    {"json_colons", json_colons, METH_VARARGS,
     "json_colons(data) -> the number of ':' outside strings in JSON text"},
    {"warc_member", warc_member, METH_VARARGS,
     "warc_member(data, cap, max_header) -> (consumed, values of WARC_FIELDS, block, sha256), "
     "or 0 (more input) or -1"},
    {"json_canonical", json_canonical, METH_VARARGS,
     "json_canonical(value) -> RFC 8785 bytes of a plain value, or None: see canonical.py"},
    {"sha_ni", sha_ni, METH_VARARGS,
     "sha_ni(enable=None) -> whether the tree's SHA-256 uses the CPU's SHA instructions"},
    {"x16", x16, METH_VARARGS,
     "x16(enable=None) -> whether the tree hashes sixteen leaves or nodes at once (AVX-512)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "archiver._fasthash",
    "Token trees, base32, batched writes, strict and canonical JSON, whole WARC records in C "
    "(references: archiver/fasthash.py, canonical.py, warcread.py).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__fasthash(void)
{
    nfc_tables_init(); /* (on every CPU: utf8_nfc_plain is not an x86 fast path) */
#ifdef HAVE_SHANI
    use_shani = cpu_has_shani();
    use_x16 = cpu_has_x16();
#endif
    PyObject *m = PyModule_Create(&module);
    PyObject *fields = m == NULL ? NULL : PyTuple_New(N_WARC_FIELDS);
    for (int f = 0; fields != NULL && f < N_WARC_FIELDS; f++) {
        PyObject *name = PyUnicode_FromString(WARC_FIELDS[f].name);
        if (name == NULL)
            Py_CLEAR(fields);
        else
            PyTuple_SET_ITEM(fields, f, name);
    }
    if (m != NULL && (fields == NULL || PyModule_AddObject(m, "WARC_FIELDS", fields) < 0)) {
        Py_XDECREF(fields);
        Py_DECREF(m);
        return NULL;
    }
#ifdef HAVE_LIBDEFLATE
    int libdeflate = 1;
#else
    int libdeflate = 0;
#endif
    if (m != NULL && PyModule_AddIntConstant(m, "LIBDEFLATE", libdeflate) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}

#define _DEFAULT_SOURCE
#include "hmac-sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void compress_portable(uint32_t state[8], const uint8_t block[64]) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)block[4 * i] << 24 | (uint32_t)block[4 * i + 1] << 16 |
           (uint32_t)block[4 * i + 2] << 8 | (uint32_t)block[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
  uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
  for (int i = 0; i < 64; i++) {
    uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
    uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = b;
    b = a;
    a = t1 + t2;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

/*
 * The same compression with the SHA extensions (most x86 CPUs since 2016):
 * about five times faster, and minting is mostly SHA-256 (29 blocks a token).
 * Four rounds per step; message words are expanded with sha256msg1/msg2 from
 * step 1 to 14, as Intel's reference arranges them.
 */
__attribute__((target("sha,sse4.1,ssse3"))) static void compress_shani(uint32_t state[8],
                                                                       const uint8_t block[64]) {
  const __m128i byteswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1);    /* CDAB */
  __m128i state1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B); /* EFGH */
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);                                      /* ABEF */
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);                                           /* CDGH */
  const __m128i abef = state0, cdgh = state1;
  __m128i m[4];
  for (int j = 0; j < 4; j++)
    m[j] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(block + 16 * j)), byteswap);
  for (int i = 0; i < 16; i++) {
    const __m128i cur = m[i & 3];
    __m128i msg = _mm_add_epi32(cur, _mm_loadu_si128((const __m128i *)&K[4 * i]));
    state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
    if (i >= 3 && i <= 14) {
      const __m128i carry = _mm_alignr_epi8(cur, m[(i - 1) & 3], 4);
      m[(i + 1) & 3] = _mm_sha256msg2_epu32(_mm_add_epi32(m[(i + 1) & 3], carry), cur);
    }
    msg = _mm_shuffle_epi32(msg, 0x0E);
    state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
    if (i >= 1 && i <= 12) m[(i - 1) & 3] = _mm_sha256msg1_epu32(m[(i - 1) & 3], cur);
  }
  state0 = _mm_add_epi32(state0, abef);
  state1 = _mm_add_epi32(state1, cdgh);
  tmp = _mm_shuffle_epi32(state0, 0x1B);       /* FEBA */
  state1 = _mm_shuffle_epi32(state1, 0xB1);    /* DCHG */
  state0 = _mm_blend_epi16(tmp, state1, 0xF0); /* DCBA */
  state1 = _mm_alignr_epi8(state1, tmp, 8);    /* ABEF */
  _mm_storeu_si128((__m128i *)&state[0], state0);
  _mm_storeu_si128((__m128i *)&state[4], state1);
}

static int cpu_has_sha(void) {
  unsigned int a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
  int ssse3 = (c >> 9) & 1, sse41 = (c >> 19) & 1;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return ssse3 && sse41 && ((b >> 29) & 1);
}
#endif

/*
 * Chosen once, when the addon loads, before any thread can hash, and never
 * written again: every context copies it at init (sha256_init_with lets a
 * test pick the portable code for one context without touching the others).
 */
static sha256_compress_fn best_compress = compress_portable;

__attribute__((constructor)) static void choose_compress(void) {
#if defined(__x86_64__)
  if (cpu_has_sha()) best_compress = compress_shani;
#endif
}

int sha256_accelerated(void) { return best_compress != compress_portable; }

void sha256_init(sha256_ctx *ctx) { sha256_init_with(ctx, 0); }

void sha256_init_with(sha256_ctx *ctx, int portable) {
  ctx->compress = portable ? compress_portable : best_compress;
  static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(ctx->state, initial, sizeof(initial));
  ctx->length = 0;
  ctx->used = 0;
}

void sha256_update(sha256_ctx *ctx, const uint8_t *data, size_t len) {
  ctx->length += len;
  /* Whole blocks straight from the input. */
  if (ctx->used == 0) {
    while (len >= SHA256_BLOCK_LENGTH) {
      ctx->compress(ctx->state, data);
      data += SHA256_BLOCK_LENGTH;
      len -= SHA256_BLOCK_LENGTH;
    }
  }
  while (len > 0) {
    size_t take = SHA256_BLOCK_LENGTH - ctx->used;
    if (take > len) take = len;
    memcpy(ctx->block + ctx->used, data, take);
    ctx->used += take;
    data += take;
    len -= take;
    if (ctx->used == SHA256_BLOCK_LENGTH) {
      ctx->compress(ctx->state, ctx->block);
      ctx->used = 0;
    }
  }
}

void sha256_final(sha256_ctx *ctx, uint8_t out[SHA256_DIGEST_LENGTH]) {
  uint64_t bits = ctx->length * 8;
  ctx->block[ctx->used++] = 0x80;
  if (ctx->used > 56) {
    memset(ctx->block + ctx->used, 0, SHA256_BLOCK_LENGTH - ctx->used);
    ctx->compress(ctx->state, ctx->block);
    ctx->used = 0;
  }
  memset(ctx->block + ctx->used, 0, 56 - ctx->used);
  for (int i = 0; i < 8; i++) ctx->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
  ctx->compress(ctx->state, ctx->block);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(ctx->state[i] >> 24);
    out[4 * i + 1] = (uint8_t)(ctx->state[i] >> 16);
    out[4 * i + 2] = (uint8_t)(ctx->state[i] >> 8);
    out[4 * i + 3] = (uint8_t)ctx->state[i];
  }
  wipe(ctx, sizeof(*ctx));
}

void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len,
                 uint8_t out[SHA256_DIGEST_LENGTH]) {
  hmac_sha256_with(key, key_len, data, data_len, out, 0);
}

void hmac_sha256_with(const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len,
                      uint8_t out[SHA256_DIGEST_LENGTH], int portable) {
  uint8_t block[SHA256_BLOCK_LENGTH] = {0};
  if (key_len > SHA256_BLOCK_LENGTH) {
    sha256_ctx kctx;
    sha256_init_with(&kctx, portable);
    sha256_update(&kctx, key, key_len);
    sha256_final(&kctx, block);
  } else if (key_len > 0) {
    /* An empty key may come as NULL, which memcpy may not be given even for 0 bytes. */
    memcpy(block, key, key_len);
  }
  uint8_t pad[SHA256_BLOCK_LENGTH];
  uint8_t inner[SHA256_DIGEST_LENGTH];
  sha256_ctx ctx;
  for (int i = 0; i < SHA256_BLOCK_LENGTH; i++) pad[i] = block[i] ^ 0x36;
  sha256_init_with(&ctx, portable);
  sha256_update(&ctx, pad, sizeof(pad));
  sha256_update(&ctx, data, data_len);
  sha256_final(&ctx, inner);
  for (int i = 0; i < SHA256_BLOCK_LENGTH; i++) pad[i] = block[i] ^ 0x5c;
  sha256_init_with(&ctx, portable);
  sha256_update(&ctx, pad, sizeof(pad));
  sha256_update(&ctx, inner, sizeof(inner));
  sha256_final(&ctx, out);
  wipe(block, sizeof(block));
  wipe(pad, sizeof(pad));
  wipe(inner, sizeof(inner));
}

void wipe(void *p, size_t n) { explicit_bzero(p, n); }

/*
 * SHA-256 and HMAC-SHA256 (FIPS 180-4, RFC 2104), self-contained.
 *
 * Why not OpenSSL's libcrypto: Node's own binary exports OpenSSL symbols, and
 * an addon linked against the system libcrypto would have its calls bound to
 * whichever copy the dynamic linker finds first, which depends on how that
 * Node was built. Two hundred lines checked against RFC 4231's vectors and
 * node:crypto (test/unit/native-mint.test.ts) depend on nothing.
 */
#ifndef MINTFS_HMAC_SHA256_H
#define MINTFS_HMAC_SHA256_H
#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LENGTH 32
#define SHA256_BLOCK_LENGTH 64

typedef void (*sha256_compress_fn)(uint32_t state[8], const uint8_t block[64]);

typedef struct {
  sha256_compress_fn compress;
  uint32_t state[8];
  uint64_t length; /* bytes hashed so far */
  uint8_t block[SHA256_BLOCK_LENGTH];
  size_t used;
} sha256_ctx;

void sha256_init(sha256_ctx *ctx);
/* portable = 1: the plain C compression whatever the CPU has (tests compare both). */
void sha256_init_with(sha256_ctx *ctx, int portable);
void sha256_update(sha256_ctx *ctx, const uint8_t *data, size_t len);
void sha256_final(sha256_ctx *ctx, uint8_t out[SHA256_DIGEST_LENGTH]);

void hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len,
                 uint8_t out[SHA256_DIGEST_LENGTH]);

/* Whether blocks go through the CPU's SHA extensions. */
int sha256_accelerated(void);
/* hmac_sha256 on the portable compression when `portable` is 1. */
void hmac_sha256_with(const uint8_t *key, size_t key_len, const uint8_t *data, size_t data_len,
                      uint8_t out[SHA256_DIGEST_LENGTH], int portable);

/* Overwrites memory in a way the compiler may not drop. */
void wipe(void *p, size_t n);
#endif

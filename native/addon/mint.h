/*
 * Minting in C, byte for byte what src/token/mint.ts and src/fs/token-content.ts
 * produce (test/unit/native-mint.test.ts compares them, and pymacaroons checks
 * the signatures). Pure: the clock reading and the random token id come in as
 * arguments, the key as an already derived macaroon key.
 */
#ifndef MINTFS_MINT_H
#define MINTFS_MINT_H
#include <stddef.h>
#include <stdint.h>

#include "hmac-sha256.h"

#define TOKEN_ID_BYTES 16
#define TOKEN_ID_LENGTH 22 /* base64url of 16 bytes, no padding */

typedef struct {
  char *key_id;
  /* HMAC-SHA256("macaroons-key-generator", root key): what signs, never the root key. */
  uint8_t derived_key[SHA256_DIGEST_LENGTH];
  char *location;
  /* Every caveat but time-before (and reader), in order: service, agent, host, method, path. */
  char **caveats;
  size_t caveat_count;
  int64_t ttl_ms;
  /*
   * The file's format, as src/fs/token-content.ts's FORMAT_LAYOUTS gives it:
   * text before the prefix and token, and text after it in which {expiresAt}
   * and {tokenId} are filled in. The minter knows no format of its own.
   */
  char *before;
  char *after;
  /* Text before the token (profile `prefix`, e.g. ghp_), "" for none; checked by the profile
   * schema. */
  char *prefix;
  /*
   * An approval caveat (third-party, src/approval/), last: its ticket (the
   * caveat id) and the caveat's derived root key, sealed into each token's
   * verification id. approval_ticket is NULL for files without approval.
   */
  uint8_t *approval_ticket;
  size_t approval_ticket_length;
  uint8_t approval_key[SHA256_DIGEST_LENGTH];
} mint_template;

typedef struct {
  char token_id[TOKEN_ID_LENGTH + 1];
  int64_t expires_s; /* Unix seconds */
} mint_info;

typedef struct {
  uint8_t *bytes;
  size_t length;
  size_t capacity;
  int failed; /* out of memory: the buffer is unusable */
} byte_buffer;

void buffer_append(byte_buffer *b, const void *data, size_t len);
void buffer_append_str(byte_buffer *b, const char *s);
/* Wipes and frees the bytes. */
void buffer_release(byte_buffer *b);

/*
 * Renders one token file's content into `out` (an empty buffer). reader_caveat
 * is the whole caveat text or NULL. Returns 0, or -1 when out of memory.
 */
int mint_render(const mint_template *t, int64_t now_ms, const uint8_t id_bytes[TOKEN_ID_BYTES],
                const char *reader_caveat, byte_buffer *out, mint_info *info);

void mint_template_free(mint_template *t);
#endif

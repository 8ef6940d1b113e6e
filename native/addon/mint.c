#include "mint.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FIELD_EOS 0
#define FIELD_LOCATION 1
#define FIELD_IDENTIFIER 2
#define FIELD_VID 4
#define FIELD_SIGNATURE 6
#define APPROVAL_LOCATION "mintfs-approval"
/* src/token/third-party.ts: nonce, Poly1305 tag, a 32-byte key. */
#define VID_LENGTH (crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + SHA256_DIGEST_LENGTH)

static const char VID_NONCE_LABEL[] = "mintfs third-party vid nonce";

void buffer_append(byte_buffer *b, const void *data, size_t len) {
  /* Nothing to add: and memcpy to an empty buffer's NULL is undefined even for 0 bytes (UBSan). */
  if (b->failed || len == 0) return;
  if (b->length + len > b->capacity) {
    size_t capacity = b->capacity == 0 ? 512 : b->capacity;
    while (capacity < b->length + len) capacity *= 2;
    /* Not realloc: the old bytes may hold a token and must be wiped, not left behind. */
    uint8_t *grown = malloc(capacity);
    if (grown == NULL) {
      buffer_release(b);
      b->failed = 1;
      return;
    }
    if (b->length > 0) memcpy(grown, b->bytes, b->length);
    size_t length = b->length;
    buffer_release(b);
    b->bytes = grown;
    b->length = length;
    b->capacity = capacity;
  }
  memcpy(b->bytes + b->length, data, len);
  b->length += len;
}

void buffer_append_str(byte_buffer *b, const char *s) { buffer_append(b, s, strlen(s)); }

void buffer_release(byte_buffer *b) {
  if (b->bytes != NULL) {
    wipe(b->bytes, b->capacity);
    free(b->bytes);
  }
  b->bytes = NULL;
  b->length = 0;
  b->capacity = 0;
}

static void append_byte(byte_buffer *b, uint8_t v) { buffer_append(b, &v, 1); }

static void append_field(byte_buffer *b, uint8_t type, const void *data, size_t len) {
  append_byte(b, type);
  size_t rest = len;
  while (rest >= 0x80) {
    append_byte(b, (uint8_t)((rest & 0x7f) | 0x80));
    rest >>= 7;
  }
  append_byte(b, (uint8_t)rest);
  buffer_append(b, data, len);
}

static const char BASE64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void append_base64url(byte_buffer *b, const uint8_t *data, size_t len) {
  char quad[4];
  size_t i = 0;
  for (; i + 3 <= len; i += 3) {
    uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
    quad[0] = BASE64URL[v >> 18];
    quad[1] = BASE64URL[(v >> 12) & 63];
    quad[2] = BASE64URL[(v >> 6) & 63];
    quad[3] = BASE64URL[v & 63];
    buffer_append(b, quad, 4);
  }
  if (len - i == 1) {
    uint32_t v = (uint32_t)data[i] << 16;
    quad[0] = BASE64URL[v >> 18];
    quad[1] = BASE64URL[(v >> 12) & 63];
    buffer_append(b, quad, 2);
  } else if (len - i == 2) {
    uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
    quad[0] = BASE64URL[v >> 18];
    quad[1] = BASE64URL[(v >> 12) & 63];
    quad[2] = BASE64URL[(v >> 6) & 63];
    buffer_append(b, quad, 3);
  }
}

/* RFC 3339 UTC in whole seconds, as util/instant.ts formats it: 2026-11-22T01:20:00Z. */
static void format_instant(int64_t unix_s, char out[32]) {
  time_t t = (time_t)unix_s;
  struct tm tm;
  gmtime_r(&t, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int64_t floor_div(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

/* Appends `text` with every {expiresAt} and {tokenId} filled in. */
static void append_filled(byte_buffer *out, const char *text, const char *expires,
                          const char *token_id) {
  static const char EXPIRES_AT[] = "{expiresAt}";
  static const char TOKEN_ID[] = "{tokenId}";
  const char *p = text;
  while (*p != '\0') {
    if (strncmp(p, EXPIRES_AT, sizeof(EXPIRES_AT) - 1) == 0) {
      buffer_append_str(out, expires);
      p += sizeof(EXPIRES_AT) - 1;
    } else if (strncmp(p, TOKEN_ID, sizeof(TOKEN_ID) - 1) == 0) {
      buffer_append_str(out, token_id);
      p += sizeof(TOKEN_ID) - 1;
    } else {
      const char *next = strchr(p + 1, '{');
      size_t n = next == NULL ? strlen(p) : (size_t)(next - p);
      buffer_append(out, p, n);
      p += n;
    }
  }
}

int mint_render(const mint_template *t, int64_t now_ms, const uint8_t id_bytes[TOKEN_ID_BYTES],
                const char *reader_caveat, byte_buffer *out, mint_info *info) {
  byte_buffer id_text = {0};
  append_base64url(&id_text, id_bytes, TOKEN_ID_BYTES);
  if (id_text.failed) return -1;
  memcpy(info->token_id, id_text.bytes, TOKEN_ID_LENGTH);
  info->token_id[TOKEN_ID_LENGTH] = '\0';
  buffer_release(&id_text);

  int64_t issued_s = floor_div(now_ms, 1000);
  /* Whole seconds, rounded down, so a token never outlives its TTL (mint.ts expiryFor). */
  info->expires_s = floor_div(now_ms + t->ttl_ms, 1000);

  char identifier[256];
  int id_len = snprintf(identifier, sizeof(identifier), "mintfs/v2/%s/%s/%010lld", t->key_id,
                        info->token_id, (long long)issued_s);
  if (id_len < 0 || (size_t)id_len >= sizeof(identifier)) return -1;
  char expires[32];
  format_instant(info->expires_s, expires);
  char time_caveat[48];
  snprintf(time_caveat, sizeof(time_caveat), "time-before %s", expires);

  uint8_t sig[SHA256_DIGEST_LENGTH];
  hmac_sha256(t->derived_key, sizeof(t->derived_key), (const uint8_t *)identifier, (size_t)id_len,
              sig);
  hmac_sha256(sig, sizeof(sig), (const uint8_t *)time_caveat, strlen(time_caveat), sig);
  /*
   * The reader caveat comes second, straight after time-before: a holder can
   * only append, so one anywhere else was not written here, and verifiers
   * refuse it (src/token/verify.ts) rather than log a forged reader.
   */
  if (reader_caveat != NULL)
    hmac_sha256(sig, sizeof(sig), (const uint8_t *)reader_caveat, strlen(reader_caveat), sig);
  for (size_t i = 0; i < t->caveat_count; i++)
    hmac_sha256(sig, sizeof(sig), (const uint8_t *)t->caveats[i], strlen(t->caveats[i]), sig);

  /*
   * The approval caveat (src/token/third-party.ts): the caveat key sealed
   * under the signature so far, with a nonce derived from that signature
   * (unique to this token), then sig = HMAC(sig, HMAC(sig, vid) || HMAC(sig, id)).
   */
  uint8_t vid[VID_LENGTH];
  if (t->approval_ticket != NULL) {
    uint8_t nonce_full[SHA256_DIGEST_LENGTH];
    hmac_sha256(sig, sizeof(sig), (const uint8_t *)VID_NONCE_LABEL, sizeof(VID_NONCE_LABEL) - 1,
                nonce_full);
    memcpy(vid, nonce_full, crypto_secretbox_NONCEBYTES);
    if (crypto_secretbox_easy(vid + crypto_secretbox_NONCEBYTES, t->approval_key,
                              sizeof(t->approval_key), vid, sig) != 0)
      return -1;
    uint8_t both[2 * SHA256_DIGEST_LENGTH];
    hmac_sha256(sig, sizeof(sig), vid, sizeof(vid), both);
    hmac_sha256(sig, sizeof(sig), t->approval_ticket, t->approval_ticket_length,
                both + SHA256_DIGEST_LENGTH);
    hmac_sha256(sig, sizeof(sig), both, sizeof(both), sig);
    wipe(both, sizeof(both));
  }

  byte_buffer binary = {0};
  append_byte(&binary, 2);
  if (t->location[0] != '\0')
    append_field(&binary, FIELD_LOCATION, t->location, strlen(t->location));
  append_field(&binary, FIELD_IDENTIFIER, identifier, (size_t)id_len);
  append_byte(&binary, FIELD_EOS);
  append_field(&binary, FIELD_IDENTIFIER, time_caveat, strlen(time_caveat));
  append_byte(&binary, FIELD_EOS);
  if (reader_caveat != NULL) {
    append_field(&binary, FIELD_IDENTIFIER, reader_caveat, strlen(reader_caveat));
    append_byte(&binary, FIELD_EOS);
  }
  for (size_t i = 0; i < t->caveat_count; i++) {
    append_field(&binary, FIELD_IDENTIFIER, t->caveats[i], strlen(t->caveats[i]));
    append_byte(&binary, FIELD_EOS);
  }
  if (t->approval_ticket != NULL) {
    append_field(&binary, FIELD_LOCATION, APPROVAL_LOCATION, sizeof(APPROVAL_LOCATION) - 1);
    append_field(&binary, FIELD_IDENTIFIER, t->approval_ticket, t->approval_ticket_length);
    append_field(&binary, FIELD_VID, vid, sizeof(vid));
    append_byte(&binary, FIELD_EOS);
  }
  append_byte(&binary, FIELD_EOS);
  append_field(&binary, FIELD_SIGNATURE, sig, sizeof(sig));
  wipe(sig, sizeof(sig));
  if (binary.failed) return -1;

  buffer_append_str(out, t->before);
  buffer_append_str(out, t->prefix);
  append_base64url(out, binary.bytes, binary.length);
  buffer_release(&binary);
  append_filled(out, t->after, expires, info->token_id);
  return out->failed ? -1 : 0;
}

void mint_template_free(mint_template *t) {
  if (t == NULL) return;
  wipe(t->derived_key, sizeof(t->derived_key));
  wipe(t->approval_key, sizeof(t->approval_key));
  free(t->approval_ticket);
  free(t->key_id);
  free(t->location);
  free(t->prefix);
  free(t->before);
  free(t->after);
  for (size_t i = 0; i < t->caveat_count; i++) free(t->caveats[i]);
  free(t->caveats);
  free(t);
}

/*
 * The N-API face of the native backend (src/fuse/native-backend.ts is its only
 * caller): start/stop a session, swap its tree, read its counters, and the
 * pure minter for test vectors. Every napi status is checked; a failed call
 * becomes a thrown JavaScript Error, never a crash.
 */
#include <node_api.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "mint.h"
#include "peer.h"
#include "session.h"

#define CHECK(env, call)                         \
  do {                                           \
    if (!check((env), (call), #call)) goto fail; \
  } while (0)

static int check(napi_env env, napi_status status, const char *what) {
  if (status == napi_ok) return 1;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    const napi_extended_error_info *info = NULL;
    napi_get_last_error_info(env, &info);
    char message[256];
    snprintf(message, sizeof(message), "mintfs native: %s failed: %s", what,
             info != NULL && info->error_message != NULL ? info->error_message : "unknown");
    napi_throw_error(env, "ERR_NATIVE", message);
  }
  return 0;
}

static void throw_code(napi_env env, const char *code, const char *message) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, code, message);
}

/* ---- reading JavaScript values ---- */

static int get_prop(napi_env env, napi_value obj, const char *name, napi_value *out) {
  return check(env, napi_get_named_property(env, obj, name, out), name);
}

static int has_value(napi_env env, napi_value obj, const char *name, napi_value *out) {
  napi_valuetype type;
  if (!get_prop(env, obj, name, out)) return -1;
  if (!check(env, napi_typeof(env, *out, &type), name)) return -1;
  return type != napi_undefined && type != napi_null;
}

static char *string_of(napi_env env, napi_value value, const char *what) {
  size_t len = 0;
  if (!check(env, napi_get_value_string_utf8(env, value, NULL, 0, &len), what)) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL) {
    throw_code(env, "ERR_NATIVE", "out of memory");
    return NULL;
  }
  if (!check(env, napi_get_value_string_utf8(env, value, s, len + 1, &len), what)) {
    free(s);
    return NULL;
  }
  if (strlen(s) != len) { /* an embedded NUL would cut the text short */
    free(s);
    throw_code(env, "ERR_NATIVE", "string with a NUL byte");
    return NULL;
  }
  return s;
}

static char *string_prop(napi_env env, napi_value obj, const char *name) {
  napi_value v;
  return get_prop(env, obj, name, &v) ? string_of(env, v, name) : NULL;
}

static int uint32_prop(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  return get_prop(env, obj, name, &v) && check(env, napi_get_value_uint32(env, v, out), name);
}

static int int64_prop(napi_env env, napi_value obj, const char *name, int64_t *out) {
  napi_value v;
  return get_prop(env, obj, name, &v) && check(env, napi_get_value_int64(env, v, out), name);
}

static int bool_prop(napi_env env, napi_value obj, const char *name, int *out) {
  napi_value v;
  bool b = false;
  if (!get_prop(env, obj, name, &v) || !check(env, napi_get_value_bool(env, v, &b), name)) return 0;
  *out = b;
  return 1;
}

static int array_length(napi_env env, napi_value arr, uint32_t *len) {
  bool is_array = false;
  if (!check(env, napi_is_array(env, arr, &is_array), "napi_is_array")) return 0;
  if (!is_array) {
    throw_code(env, "ERR_NATIVE", "expected an array");
    return 0;
  }
  return check(env, napi_get_array_length(env, arr, len), "napi_get_array_length");
}

/* An array of strings; NULL with *count 0 and no exception when empty is fine. */
static char **strings_of(napi_env env, napi_value arr, size_t *count) {
  uint32_t len;
  *count = 0;
  if (!array_length(env, arr, &len)) return NULL;
  char **out = calloc(len == 0 ? 1 : len, sizeof(char *));
  if (out == NULL) {
    throw_code(env, "ERR_NATIVE", "out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < len; i++) {
    napi_value item;
    if (!check(env, napi_get_element(env, arr, i, &item), "napi_get_element") ||
        (out[i] = string_of(env, item, "array item")) == NULL) {
      for (uint32_t j = 0; j < i; j++) free(out[j]);
      free(out);
      return NULL;
    }
  }
  *count = len;
  return out;
}

static mint_template *template_of(napi_env env, napi_value obj) {
  mint_template *t = calloc(1, sizeof(*t));
  napi_value v;
  if (t == NULL) {
    throw_code(env, "ERR_NATIVE", "out of memory");
    return NULL;
  }
  if ((t->key_id = string_prop(env, obj, "keyId")) == NULL) goto fail;
  if ((t->location = string_prop(env, obj, "location")) == NULL) goto fail;
  if (!get_prop(env, obj, "caveats", &v) ||
      (t->caveats = strings_of(env, v, &t->caveat_count)) == NULL)
    goto fail;
  if (!int64_prop(env, obj, "ttlMs", &t->ttl_ms)) goto fail;
  if ((t->before = string_prop(env, obj, "before")) == NULL) goto fail;
  if ((t->after = string_prop(env, obj, "after")) == NULL) goto fail;
  /* Short fixed texts (token-content.ts); anything longer is not from there. */
  if (strlen(t->before) > 64 || strlen(t->after) > 128) {
    throw_code(env, "ERR_NATIVE", "format layout is too long");
    goto fail;
  }
  if ((t->prefix = string_prop(env, obj, "prefix")) == NULL) goto fail;
  if (strlen(t->prefix) > 16) {
    throw_code(env, "ERR_NATIVE", "prefix is too long");
    goto fail;
  }
  void *data = NULL;
  size_t len = 0;
  bool is_buffer = false;
  if (!get_prop(env, obj, "derivedKey", &v)) goto fail;
  CHECK(env, napi_is_buffer(env, v, &is_buffer));
  if (!is_buffer) {
    throw_code(env, "ERR_NATIVE", "derivedKey must be a Buffer");
    goto fail;
  }
  CHECK(env, napi_get_buffer_info(env, v, &data, &len));
  if (len != sizeof(t->derived_key)) {
    throw_code(env, "ERR_NATIVE", "derivedKey must be 32 bytes");
    goto fail;
  }
  memcpy(t->derived_key, data, len);
  int has_approval = has_value(env, obj, "approvalTicket", &v);
  if (has_approval < 0) goto fail;
  if (has_approval) {
    CHECK(env, napi_is_buffer(env, v, &is_buffer));
    if (!is_buffer) {
      throw_code(env, "ERR_NATIVE", "approvalTicket must be a Buffer");
      goto fail;
    }
    CHECK(env, napi_get_buffer_info(env, v, &data, &len));
    /* src/token/macaroon-decode.ts MAX_CAVEAT_ID_BYTES */
    if (len == 0 || len > 512) {
      throw_code(env, "ERR_NATIVE", "approvalTicket must be 1-512 bytes");
      goto fail;
    }
    if ((t->approval_ticket = malloc(len)) == NULL) {
      throw_code(env, "ERR_NATIVE", "out of memory");
      goto fail;
    }
    memcpy(t->approval_ticket, data, len);
    t->approval_ticket_length = len;
    if (!get_prop(env, obj, "approvalKey", &v)) goto fail;
    CHECK(env, napi_is_buffer(env, v, &is_buffer));
    if (!is_buffer) {
      throw_code(env, "ERR_NATIVE", "approvalKey must be a Buffer");
      goto fail;
    }
    CHECK(env, napi_get_buffer_info(env, v, &data, &len));
    if (len != sizeof(t->approval_key)) {
      throw_code(env, "ERR_NATIVE", "approvalKey must be 32 bytes");
      goto fail;
    }
    memcpy(t->approval_key, data, len);
  }
  if (strlen(t->key_id) > 64) {
    throw_code(env, "ERR_NATIVE", "keyId is too long");
    goto fail;
  }
  return t;
fail:
  mint_template_free(t);
  return NULL;
}

static reader_rules *rules_of(napi_env env, napi_value obj) {
  reader_rules *r = calloc(1, sizeof(*r));
  napi_value v;
  int has;
  if (r == NULL) {
    throw_code(env, "ERR_NATIVE", "out of memory");
    return NULL;
  }
  if ((has = has_value(env, obj, "uids", &v)) < 0) goto fail;
  if (has) {
    uint32_t len;
    if (!array_length(env, v, &len)) goto fail;
    r->has_uids = 1;
    r->uids = calloc(len == 0 ? 1 : len, sizeof(uint32_t));
    if (r->uids == NULL) goto fail;
    for (uint32_t i = 0; i < len; i++) {
      napi_value item;
      CHECK(env, napi_get_element(env, v, i, &item));
      CHECK(env, napi_get_value_uint32(env, item, &r->uids[i]));
    }
    r->uid_count = len;
  }
  if ((has = has_value(env, obj, "exe", &v)) < 0) goto fail;
  if (has && (r->exes = strings_of(env, v, &r->exe_count)) == NULL) goto fail;
  if ((has = has_value(env, obj, "containers", &v)) < 0) goto fail;
  if (has && (r->containers = strings_of(env, v, &r->container_count)) == NULL) goto fail;
  return r;
fail:
  throw_code(env, "ERR_NATIVE", "out of memory");
  reader_rules_free(r);
  return NULL;
}

static const uint8_t SAMPLE_ID[TOKEN_ID_BYTES] = {0};
static const int64_t SAMPLE_NOW_MS = 946684800000LL; /* 2000-01-01: any time of ten-digit seconds */

static int node_of(napi_env env, napi_value obj, vnode *n) {
  napi_value v;
  int has;
  memset(n, 0, sizeof(*n));
  if (!uint32_prop(env, obj, "pathId", &n->path_id) ||
      !uint32_prop(env, obj, "parentId", &n->parent_id) ||
      !bool_prop(env, obj, "dir", &n->is_dir) || !uint32_prop(env, obj, "mode", &n->mode) ||
      !uint32_prop(env, obj, "uid", &n->uid) || !uint32_prop(env, obj, "gid", &n->gid))
    return 0;
  if (n->path_id == 0 || n->path_id > MAX_PATH_ID) {
    throw_code(env, "ERR_NATIVE", "pathId out of range");
    return 0;
  }
  if ((n->name = string_prop(env, obj, "name")) == NULL) return 0;
  if (n->is_dir) {
    uint32_t len;
    if (!get_prop(env, obj, "children", &v) || !array_length(env, v, &len)) return 0;
    n->children = calloc(len == 0 ? 1 : len, sizeof(uint32_t));
    if (n->children == NULL) return 0;
    for (uint32_t i = 0; i < len; i++) {
      napi_value item;
      CHECK(env, napi_get_element(env, v, i, &item));
      CHECK(env, napi_get_value_uint32(env, item, &n->children[i]));
    }
    n->child_count = len;
    return 1;
  }
  if (!get_prop(env, obj, "file", &v) || (n->tpl = template_of(env, v)) == NULL) return 0;
  napi_value file = v;
  if (!bool_prop(env, file, "readerCaveat", &n->reader_caveat)) return 0;
  if ((has = has_value(env, file, "readers", &v)) < 0) return 0;
  if (has && (n->rules = rules_of(env, v)) == NULL) return 0;
  byte_buffer sample = {0};
  mint_info info;
  if (mint_render(n->tpl, SAMPLE_NOW_MS, SAMPLE_ID, NULL, &sample, &info) != 0) {
    buffer_release(&sample);
    throw_code(env, "ERR_NATIVE", "out of memory");
    return 0;
  }
  n->size = sample.length;
  buffer_release(&sample);
  return 1;
fail:
  return 0;
}

static tree *tree_of(napi_env env, napi_value arr) {
  uint32_t len;
  if (!array_length(env, arr, &len)) return NULL;
  vnode *nodes = calloc(len == 0 ? 1 : len, sizeof(vnode));
  if (nodes == NULL) {
    throw_code(env, "ERR_NATIVE", "out of memory");
    return NULL;
  }
  for (uint32_t i = 0; i < len; i++) {
    napi_value item;
    if (!check(env, napi_get_element(env, arr, i, &item), "napi_get_element") ||
        !node_of(env, item, &nodes[i])) {
      for (uint32_t j = 0; j <= i; j++) vnode_clear(&nodes[j]);
      free(nodes);
      return NULL;
    }
  }
  tree *t = tree_new(nodes, len);
  if (t == NULL) throw_code(env, "ERR_NATIVE", "out of memory");
  return t;
}

/* ---- sessions ---- */

typedef struct {
  mintfs_session *session;
  int stopped;
} session_ref;

/* Marks the externals start() returns, so no other external can pass for a session. */
static const napi_type_tag SESSION_TAG = {0x6d696e7466732d73ULL, 0x657373696f6e2d31ULL};

/* A session JavaScript dropped without stop(): end it rather than leak a mount thread. */
static void finalize_ref(napi_env env, void *data, void *hint) {
  (void)env, (void)hint;
  session_ref *ref = data;
  if (!ref->stopped && ref->session != NULL) session_stop(ref->session);
  free(ref);
}

/* The session behind a start() result, checked by its type tag; NULL (and a throw) otherwise. */
static session_ref *tagged_ref(napi_env env, napi_value value) {
  bool tagged = false;
  napi_valuetype type;
  if (!check(env, napi_typeof(env, value, &type), "session")) return NULL;
  if (type != napi_external ||
      !check(env, napi_check_object_type_tag(env, value, &SESSION_TAG, &tagged), "session"))
    tagged = false;
  if (!tagged) {
    throw_code(env, "ERR_NATIVE", "not a session");
    return NULL;
  }
  void *data = NULL;
  if (!check(env, napi_get_value_external(env, value, &data), "session")) return NULL;
  return data;
}

static session_ref *ref_of(napi_env env, napi_value value) {
  session_ref *ref = tagged_ref(env, value);
  if (ref == NULL) return NULL;
  if (ref->stopped) {
    throw_code(env, "ERR_NATIVE", "session already stopped");
    return NULL;
  }
  return ref;
}

/* The transport start() is asked for: "classic" or "uring"; -1 (and a throw) for anything else. */
static int want_uring_of(napi_env env, napi_value value) {
  char *name = string_of(env, value, "transport");
  if (name == NULL) return -1;
  int want = strcmp(name, "uring") == 0 ? 1 : strcmp(name, "classic") == 0 ? 0 : -1;
  free(name);
  if (want < 0) throw_code(env, "ERR_NATIVE", "transport must be \"classic\" or \"uring\"");
  return want;
}

/* start(mountpoint, nodes, mintPerRead, transport) -> session */
static napi_value js_start(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  char *mountpoint = NULL;
  session_ref *ref = NULL;
  tree *t = NULL;
  bool mint_per_read = false;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) {
    throw_code(env, "ERR_NATIVE", "start(mountpoint, nodes, mintPerRead, transport)");
    return NULL;
  }
  if (napi_get_value_bool(env, argv[2], &mint_per_read) != napi_ok) {
    throw_code(env, "ERR_NATIVE", "mintPerRead: expected a boolean");
    return NULL;
  }
  int want_uring = want_uring_of(env, argv[3]);
  if (want_uring < 0) goto fail;
  if ((mountpoint = string_of(env, argv[0], "mountpoint")) == NULL) goto fail;
  if ((t = tree_of(env, argv[1])) == NULL) goto fail;
  ref = calloc(1, sizeof(*ref));
  if (ref == NULL) goto fail;
  char error[512];
  ref->session =
      session_start(mountpoint, t, mint_per_read ? 1 : 0, want_uring, error, sizeof(error));
  t = NULL; /* owned by the session, or freed */
  if (ref->session == NULL) {
    throw_code(env, "ERR_MOUNT_FAILED", error);
    goto fail;
  }
  free(mountpoint);
  mountpoint = NULL;
  if (napi_create_external(env, ref, finalize_ref, NULL, &result) != napi_ok) {
    session_stop(ref->session);
    ref->session = NULL;
    goto fail;
  }
  ref = NULL; /* the external owns it now: its finalizer frees it */
  CHECK(env, napi_type_tag_object(env, result, &SESSION_TAG));
  return result;
fail:
  free(mountpoint);
  if (t != NULL) tree_release(t);
  if (ref != NULL && ref->session == NULL) free(ref);
  throw_code(env, "ERR_NATIVE", "start failed");
  return NULL;
}

static napi_value js_set_tree(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_ref *ref = argc == 2 ? ref_of(env, argv[0]) : NULL;
  if (ref == NULL) goto fail;
  tree *t = tree_of(env, argv[1]);
  if (t == NULL) goto fail;
  session_set_tree(ref->session, t);
  return NULL;
fail:
  throw_code(env, "ERR_NATIVE", "setTree(session, nodes)");
  return NULL;
}

static void free_events(audit_event *taken) {
  while (taken != NULL) {
    audit_event *next = taken->next;
    free(taken);
    taken = next;
  }
}

/*
 * The audit batch takeAudit and stop return: { count, numbers, strings,
 * refused }, each event AUDIT_NUMBERS doubles and AUDIT_STRINGS strings in
 * the order below (src/fuse/native-audit.ts reads them by the same layout,
 * and checks the counts it is sent). Not an object per event: 14 named
 * properties per event were a fifth of the daemon's JS time under a reading
 * loop. The numbers are written straight into one Float64Array; a string
 * equal to the previous event's same field (a reader's exe and cgroup, the
 * key id) is the same JS string, made once. The reader's exe and cgroup are
 * as reader_log_text writes them.
 */
enum {
  AUDIT_KIND,
  AUDIT_PATH_ID,
  AUDIT_EXPIRES_S,
  AUDIT_READER_CAVEAT,
  AUDIT_UID,
  AUDIT_GID,
  AUDIT_PID,
  AUDIT_START_TICKS,
  AUDIT_NUMBERS
};
enum { AUDIT_TOKEN_ID, AUDIT_KEY_ID, AUDIT_REASON, AUDIT_EXE, AUDIT_CGROUP, AUDIT_STRINGS };

/*
 * The JS string for `text`: `*last` again when `text` equals `last_text`
 * (the previous event's); a reader's path (`path`) as reader_log_text
 * writes it.
 */
static int audit_string(napi_env env, const char *text, const char *last_text, int path,
                        napi_value *last) {
  if (last_text != NULL && strcmp(text, last_text) == 0) return 1;
  char shown[READER_LOG_TEXT_MAX];
  if (path) reader_log_text(text, shown);
  return napi_create_string_utf8(env, path ? shown : text, NAPI_AUTO_LENGTH, last) == napi_ok;
}

/* An event's string fields, in the batch's order. */
static void event_strings(const audit_event *ev, const char *out[AUDIT_STRINGS]) {
  out[AUDIT_TOKEN_ID] = ev->token_id;
  out[AUDIT_KEY_ID] = ev->key_id;
  out[AUDIT_REASON] = ev->reason != NULL ? ev->reason : "";
  out[AUDIT_EXE] = ev->who.exe;
  out[AUDIT_CGROUP] = ev->who.cgroup;
}

static int set_count(napi_env env, napi_value obj, const char *name, double value) {
  napi_value v;
  return napi_create_double(env, value, &v) == napi_ok &&
         napi_set_named_property(env, obj, name, v) == napi_ok;
}

/* The batch (above) from a taken queue, which it frees. */
static napi_value audit_result(napi_env env, audit_event *taken, uint64_t refused) {
  napi_value result, buffer, numbers, strings;
  napi_value last[AUDIT_STRINGS] = {0};
  const audit_event *previous = NULL;
  uint32_t count = 0;
  for (const audit_event *ev = taken; ev != NULL; ev = ev->next) count++;
  void *data = NULL;
  CHECK(env, napi_create_object(env, &result));
  CHECK(env, napi_create_arraybuffer(env, (size_t)count * AUDIT_NUMBERS * sizeof(double), &data,
                                     &buffer));
  CHECK(env, napi_create_typedarray(env, napi_float64_array, (size_t)count * AUDIT_NUMBERS, buffer,
                                    0, &numbers));
  CHECK(env, napi_create_array_with_length(env, (size_t)count * AUDIT_STRINGS, &strings));
  double *n = data;
  uint32_t at = 0;
  for (const audit_event *ev = taken; ev != NULL; ev = ev->next, n += AUDIT_NUMBERS) {
    n[AUDIT_KIND] = ev->kind;
    n[AUDIT_PATH_ID] = ev->path_id;
    n[AUDIT_EXPIRES_S] = (double)ev->expires_s;
    n[AUDIT_READER_CAVEAT] = ev->reader_caveat != 0;
    n[AUDIT_UID] = ev->who.uid;
    n[AUDIT_GID] = ev->who.gid;
    n[AUDIT_PID] = ev->who.pid;
    n[AUDIT_START_TICKS] = (double)ev->who.start_ticks; /* clock ticks: far below 2^53 */
    const char *text[AUDIT_STRINGS], *before[AUDIT_STRINGS] = {0};
    event_strings(ev, text);
    if (previous != NULL) event_strings(previous, before);
    for (int i = 0; i < AUDIT_STRINGS; i++) {
      const int path = i == AUDIT_EXE || i == AUDIT_CGROUP;
      if (!audit_string(env, text[i], before[i], path, &last[i])) goto fail;
      CHECK(env, napi_set_element(env, strings, at++, last[i]));
    }
    previous = ev;
  }
  if (!set_count(env, result, "count", count) ||
      !set_count(env, result, "numbersPerEvent", AUDIT_NUMBERS) ||
      !set_count(env, result, "stringsPerEvent", AUDIT_STRINGS) ||
      !set_count(env, result, "refused", (double)refused))
    goto fail;
  CHECK(env, napi_set_named_property(env, result, "numbers", numbers));
  CHECK(env, napi_set_named_property(env, result, "strings", strings));
  free_events(taken);
  return result;
fail:
  free_events(taken);
  return NULL;
}

/* takeAudit(session) -> the audit batch (audit_result) */
static napi_value js_take_audit(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_ref *ref = argc == 1 ? ref_of(env, argv[0]) : NULL;
  if (ref == NULL) goto fail;
  uint64_t refused = 0;
  napi_value result = audit_result(env, session_take_audit(ref->session, &refused), refused);
  if (result == NULL) goto fail;
  return result;
fail:
  throw_code(env, "ERR_NATIVE", "takeAudit(session)");
  return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], obj, v;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  session_ref *ref = argc == 1 ? ref_of(env, argv[0]) : NULL;
  if (ref == NULL) goto fail;
  CHECK(env, napi_create_object(env, &obj));
  CHECK(env, napi_create_int64(env, (int64_t)session_open_handles(ref->session), &v));
  CHECK(env, napi_set_named_property(env, obj, "openHandles", v));
  CHECK(env, napi_create_int64(env, session_last_activity_ms(ref->session), &v));
  CHECK(env, napi_set_named_property(env, obj, "lastActivityMs", v));
  CHECK(env, napi_create_int64(env, (int64_t)session_reply_failures(ref->session), &v));
  CHECK(env, napi_set_named_property(env, obj, "replyFailures", v));
  CHECK(env, napi_create_int64(env, (int64_t)session_invalidation_failures(ref->session), &v));
  CHECK(env, napi_set_named_property(env, obj, "invalidationFailures", v));
  char reason[256];
  int uring = session_transport(ref->session, reason, sizeof(reason));
  CHECK(env, napi_create_string_utf8(env, uring ? "uring" : "classic", NAPI_AUTO_LENGTH, &v));
  CHECK(env, napi_set_named_property(env, obj, "transport", v));
  CHECK(env, napi_create_string_utf8(env, reason, NAPI_AUTO_LENGTH, &v));
  CHECK(env, napi_set_named_property(env, obj, "transportFallback", v));
  CHECK(env, napi_create_int64(env, (int64_t)session_ring_requests(ref->session), &v));
  CHECK(env, napi_set_named_property(env, obj, "ringRequests", v));
  CHECK(env, napi_create_int64(env, (int64_t)session_ring_malformed(ref->session), &v));
  CHECK(env, napi_set_named_property(env, obj, "ringMalformed", v));
  return obj;
fail:
  throw_code(env, "ERR_NATIVE", "stats(session)");
  return NULL;
}

/*
 * stop(session) -> the audit batch (audit_result) of the events queued since the last
 * takeAudit, taken after the FUSE thread is joined, so no open served before
 * the stop goes unaudited. A second stop returns no events.
 */
static napi_value js_stop(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1) goto fail;
  session_ref *ref = tagged_ref(env, argv[0]);
  if (ref == NULL) goto fail;
  if (ref->stopped) {
    napi_value none = audit_result(env, NULL, 0);
    if (none == NULL) goto fail;
    return none;
  }
  ref->stopped = 1;
  session_halt(ref->session);
  uint64_t refused = 0;
  audit_event *last = session_take_audit(ref->session, &refused);
  session_stop(ref->session);
  ref->session = NULL;
  napi_value result = audit_result(env, last, refused);
  if (result == NULL) goto fail;
  return result;
fail:
  throw_code(env, "ERR_NATIVE", "stop(session)");
  return NULL;
}

/* mint(template, nowMs, idBytes, readerCaveat | null) -> Buffer: the pure minter, for test vectors.
 */
static napi_value js_mint(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  mint_template *t = NULL;
  char *caveat = NULL;
  byte_buffer out = {0};
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) goto fail;
  if ((t = template_of(env, argv[0])) == NULL) goto fail;
  int64_t now_ms;
  CHECK(env, napi_get_value_int64(env, argv[1], &now_ms));
  void *id = NULL;
  size_t id_len = 0;
  CHECK(env, napi_get_buffer_info(env, argv[2], &id, &id_len));
  if (id_len != TOKEN_ID_BYTES) goto fail;
  napi_valuetype type;
  CHECK(env, napi_typeof(env, argv[3], &type));
  if (type == napi_string && (caveat = string_of(env, argv[3], "readerCaveat")) == NULL) goto fail;
  mint_info minted;
  if (mint_render(t, now_ms, id, caveat, &out, &minted) != 0) goto fail;
  CHECK(env, napi_create_buffer_copy(env, out.length, out.bytes, NULL, &result));
  buffer_release(&out);
  mint_template_free(t);
  free(caveat);
  return result;
fail:
  buffer_release(&out);
  mint_template_free(t);
  free(caveat);
  throw_code(env, "ERR_NATIVE", "mint(template, nowMs, idBytes, readerCaveat)");
  return NULL;
}

/*
 * mintLoop(template, count) -> nanoseconds: `count` mints as an open does them
 * (clock reading, pooled random id, render, wipe), for the benchmark's mints/s.
 */
static napi_value js_mint_loop(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  mint_template *t = NULL;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 2) goto fail;
  if ((t = template_of(env, argv[0])) == NULL) goto fail;
  uint32_t count;
  CHECK(env, napi_get_value_uint32(env, argv[1], &count));
  uint8_t pool[TOKEN_ID_BYTES * 256];
  struct timespec start, end, now;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (uint32_t i = 0; i < count; i++) {
    if (i % 256 == 0 && getrandom(pool, sizeof(pool), 0) != (ssize_t)sizeof(pool)) goto fail;
    clock_gettime(CLOCK_REALTIME, &now);
    byte_buffer out = {0};
    mint_info minted;
    int rc = mint_render(t, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
                         pool + (i % 256) * TOKEN_ID_BYTES, NULL, &out, &minted);
    buffer_release(&out);
    if (rc != 0) goto fail;
  }
  clock_gettime(CLOCK_MONOTONIC, &end);
  wipe(pool, sizeof(pool));
  mint_template_free(t);
  t = NULL;
  CHECK(env,
        napi_create_double(
            env, (double)(end.tv_sec - start.tv_sec) * 1e9 + (double)(end.tv_nsec - start.tv_nsec),
            &result));
  return result;
fail:
  mint_template_free(t);
  throw_code(env, "ERR_NATIVE", "mintLoop(template, count)");
  return NULL;
}

/* hmacSha256(key, data, portable?) -> Buffer; `portable` forces the plain C compression (tests). */
static napi_value js_hmac(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], result;
  void *key = NULL, *data = NULL;
  size_t key_len = 0, data_len = 0;
  uint8_t out[SHA256_DIGEST_LENGTH];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 2) goto fail;
  bool portable = false;
  if (argc == 3) CHECK(env, napi_get_value_bool(env, argv[2], &portable));
  CHECK(env, napi_get_buffer_info(env, argv[0], &key, &key_len));
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &data_len));
  /* Per call: no process-wide switch that a session's FUSE thread could see mid-mint. */
  hmac_sha256_with(key, key_len, data, data_len, out, portable ? 1 : 0);
  CHECK(env, napi_create_buffer_copy(env, sizeof(out), out, NULL, &result));
  return result;
fail:
  throw_code(env, "ERR_NATIVE", "hmacSha256(key, data)");
  return NULL;
}

/*
 * hmacChain(derivedKey, identifier, caveats[], out) -> undefined: writes the
 * macaroon signature chain into the 32-byte `out`, sig = HMAC(key, id) then
 * sig = HMAC(sig, caveat) each. The gateway's verifier uses it when the
 * addon loads (src/token/hmac-chain.ts says why); `out` is the caller's so
 * no buffer is made here (napi_create_buffer_copy costs ~1 µs).
 */
static napi_value js_hmac_chain(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  void *key = NULL, *data = NULL, *out = NULL;
  size_t key_len = 0, data_len = 0, out_len = 0;
  uint32_t count = 0;
  bool is_array = false;
  uint8_t sig[SHA256_DIGEST_LENGTH];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 4) goto fail;
  CHECK(env, napi_get_buffer_info(env, argv[0], &key, &key_len));
  CHECK(env, napi_get_buffer_info(env, argv[1], &data, &data_len));
  CHECK(env, napi_is_array(env, argv[2], &is_array));
  CHECK(env, napi_get_buffer_info(env, argv[3], &out, &out_len));
  if (!is_array || out_len != SHA256_DIGEST_LENGTH) goto fail;
  CHECK(env, napi_get_array_length(env, argv[2], &count));
  hmac_sha256(key, key_len, data, data_len, sig);
  for (uint32_t i = 0; i < count; i++) {
    napi_value element;
    CHECK(env, napi_get_element(env, argv[2], i, &element));
    CHECK(env, napi_get_buffer_info(env, element, &data, &data_len));
    hmac_sha256(sig, sizeof(sig), data, data_len, sig);
  }
  memcpy(out, sig, sizeof(sig));
  wipe(sig, sizeof(sig));
  return NULL;
fail:
  wipe(sig, sizeof(sig));
  throw_code(env, "ERR_NATIVE", "hmacChain(key, identifier, caveats, out)");
  return NULL;
}

static napi_value js_accelerated(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  CHECK(env, napi_get_boolean(env, sha256_accelerated() != 0, &result));
  return result;
fail:
  return NULL;
}

static napi_value js_peer_credentials(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, value;
  int32_t fd = -1;
  pid_t pid;
  uid_t uid;
  gid_t gid;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    throw_code(env, "ERR_NATIVE", "peerCredentials(fd)");
    return NULL;
  }
  if (peer_credentials(fd, &pid, &uid, &gid) != 0) {
    CHECK(env, napi_get_null(env, &result));
    return result;
  }
  CHECK(env, napi_create_object(env, &result));
  CHECK(env, napi_create_int64(env, (int64_t)pid, &value));
  CHECK(env, napi_set_named_property(env, result, "pid", value));
  CHECK(env, napi_create_int64(env, (int64_t)uid, &value));
  CHECK(env, napi_set_named_property(env, result, "uid", value));
  CHECK(env, napi_create_int64(env, (int64_t)gid, &value));
  CHECK(env, napi_set_named_property(env, result, "gid", value));
  return result;
fail:
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  /* libsodium (approval caveats' secretbox, mint.c): picks its implementations once. */
  if (sodium_init() < 0) {
    throw_code(env, "ERR_NATIVE", "libsodium did not initialise");
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"start", NULL, js_start, NULL, NULL, NULL, napi_default, NULL},
      {"setTree", NULL, js_set_tree, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"takeAudit", NULL, js_take_audit, NULL, NULL, NULL, napi_default, NULL},
      {"stop", NULL, js_stop, NULL, NULL, NULL, napi_default, NULL},
      {"mint", NULL, js_mint, NULL, NULL, NULL, napi_default, NULL},
      {"hmacSha256", NULL, js_hmac, NULL, NULL, NULL, napi_default, NULL},
      {"hmacChain", NULL, js_hmac_chain, NULL, NULL, NULL, napi_default, NULL},
      {"mintLoop", NULL, js_mint_loop, NULL, NULL, NULL, napi_default, NULL},
      {"sha256Accelerated", NULL, js_accelerated, NULL, NULL, NULL, napi_default, NULL},
      {"peerCredentials", NULL, js_peer_credentials, NULL, NULL, NULL, napi_default, NULL},
  };
  if (!check(env, napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props),
             "napi_define_properties"))
    return NULL;
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }

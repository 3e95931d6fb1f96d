// Batched UDP for fedns: one socket per listen address, watched by a libuv poll handle. When it
// is readable, recvmmsg(2) reads up to BATCH datagrams into a shared input buffer, ONE JavaScript
// call answers them into a shared output buffer, and sendmmsg(2) sends the answers.
//
// Shared memory (all Buffers owned by JavaScript, referenced here while the socket is open):
//   in:   BATCH slots of in_slot bytes; datagram i at i * in_slot
//   out:  BATCH slots of out_slot bytes; answer i at i * out_slot
//   meta: BATCH records of META_WORDS int32 (layout below)
// Nothing is allocated per datagram.
//
// Also trim(): hands the memory the C allocator holds free back to the system (see Trim below).
#define _GNU_SOURCE
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#define BATCH 64
#define META_WORDS 20
// Per-datagram record: written by C before the call, except M_OUT_LEN, written by JavaScript.
#define M_IN_LEN 0   // bytes received; -1: truncated (larger than in_slot), to be ignored
#define M_OUT_LEN 1  // answer length in the out slot; 0: no answer
#define M_FAMILY 2   // 4 or 6
#define M_V4 3       // IPv4 address, network order read as a host int (a cache key)
#define M_TEXT_LEN 4 // length of the address text
#define M_TEXT 5     // address text (uv_ip4_name / uv_ip6_name, as node:dgram's rinfo.address)
#define TEXT_MAX ((META_WORDS - M_TEXT) * 4)

enum { S_RECEIVED, S_SENT, S_DROPPED, S_SEND_ERRORS, S_TRUNCATED, S_RECV_ERRORS, S_BATCHES, S_COUNT };

typedef struct {
  uv_poll_t poll;
  int fd;
  int closing;   // close() was called
  int in_call;   // inside the JavaScript call: close() defers closing the descriptor
  int owners;    // the uv handle and the JavaScript external: freed when both let go
  napi_env env;
  napi_ref self_ref, cb_ref, in_ref, out_ref, meta_ref;
  napi_async_context actx;
  char *in, *out;
  int32_t *meta;
  size_t in_slot, out_slot;
  struct sockaddr_storage addrs[BATCH];
  struct iovec riov[BATCH], siov[BATCH];
  struct mmsghdr rmsgs[BATCH], smsgs[BATCH];
  double stats[S_COUNT];
} udp_t;

static void release(udp_t *u) {
  if (--u->owners == 0) free(u);
}

static void on_handle_closed(uv_handle_t *h) { release((udp_t *)h->data); }

static void cleanup_hook(void *arg);

// Closes the descriptor and the poll handle, drops the references (not inside the JavaScript call).
static void finish_close(udp_t *u) {
  if (u->fd < 0) return;
  uv_poll_stop(&u->poll);
  close(u->fd);
  u->fd = -1;
  uv_close((uv_handle_t *)&u->poll, on_handle_closed);
  napi_env env = u->env;
  napi_remove_env_cleanup_hook(env, cleanup_hook, u);
  napi_delete_reference(env, u->cb_ref);
  napi_delete_reference(env, u->in_ref);
  napi_delete_reference(env, u->out_ref);
  napi_delete_reference(env, u->meta_ref);
  napi_async_destroy(env, u->actx);
  napi_delete_reference(env, u->self_ref);  // the external may be collected now
}

static void cleanup_hook(void *arg) {
  udp_t *u = arg;
  if (u->fd < 0) return;
  // The environment is going away: release the descriptor; references die with it.
  uv_poll_stop(&u->poll);
  close(u->fd);
  u->fd = -1;
  uv_close((uv_handle_t *)&u->poll, on_handle_closed);
}

static void send_answers(udp_t *u, int n) {
  int m = 0;
  for (int i = 0; i < n; i++) {
    int32_t len = u->meta[i * META_WORDS + M_OUT_LEN];
    if (len <= 0) continue;
    if ((size_t)len > u->out_slot) {  // never written by fedns; refuse rather than over-read
      u->stats[S_SEND_ERRORS]++;
      continue;
    }
    u->siov[m].iov_base = u->out + (size_t)i * u->out_slot;
    u->siov[m].iov_len = (size_t)len;
    struct msghdr *h = &u->smsgs[m].msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = &u->addrs[i];
    h->msg_namelen = u->rmsgs[i].msg_hdr.msg_namelen;
    h->msg_iov = &u->siov[m];
    h->msg_iovlen = 1;
    m++;
  }
  int k = 0;
  while (k < m) {
    int r = sendmmsg(u->fd, u->smsgs + k, (unsigned)(m - k), MSG_DONTWAIT);
    if (r > 0) {
      u->stats[S_SENT] += r;
      k += r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
      // Send buffer full: drop the rest of the batch, as authoritative servers do.
      u->stats[S_DROPPED] += m - k;
      break;
    } else {
      // This answer cannot be sent (EMSGSIZE, unreachable, ...): skip it, send the others.
      u->stats[S_SEND_ERRORS]++;
      k++;
    }
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  (void)events;
  udp_t *u = h->data;
  if (u->fd < 0 || u->closing) return;
  if (status < 0) {
    u->stats[S_RECV_ERRORS]++;
    return;
  }
  for (int i = 0; i < BATCH; i++) {
    u->rmsgs[i].msg_hdr.msg_namelen = sizeof u->addrs[i];
    u->rmsgs[i].msg_hdr.msg_flags = 0;
    u->rmsgs[i].msg_len = 0;
  }
  int n = recvmmsg(u->fd, u->rmsgs, BATCH, MSG_DONTWAIT, NULL);
  if (n <= 0) {
    // EAGAIN: another wake-up got there first. Other errors (an ICMP error queued on the
    // socket) are counted; the socket stays open.
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) u->stats[S_RECV_ERRORS]++;
    return;
  }
  u->stats[S_RECEIVED] += n;
  u->stats[S_BATCHES]++;
  for (int i = 0; i < n; i++) {
    int32_t *m = u->meta + i * META_WORDS;
    memset(m, 0, META_WORDS * sizeof *m);
    m[M_IN_LEN] = (int32_t)u->rmsgs[i].msg_len;
    if (u->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
      m[M_IN_LEN] = -1;
      u->stats[S_TRUNCATED]++;
    }
    char *text = (char *)(m + M_TEXT);
    struct sockaddr *sa = (struct sockaddr *)&u->addrs[i];
    if (sa->sa_family == AF_INET) {
      struct sockaddr_in *a4 = (struct sockaddr_in *)sa;
      m[M_FAMILY] = 4;
      memcpy(&m[M_V4], &a4->sin_addr.s_addr, 4);
      uv_ip4_name(a4, text, TEXT_MAX);
    } else {
      m[M_FAMILY] = 6;
      uv_ip6_name((struct sockaddr_in6 *)sa, text, TEXT_MAX);
    }
    m[M_TEXT_LEN] = (int32_t)strnlen(text, TEXT_MAX);
  }

  napi_env env = u->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  napi_value cb, recv, argv[1], result;
  napi_get_reference_value(env, u->cb_ref, &cb);
  napi_get_global(env, &recv);  // napi_make_callback wants an object as `this`
  napi_create_int32(env, n, &argv[0]);
  u->in_call = 1;
  napi_status st = napi_make_callback(env, u->actx, recv, cb, 1, argv, &result);
  u->in_call = 0;
  if (st != napi_ok) {
    // The JavaScript side catches its own errors; if one escapes anyway, send nothing.
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
    }
    for (int i = 0; i < n; i++) u->meta[i * META_WORDS + M_OUT_LEN] = 0;
  }
  if (u->fd >= 0) send_answers(u, n);
  if (u->closing) finish_close(u);
  napi_close_handle_scope(env, scope);
}

static void finalize_external(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  release((udp_t *)data);
}

static napi_value throw_errno(napi_env env, const char *what, int err) {
  char msg[160];
  snprintf(msg, sizeof msg, "%s: %s", what, uv_strerror(-err));
  napi_throw_error(env, uv_err_name(-err), msg);
  return NULL;
}

static int get_buffer(napi_env env, napi_value v, size_t need, char **data, napi_ref *ref) {
  bool is = false;
  size_t len = 0;
  if (napi_is_buffer(env, v, &is) != napi_ok || !is) return 0;
  if (napi_get_buffer_info(env, v, (void **)data, &len) != napi_ok || len < need) return 0;
  return napi_create_reference(env, v, 1, ref) == napi_ok;
}

// open(host, port, rcvbuf, in, inSlot, out, outSlot, meta, onBatch) -> handle
static napi_value Open(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 9) {
    napi_throw_type_error(env, NULL, "open: 9 arguments expected");
    return NULL;
  }
  char host[64];
  size_t hostlen = 0;
  int32_t port = -1, rcvbuf = 0, in_slot = 0, out_slot = 0;
  napi_valuetype t;
  if (napi_get_value_string_utf8(env, argv[0], host, sizeof host, &hostlen) != napi_ok || hostlen >= sizeof host - 1 ||
      napi_get_value_int32(env, argv[1], &port) != napi_ok || port < 0 || port > 65535 ||
      napi_get_value_int32(env, argv[2], &rcvbuf) != napi_ok || rcvbuf < 0 ||
      napi_get_value_int32(env, argv[4], &in_slot) != napi_ok || in_slot < 512 || in_slot > 65536 ||
      napi_get_value_int32(env, argv[6], &out_slot) != napi_ok || out_slot < 512 || out_slot > 65536 ||
      napi_typeof(env, argv[8], &t) != napi_ok || t != napi_function) {
    napi_throw_type_error(env, NULL, "open: bad arguments");
    return NULL;
  }
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t sslen;
  int family;
  if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0) {
    family = AF_INET;
    sslen = sizeof(struct sockaddr_in);
  } else if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
    family = AF_INET6;
    sslen = sizeof(struct sockaddr_in6);
  } else {
    napi_throw_error(env, "EINVAL", "open: the host must be an IPv4 or IPv6 literal");
    return NULL;
  }

  udp_t *u = calloc(1, sizeof *u);
  if (u == NULL) return throw_errno(env, "open", ENOMEM);
  u->fd = -1;
  u->env = env;
  u->in_slot = (size_t)in_slot;
  u->out_slot = (size_t)out_slot;
  char *meta = NULL;
  if (!get_buffer(env, argv[3], BATCH * u->in_slot, &u->in, &u->in_ref) ||
      !get_buffer(env, argv[5], BATCH * u->out_slot, &u->out, &u->out_ref) ||
      !get_buffer(env, argv[7], BATCH * META_WORDS * sizeof(int32_t), &meta, &u->meta_ref) ||
      ((uintptr_t)meta & 3) != 0) {
    if (u->in_ref) napi_delete_reference(env, u->in_ref);
    if (u->out_ref) napi_delete_reference(env, u->out_ref);
    if (u->meta_ref) napi_delete_reference(env, u->meta_ref);
    free(u);
    napi_throw_type_error(env, NULL, "open: buffers too small or misaligned");
    return NULL;
  }
  u->meta = (int32_t *)meta;

  int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int err = fd < 0 ? errno : 0;
  if (fd >= 0) {
    // A deep receive buffer absorbs bursts (the kernel may cap it lower).
    if (rcvbuf > 0) (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    socklen_t blen = sslen;
    if (bind(fd, (struct sockaddr *)&ss, sslen) != 0 || getsockname(fd, (struct sockaddr *)&ss, &blen) != 0) err = errno;
  }
  uv_loop_t *loop = NULL;
  if (err == 0 && napi_get_uv_event_loop(env, &loop) != napi_ok) err = EINVAL;
  if (err == 0) {
    int r = uv_poll_init(loop, &u->poll, fd);
    if (r != 0) err = -r;
  }
  if (err != 0) {
    if (fd >= 0) close(fd);
    napi_delete_reference(env, u->in_ref);
    napi_delete_reference(env, u->out_ref);
    napi_delete_reference(env, u->meta_ref);
    free(u);
    return throw_errno(env, "bind", err);
  }
  u->fd = fd;
  u->poll.data = u;
  u->owners = 2;
  for (int i = 0; i < BATCH; i++) {
    u->riov[i].iov_base = u->in + (size_t)i * u->in_slot;
    u->riov[i].iov_len = u->in_slot;
    u->rmsgs[i].msg_hdr.msg_name = &u->addrs[i];
    u->rmsgs[i].msg_hdr.msg_iov = &u->riov[i];
    u->rmsgs[i].msg_hdr.msg_iovlen = 1;
  }
  napi_value name, ext;
  napi_create_string_utf8(env, "fedns-udp", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, NULL, name, &u->actx);
  napi_create_reference(env, argv[8], 1, &u->cb_ref);
  napi_create_external(env, u, finalize_external, NULL, &ext);
  napi_create_reference(env, ext, 1, &u->self_ref);  // kept while open: never collected with a live poll handle
  napi_add_env_cleanup_hook(env, cleanup_hook, u);
  int r = uv_poll_start(&u->poll, UV_READABLE, on_poll);
  if (r != 0) {
    finish_close(u);
    return throw_errno(env, "poll", -r);
  }
  return ext;
}

static udp_t *get_handle(napi_env env, napi_value v) {
  void *data = NULL;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_external || napi_get_value_external(env, v, &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "not a fedns UDP handle");
    return NULL;
  }
  return data;
}

static udp_t *arg_handle(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) {
    napi_throw_type_error(env, NULL, "handle expected");
    return NULL;
  }
  return get_handle(env, argv[0]);
}

// port(handle) -> the bound port
static napi_value Port(napi_env env, napi_callback_info info) {
  udp_t *u = arg_handle(env, info);
  if (u == NULL) return NULL;
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  int port = 0;
  if (u->fd >= 0 && getsockname(u->fd, (struct sockaddr *)&ss, &len) == 0)
    port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port : ((struct sockaddr_in *)&ss)->sin_port);
  napi_value v;
  napi_create_int32(env, port, &v);
  return v;
}

// close(handle): stops receiving and closes the socket (idempotent).
static napi_value Close(napi_env env, napi_callback_info info) {
  udp_t *u = arg_handle(env, info);
  if (u == NULL) return NULL;
  if (!u->closing && u->fd >= 0) {
    u->closing = 1;
    uv_poll_stop(&u->poll);
    if (!u->in_call) finish_close(u);
  }
  return NULL;
}

// stats(handle) -> [received, sent, dropped, sendErrors, truncated, recvErrors, batches]
static napi_value Stats(napi_env env, napi_callback_info info) {
  udp_t *u = arg_handle(env, info);
  if (u == NULL) return NULL;
  napi_value arr, v;
  napi_create_array_with_length(env, S_COUNT, &arr);
  for (uint32_t i = 0; i < S_COUNT; i++) {
    napi_create_double(env, u->stats[i], &v);
    napi_set_element(env, arr, i, v);
  }
  return arr;
}

// trim() -> whether memory went back to the system; undefined where the C library cannot say
// (not glibc). glibc keeps what its arenas freed, and gives back only the top of the main heap by
// itself: after a burst of big buffers (list pages, a worker thread's arena) that is tens of MiB
// resident and unused. malloc_trim(0) releases every free page of every arena.
static napi_value Trim(napi_env env, napi_callback_info info) {
  napi_value v;
#ifdef __GLIBC__
  napi_get_boolean(env, malloc_trim(0) != 0, &v);
#else
  napi_get_undefined(env, &v);
#endif
  return v;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value v;
  napi_create_function(env, "open", NAPI_AUTO_LENGTH, Open, NULL, &v);
  napi_set_named_property(env, exports, "open", v);
  napi_create_function(env, "port", NAPI_AUTO_LENGTH, Port, NULL, &v);
  napi_set_named_property(env, exports, "port", v);
  napi_create_function(env, "close", NAPI_AUTO_LENGTH, Close, NULL, &v);
  napi_set_named_property(env, exports, "close", v);
  napi_create_function(env, "stats", NAPI_AUTO_LENGTH, Stats, NULL, &v);
  napi_set_named_property(env, exports, "stats", v);
  napi_create_function(env, "trim", NAPI_AUTO_LENGTH, Trim, NULL, &v);
  napi_set_named_property(env, exports, "trim", v);
  napi_create_int32(env, BATCH, &v);
  napi_set_named_property(env, exports, "batch", v);
  napi_create_int32(env, META_WORDS, &v);
  napi_set_named_property(env, exports, "metaWords", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)

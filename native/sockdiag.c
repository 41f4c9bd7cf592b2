// The kernel's socket tables over netlink sock_diag (INET_DIAG), the way `ss` reads them.
//
// /proc/net/tcp prints every socket as text, TIME_WAIT included; a sock_diag dump takes a state
// filter that the kernel applies before anything is copied, and hands out fixed binary records
// (inet_diag_msg) that carry what /proc cannot: a listener's backlog (its accept-queue limit)
// beside the queue itself.
//
// The calls block: they are made from a worker thread, never from the event loop. Linux only.
//
// JS API:
//   dump(family, protocol, states, ext) -> Buffer of netlink messages up to and including
//     NLMSG_DONE or NLMSG_ERROR, unparsed (the TypeScript parser in exporters/sockets/sockdiag.ts
//     reads it; tests compare it with the C parser below). family 4 or 6; protocol an IPPROTO_*
//     number (6 tcp, 17 udp); states a bit mask of TCP states (1 << state); ext the INET_DIAG_*
//     extensions wanted.
//   scan(family, protocol, states) -> ArrayBuffer: one dump (no extensions), parsed here into a
//     packed table (layout below). family 0 asks for IPv4 and IPv6 TCP sockets in one dump, with
//     the original TCPDIAG_GETSOCK request (its family is AF_UNSPEC), so the kernel walks its
//     connection hash, which holds both families, once instead of twice.
//   parse(bytes, protocol, family) -> ArrayBuffer: the same parser over given bytes (family 0:
//     either), for tests and fuzzers.
//   Both throw an Error whose `code` is the errno name (EPERM, EACCES, EPROTONOSUPPORT,
//   ETIMEDOUT, EFBIG, ...) when the socket cannot be opened or the dump cannot be read.
//
// Packed table (host byte order; exporters/sockets/packed.ts reads it):
//   48 u32 header words: magic, flags (1 done, 2 truncated, 4 interrupted, 8 errno), errno,
//     socket records read, bad messages, listener count, record size (40), 0, then 16 state
//     counts, then up to 3 bad-message examples as (kind, value, value, byte offset), then how
//     many examples there are.
//   Then one 40-byte record per listener (TCP LISTEN, or UDP unconnected), IPv4 before IPv6:
//     u8 family (4|6), u8 protocol, u16 port, 16 address bytes (IPv4: 4, then zeros), u32
//     inode, u32 uid, u32 rqueue, u32 wqueue, u32 connections (TCP: the established sockets of
//     the dump whose local end is the listener's address and port, or for a wildcard listener
//     its port and family when no listener has that exact address; listeners sharing a label
//     set share one count, given to the first; UDP: 0xffffffff).
//   The parser mirrors parseSockDiag() in exporters/sockets/sockdiag.ts: whatever lengths the
//   bytes claim, it never reads outside them.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/** Free space kept for each recv; the kernel's dump messages are at most 32 KiB. */
#define CHUNK (64u * 1024u)
/** A dump larger than this is refused (about 3 million sockets without extensions). */
#define MAX_DUMP (256u * 1024u * 1024u)
/** A kernel that stops answering mid-dump fails the call after this many seconds. */
#define RECV_TIMEOUT_S 5

static const char *errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case EACCES: return "EACCES";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EAGAIN: return "ETIMEDOUT";
    case ENOMEM: return "ENOMEM";
    case ENOBUFS: return "ENOBUFS";
    case EFBIG: return "EFBIG";
    case EINVAL: return "EINVAL";
    case EMFILE: return "EMFILE";
    case ENFILE: return "ENFILE";
    case EMSGSIZE: return "EMSGSIZE";
    default: return "EIO";
  }
}

static napi_value throw_errno(napi_env env, const char *what, int e) {
  char msg[160];
  const char *code = errno_name(e);
  snprintf(msg, sizeof msg, "sock_diag %s: %s (%s)", what, e == EAGAIN ? "no reply within 5 s" : strerror(e), code);
  napi_throw_error(env, code, msg);
  return NULL;
}

/** The netlink header of a dump request of `len` bytes (the request structs differ; this does not). */
static void dump_header(struct nlmsghdr *h, size_t len, uint16_t type) {
  h->nlmsg_len = (uint32_t)len;
  h->nlmsg_type = type;
  h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  h->nlmsg_seq = 1;
}

/** Reads one whole dump reply into a malloc'd buffer. Returns 0, or an errno with *what set. */
static int read_dump(int compat, uint32_t family, uint32_t protocol, uint32_t states, uint32_t ext, char **out,
                     size_t *out_len, const char **what) {
  *out = NULL;
  *out_len = 0;
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) {
    *what = "socket";
    return errno;
  }
  struct timeval tv = {RECV_TIMEOUT_S, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  // One of the two requests, sent the same way.
  union {
    struct {
      struct nlmsghdr nlh;
      struct inet_diag_req r;
    } v1;
    struct {
      struct nlmsghdr nlh;
      struct inet_diag_req_v2 r;
    } v2;
  } req;
  memset(&req, 0, sizeof req);
  size_t req_len;
  if (compat) {
    // The original request: the kernel answers it for AF_UNSPEC, both families in one walk.
    req_len = sizeof req.v1;
    dump_header(&req.v1.nlh, req_len, TCPDIAG_GETSOCK);
    req.v1.r.idiag_family = AF_INET;
    req.v1.r.idiag_states = states;
    req.v1.r.idiag_ext = (uint8_t)ext;
  } else {
    req_len = sizeof req.v2;
    dump_header(&req.v2.nlh, req_len, SOCK_DIAG_BY_FAMILY);
    req.v2.r.sdiag_family = family == 6 ? AF_INET6 : AF_INET;
    req.v2.r.sdiag_protocol = (uint8_t)protocol;
    req.v2.r.idiag_states = states;
    req.v2.r.idiag_ext = (uint8_t)ext;
  }
  ssize_t sent;
  do sent = sendto(fd, &req, req_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    int e = errno;
    close(fd);
    *what = "send";
    return e;
  }

  size_t cap = 4 * CHUNK, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) {
    close(fd);
    *what = "buffer";
    return ENOMEM;
  }
  int done = 0;
  while (!done) {
    if (cap - len < CHUNK) {
      if (cap >= MAX_DUMP) {
        free(buf);
        close(fd);
        *what = "dump larger than 256 MiB";
        return EFBIG;
      }
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) {
        free(buf);
        close(fd);
        *what = "buffer";
        return ENOMEM;
      }
      buf = bigger;
      cap *= 2;
    }
    // MSG_TRUNC makes recv return the datagram's real length, so a cut one is detected.
    ssize_t n = recv(fd, buf + len, cap - len, MSG_TRUNC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      free(buf);
      close(fd);
      *what = "recv";
      return e;
    }
    if (n == 0) break;
    if ((size_t)n > cap - len) {
      free(buf);
      close(fd);
      *what = "reply larger than the receive buffer";
      return EMSGSIZE;
    }
    // Only the end of the dump is looked for here; everything else is the parser's job.
    const struct nlmsghdr *h = (const struct nlmsghdr *)(buf + len);
    int rem = (int)n;
    for (; NLMSG_OK(h, rem); h = NLMSG_NEXT(h, rem)) {
      if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) done = 1;
    }
    len += (size_t)n;
    if (rem != 0) done = 1; // a malformed datagram: hand it over as it is, the parser reports it
  }
  close(fd);
  *out = buf;
  *out_len = len;
  return 0;
}

static napi_value dump(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t family = 0, protocol = 0, states = 0, ext = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_get_value_uint32(env, argv[0], &family) != napi_ok || napi_get_value_uint32(env, argv[1], &protocol) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &states) != napi_ok || napi_get_value_uint32(env, argv[3], &ext) != napi_ok ||
      (family != 4 && family != 6) || protocol > 255 || ext > 255) {
    napi_throw_type_error(env, "EINVAL", "dump(family 4|6, protocol, states, ext)");
    return NULL;
  }
  char *buf;
  size_t len;
  const char *what = "";
  int e = read_dump(0, family, protocol, states, ext, &buf, &len, &what);
  if (e != 0) return throw_errno(env, what, e);
  napi_value out;
  void *data;
  napi_status st = napi_create_buffer_copy(env, len, buf, &data, &out);
  free(buf);
  if (st != napi_ok) return throw_errno(env, "buffer", ENOMEM);
  return out;
}

/* ---- the parser: reply bytes -> packed table ---- */

#define NLMSG_HDR_LEN 16u
#define DIAG_MSG_LEN 72u
#define MSG_NOOP 1
#define MSG_ERROR 2
#define MSG_DONE 3
#define MSG_SOCK_DIAG 20
#define MSG_TCPDIAG 18 /* the type of the replies to a TCPDIAG_GETSOCK request */
#define FLAG_DUMP_INTR 0x10

#define PK_MAGIC 0x53440002u
#define PK_WORDS 48
#define PK_RECORD 40u
enum {
  H_MAGIC = 0,
  H_FLAGS = 1,
  H_ERRNO = 2,
  H_SOCKETS = 3,
  H_BAD = 4,
  H_LISTENERS = 5,
  H_RECORD = 6,
  H_STATES = 8,
  H_EXAMPLES = 24,
  H_NEXAMPLES = 36,
};
enum { PF_DONE = 1, PF_TRUNCATED = 2, PF_INTERRUPTED = 4, PF_ERRNO = 8 };
/** Bad-message kinds; packed.ts turns them into the same words parseSockDiag() uses. */
enum { BAD_LENGTH = 1, BAD_SHORT_ERROR, BAD_TYPE, BAD_RECORD, BAD_FAMILY, BAD_ATTRIBUTE, BAD_STATE };
#define NO_CONNECTIONS 0xffffffffu

/** The local end of an established socket: family, port, address, as in a listener record. */
struct end {
  uint8_t family;
  uint16_t port;
  uint8_t addr[16];
};

struct table {
  uint32_t h[PK_WORDS];
  uint8_t *recs; // PK_RECORD bytes each
  size_t nrec, caprec;
  struct end *ends;
  size_t nend, capend;
};

static uint32_t rd32(const uint8_t *p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
static uint16_t rd16(const uint8_t *p) {
  uint16_t v;
  memcpy(&v, p, 2);
  return v;
}

static void bad(struct table *t, uint32_t kind, uint32_t a, uint32_t b, size_t at) {
  t->h[H_BAD]++;
  uint32_t n = t->h[H_NEXAMPLES];
  if (n >= 3) return;
  t->h[H_EXAMPLES + 4 * n] = kind;
  t->h[H_EXAMPLES + 4 * n + 1] = a;
  t->h[H_EXAMPLES + 4 * n + 2] = b;
  t->h[H_EXAMPLES + 4 * n + 3] = (uint32_t)at;
  t->h[H_NEXAMPLES] = n + 1;
}

/** Grows an array to hold one more item; 0 when memory runs out. */
static int grow(void **items, size_t *cap, size_t n, size_t size) {
  if (n < *cap) return 1;
  size_t c = *cap ? *cap * 2 : 256;
  void *p = realloc(*items, c * size);
  if (p == NULL) return 0;
  *items = p;
  *cap = c;
  return 1;
}

static uint32_t key_hash(uint8_t family, uint16_t port, const uint8_t *addr, int with_addr) {
  uint32_t h = 2166136261u;
  h = (h ^ family) * 16777619u;
  h = (h ^ (port & 0xff)) * 16777619u;
  h = (h ^ (port >> 8)) * 16777619u;
  if (with_addr)
    for (int i = 0; i < 16; i++) h = (h ^ addr[i]) * 16777619u;
  return h ^ (h >> 15);
}

static uint8_t rec_family(const uint8_t *r) { return r[0]; }
static uint16_t rec_port(const uint8_t *r) { return rd16(r + 2); }

/**
 * Open-addressing table of listener indexes (+1; 0 empty), first come first kept: by family,
 * port and address (`with_addr`), or by family and port.
 */
struct index {
  uint32_t *slots;
  uint32_t mask;
  int with_addr;
};

static int index_init(struct index *x, size_t n, int with_addr) {
  size_t cap = 16;
  while (cap < 2 * n + 1) cap *= 2;
  x->slots = calloc(cap, sizeof *x->slots);
  x->mask = (uint32_t)(cap - 1);
  x->with_addr = with_addr;
  return x->slots != NULL;
}

static int key_equal(const struct index *x, const uint8_t *r, uint8_t family, uint16_t port, const uint8_t *addr) {
  return rec_family(r) == family && rec_port(r) == port && (!x->with_addr || memcmp(r + 4, addr, 16) == 0);
}

/** The first listener with this key, or -1. */
static long index_find(const struct index *x, const uint8_t *recs, uint8_t family, uint16_t port,
                       const uint8_t *addr) {
  uint32_t i = key_hash(family, port, addr, x->with_addr) & x->mask;
  while (x->slots[i] != 0) {
    const uint8_t *r = recs + (size_t)(x->slots[i] - 1) * PK_RECORD;
    if (key_equal(x, r, family, port, addr)) return (long)x->slots[i] - 1;
    i = (i + 1) & x->mask;
  }
  return -1;
}

static void index_add(struct index *x, const uint8_t *recs, size_t k) {
  const uint8_t *r = recs + k * PK_RECORD;
  uint32_t i = key_hash(rec_family(r), rec_port(r), r + 4, x->with_addr) & x->mask;
  while (x->slots[i] != 0) {
    const uint8_t *o = recs + (size_t)(x->slots[i] - 1) * PK_RECORD;
    if (key_equal(x, o, rec_family(r), rec_port(r), r + 4)) return; // the first one keeps the key
    i = (i + 1) & x->mask;
  }
  x->slots[i] = (uint32_t)k + 1;
}

static int is_wildcard(const uint8_t *r) {
  static const uint8_t zero[16];
  return memcmp(r + 4, zero, 16) == 0;
}

/** Each TCP listener's connections (see the header comment). 0 when memory runs out. */
static int attribute(struct table *t) {
  for (size_t k = 0; k < t->nrec; k++) {
    uint8_t *r = t->recs + k * PK_RECORD;
    uint32_t zero = 0;
    if (r[1] == IPPROTO_TCP) memcpy(r + 36, &zero, 4);
  }
  if (t->nrec == 0 || t->nend == 0) return 1;
  struct index exact, wild;
  if (!index_init(&exact, t->nrec, 1)) return 0;
  if (!index_init(&wild, t->nrec, 0)) {
    free(exact.slots);
    return 0;
  }
  for (size_t k = 0; k < t->nrec; k++) {
    const uint8_t *r = t->recs + k * PK_RECORD;
    if (r[1] != IPPROTO_TCP) continue;
    index_add(&exact, t->recs, k);
    if (is_wildcard(r)) index_add(&wild, t->recs, k);
  }
  for (size_t e = 0; e < t->nend; e++) {
    const struct end *x = &t->ends[e];
    long k = index_find(&exact, t->recs, x->family, x->port, x->addr);
    if (k < 0) k = index_find(&wild, t->recs, x->family, x->port, x->addr);
    if (k < 0) continue;
    uint8_t *r = t->recs + (size_t)k * PK_RECORD;
    uint32_t c = rd32(r + 36) + 1;
    memcpy(r + 36, &c, 4);
  }
  free(exact.slots);
  free(wild.slots);
  return 1;
}

/** IPv4 records first, each family in dump order (the order of one dump per family). */
static int ipv4_first(struct table *t) {
  size_t n4 = 0;
  for (size_t k = 0; k < t->nrec; k++) n4 += t->recs[k * PK_RECORD] == 4;
  if (n4 == 0 || n4 == t->nrec) return 1;
  uint8_t *sorted = malloc(t->nrec * PK_RECORD);
  if (sorted == NULL) return 0;
  size_t a = 0, b = n4;
  for (size_t k = 0; k < t->nrec; k++) {
    const uint8_t *r = t->recs + k * PK_RECORD;
    memcpy(sorted + (r[0] == 4 ? a++ : b++) * PK_RECORD, r, PK_RECORD);
  }
  free(t->recs);
  t->recs = sorted;
  t->caprec = t->nrec;
  return 1;
}

/**
 * Parses one dump reply (any number of datagrams, concatenated) the way parseSockDiag() does.
 * `want_family` 4 or 6: records of the other family are bad; 0: either. Returns 0, or ENOMEM.
 */
static int parse_reply(const uint8_t *buf, size_t len, uint32_t protocol, uint32_t want_family, struct table *t) {
  memset(t->h, 0, sizeof t->h);
  t->h[H_MAGIC] = PK_MAGIC;
  t->h[H_RECORD] = PK_RECORD;
  const int tcp = protocol == IPPROTO_TCP;
  const unsigned wanted = tcp ? 10 /* LISTEN */ : 7 /* CLOSE: an unconnected UDP socket */;
  size_t off = 0;
  while (off < len) {
    if (len - off < NLMSG_HDR_LEN) {
      t->h[H_FLAGS] |= PF_TRUNCATED;
      break;
    }
    const uint32_t mlen = rd32(buf + off);
    const uint16_t type = rd16(buf + off + 4);
    const uint16_t flags = rd16(buf + off + 6);
    if (mlen < NLMSG_HDR_LEN || mlen > len - off) {
      t->h[H_FLAGS] |= PF_TRUNCATED;
      bad(t, BAD_LENGTH, mlen, (uint32_t)(len - off), off);
      break;
    }
    const size_t at = off;
    const size_t body = off + NLMSG_HDR_LEN;
    const size_t end = off + mlen;
    off += ((size_t)mlen + 3) & ~(size_t)3;
    if (flags & FLAG_DUMP_INTR) t->h[H_FLAGS] |= PF_INTERRUPTED;
    if (type == MSG_DONE) {
      t->h[H_FLAGS] |= PF_DONE;
      break;
    }
    if (type == MSG_ERROR) {
      // payload: s32 -errno, then the request's header
      if (end - body >= 4) {
        int64_t e = -(int64_t)(int32_t)rd32(buf + body);
        if (e != 0) {
          t->h[H_FLAGS] |= PF_ERRNO;
          t->h[H_ERRNO] = (uint32_t)(e > 0 ? e : -e);
          break;
        }
      } else
        bad(t, BAD_SHORT_ERROR, 0, 0, at);
      continue;
    }
    if (type == MSG_NOOP) continue;
    if (type != MSG_SOCK_DIAG && type != MSG_TCPDIAG) {
      bad(t, BAD_TYPE, type, 0, at);
      continue;
    }
    if (end - body < DIAG_MSG_LEN) {
      bad(t, BAD_RECORD, (uint32_t)(end - body), 0, body);
      continue;
    }
    const uint8_t afam = buf[body];
    const uint8_t family = afam == AF_INET ? 4 : afam == AF_INET6 ? 6 : 0;
    if (family == 0 || (want_family != 0 && family != want_family)) {
      bad(t, BAD_FAMILY, afam, 0, body);
      continue;
    }
    // Every attribute must lie inside the message (the last one's padding may run past it).
    size_t a = body + DIAG_MSG_LEN;
    int attrs_ok = 1;
    while (a + 4 <= end) {
      const uint16_t alen = rd16(buf + a);
      if (alen < 4 || alen > end - a) {
        attrs_ok = 0;
        break;
      }
      a += ((size_t)alen + 3) & ~(size_t)3;
    }
    if (!attrs_ok) {
      bad(t, BAD_ATTRIBUTE, 0, 0, a);
      continue;
    }
    const uint8_t state = buf[body + 1];
    if (state > 15) {
      bad(t, BAD_STATE, state, 0, body);
      continue;
    }
    t->h[H_SOCKETS]++;
    t->h[H_STATES + state]++;
    const int listener = state == wanted;
    if (!listener && !(tcp && state == 1 /* ESTABLISHED */)) continue;
    const uint16_t port = (uint16_t)((buf[body + 4] << 8) | buf[body + 5]);
    const uint8_t *src = buf + body + 8;
    if (!listener) {
      if (!grow((void **)&t->ends, &t->capend, t->nend, sizeof *t->ends)) return ENOMEM;
      struct end *x = &t->ends[t->nend++];
      memset(x, 0, sizeof *x);
      x->family = family;
      x->port = port;
      memcpy(x->addr, src, family == 4 ? 4 : 16);
      continue;
    }
    if (!grow((void **)&t->recs, &t->caprec, t->nrec, PK_RECORD)) return ENOMEM;
    uint8_t *r = t->recs + t->nrec++ * PK_RECORD;
    memset(r, 0, PK_RECORD);
    r[0] = family;
    r[1] = (uint8_t)protocol;
    memcpy(r + 2, &port, 2);
    memcpy(r + 4, src, family == 4 ? 4 : 16);
    memcpy(r + 20, buf + body + 68, 4); // inode
    memcpy(r + 24, buf + body + 64, 4); // uid
    memcpy(r + 28, buf + body + 56, 4); // rqueue: the accept queue of a listener
    memcpy(r + 32, buf + body + 60, 4); // wqueue: its backlog
    const uint32_t none = NO_CONNECTIONS;
    memcpy(r + 36, &none, 4);
  }
  if (!ipv4_first(t)) return ENOMEM;
  if (tcp && !attribute(t)) return ENOMEM;
  t->h[H_LISTENERS] = (uint32_t)t->nrec;
  return 0;
}

static void table_free(struct table *t) {
  free(t->recs);
  free(t->ends);
  t->recs = NULL;
  t->ends = NULL;
}

/** The packed table as a new ArrayBuffer (header, then the records). */
static napi_value table_value(napi_env env, struct table *t) {
  size_t size = sizeof t->h + t->nrec * PK_RECORD;
  void *data;
  napi_value out;
  if (napi_create_arraybuffer(env, size, &data, &out) != napi_ok) {
    table_free(t);
    return throw_errno(env, "buffer", ENOMEM);
  }
  memcpy(data, t->h, sizeof t->h);
  if (t->nrec > 0) memcpy((uint8_t *)data + sizeof t->h, t->recs, t->nrec * PK_RECORD);
  table_free(t);
  return out;
}

static napi_value scan(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t family = 0, protocol = 0, states = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_uint32(env, argv[0], &family) != napi_ok || napi_get_value_uint32(env, argv[1], &protocol) != napi_ok ||
      napi_get_value_uint32(env, argv[2], &states) != napi_ok || (family != 0 && family != 4 && family != 6) ||
      (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP) || (family == 0 && protocol != IPPROTO_TCP)) {
    napi_throw_type_error(env, "EINVAL", "scan(family 0|4|6, protocol 6|17, states), family 0 for TCP only");
    return NULL;
  }
  char *buf;
  size_t len;
  const char *what = "";
  int e = read_dump(family == 0, family, protocol, states, 0, &buf, &len, &what);
  if (e != 0) return throw_errno(env, what, e);
  struct table t;
  memset(&t, 0, sizeof t);
  e = parse_reply((const uint8_t *)buf, len, protocol, family, &t);
  free(buf);
  if (e != 0) {
    table_free(&t);
    return throw_errno(env, "buffer", e);
  }
  return table_value(env, &t);
}

static napi_value parse(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  uint32_t family = 0, protocol = 0;
  bool typed = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_is_typedarray(env, argv[0], &typed) != napi_ok || !typed ||
      napi_get_value_uint32(env, argv[1], &protocol) != napi_ok || napi_get_value_uint32(env, argv[2], &family) != napi_ok ||
      (family != 0 && family != 4 && family != 6) || (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)) {
    napi_throw_type_error(env, "EINVAL", "parse(bytes Uint8Array, protocol 6|17, family 0|4|6)");
    return NULL;
  }
  napi_typedarray_type kind;
  size_t n;
  void *data;
  napi_value ab;
  size_t offset;
  if (napi_get_typedarray_info(env, argv[0], &kind, &n, &data, &ab, &offset) != napi_ok || kind != napi_uint8_array) {
    napi_throw_type_error(env, "EINVAL", "parse(bytes Uint8Array, protocol 6|17, family 0|4|6)");
    return NULL;
  }
  struct table t;
  memset(&t, 0, sizeof t);
  int e = parse_reply((const uint8_t *)data, n, protocol, family, &t);
  if (e != 0) {
    table_free(&t);
    return throw_errno(env, "buffer", e);
  }
  return table_value(env, &t);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"dump", NULL, dump, NULL, NULL, NULL, napi_default, NULL},
      {"scan", NULL, scan, NULL, NULL, NULL, napi_default, NULL},
      {"parse", NULL, parse, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }

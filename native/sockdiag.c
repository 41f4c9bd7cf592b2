// The kernel's socket tables over netlink sock_diag (INET_DIAG), the way `ss` reads them.
//
// /proc/net/tcp prints every socket as text, TIME_WAIT included; a sock_diag dump takes a state
// filter that the kernel applies before anything is copied, and hands out fixed binary records
// (inet_diag_msg) that carry what /proc cannot: a listener's backlog (its accept-queue limit)
// beside the queue itself.
//
// This file only moves bytes: it sends one dump request and returns every reply message,
// unparsed, as one Buffer. The records are parsed in TypeScript (exporters/sockets/sockdiag.ts),
// a pure function that is fuzzed. The call blocks: it is made from a worker thread, never from
// the event loop. Linux only.
//
// JS API:
//   dump(family, protocol, states, ext) -> Buffer of netlink messages up to and including
//     NLMSG_DONE or NLMSG_ERROR. family 4 or 6; protocol an IPPROTO_* number (6 tcp, 17 udp);
//     states a bit mask of TCP states (1 << state); ext the INET_DIAG_* extensions wanted.
//     Throws an Error whose `code` is the errno name (EPERM, EACCES, EPROTONOSUPPORT,
//     ETIMEDOUT, EFBIG, ...) when the socket cannot be opened or the dump cannot be read.
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

  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return throw_errno(env, "socket", errno);
  struct timeval tv = {RECV_TIMEOUT_S, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  struct {
    struct nlmsghdr nlh;
    struct inet_diag_req_v2 r;
  } req;
  memset(&req, 0, sizeof req);
  req.nlh.nlmsg_len = sizeof req;
  req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  req.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nlh.nlmsg_seq = 1;
  req.r.sdiag_family = family == 6 ? AF_INET6 : AF_INET;
  req.r.sdiag_protocol = (uint8_t)protocol;
  req.r.idiag_states = states;
  req.r.idiag_ext = (uint8_t)ext;
  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  ssize_t sent;
  do sent = sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&kernel, sizeof kernel);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    int e = errno;
    close(fd);
    return throw_errno(env, "send", e);
  }

  size_t cap = 4 * CHUNK, len = 0;
  char *buf = malloc(cap);
  if (buf == NULL) {
    close(fd);
    return throw_errno(env, "buffer", ENOMEM);
  }
  int done = 0;
  while (!done) {
    if (cap - len < CHUNK) {
      if (cap >= MAX_DUMP) {
        free(buf);
        close(fd);
        return throw_errno(env, "dump larger than 256 MiB", EFBIG);
      }
      char *bigger = realloc(buf, cap * 2);
      if (bigger == NULL) {
        free(buf);
        close(fd);
        return throw_errno(env, "buffer", ENOMEM);
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
      return throw_errno(env, "recv", e);
    }
    if (n == 0) break;
    if ((size_t)n > cap - len) {
      free(buf);
      close(fd);
      return throw_errno(env, "reply larger than the receive buffer", EMSGSIZE);
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
  napi_value out;
  void *data;
  napi_status st = napi_create_buffer_copy(env, len, buf, &data, &out);
  free(buf);
  if (st != napi_ok) return throw_errno(env, "buffer", ENOMEM);
  return out;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"dump", NULL, dump, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE_INIT() { return init(env, exports); }

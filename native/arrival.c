// Arrival timestamps for probe sockets, taken off the event loop.
//
// A probe's phase ends when bytes arrive, but JavaScript only sees them when the event loop gets
// to them: under load (thousands of other probes, a garbage collection, a scrape) that is
// milliseconds late. This addon runs one thread blocked in epoll_wait on the sockets a prober
// asks about, and records CLOCK_MONOTONIC when each is first seen established and when it becomes
// readable (edge-triggered: every new arrival moves that stamp). The prober reads the stamps once
// it has handled the events.
//
// The addon creates those sockets itself and registers them before they connect. A socket added
// after its connect call would miss the handshake whenever it completes first (always on
// loopback, where it completes inside connect()), and its stamp would be whenever the event loop
// got round to the registration. Before connecting, a socket polls as hung up and writable; the
// thread ignores those events by asking the kernel for the socket's TCP state until it is past
// SYN_SENT. (A connection reset before the thread first looks reads as closed and is never
// stamped; the prober then times it on the event loop.)
//
// One thread and one table per process: load it from the main thread only.
// JS API (all synchronous, called on the main thread only):
//   open(family, arrivals) -> slot (>= 0) of a new non-blocking, unconnected TCP socket (4 or 6),
//     or -errno; with arrivals false only its connect is stamped, and later arrivals wake nothing
//   fd(slot) -> its descriptor, for the event loop to adopt
//   last(slot) -> ms (CLOCK_MONOTONIC, fractional) of the latest arrival, or 0 if none yet
//   connected(slot) -> ms when the connection was first seen established, or 0
//   release(slot, close) -> stops stamping; closes the descriptor too when `close` is true (for
//     a socket the event loop never adopted). The descriptor is not unregistered: it stays in the
//     epoll set until it is closed, which removes it by itself. (Unregistering by number would
//     be wrong once the event loop has closed it: the number may name another socket by then.)
//     Events that still come for a released slot fail the generation check.
//   inUse() -> how many slots are held (tests check that every watch is released)
//   now() -> ms on the same clock
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <node_api.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 65536

static int epfd = -1;
static pthread_t thread;
// Latest arrival per slot (ns), and the slot's generation: an event fetched for a slot's previous
// user (the thread may hold it while the main thread frees and reuses the slot) must not stamp
// the new user, so every event carries the generation it was registered with.
static _Atomic int64_t stamp[SLOTS];
static _Atomic int64_t writable[SLOTS];
static _Atomic uint32_t gen[SLOTS];
// When the slot's current user opened it. The thread may pass the generation check, lose the
// CPU, and write its stamp after the slot was released and reopened; such a stamp was taken
// before the release, so anything older than this is not the current user's and reads as 0.
static _Atomic int64_t opened[SLOTS];
// The slot's descriptor, read by the thread for its TCP state.
static _Atomic int fds[SLOTS];
// Free slots, used by the main thread only.
static uint32_t free_list[SLOTS];
static uint32_t free_count = 0;

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

// Whether the socket is past SYN_SENT: established, or closing after it was. A socket that was
// never connected, or whose connection was refused, is in TCP_CLOSE.
static int past_handshake(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 || len < 1) return 0;
  return ti.tcpi_state != TCP_CLOSE && ti.tcpi_state != TCP_SYN_SENT;
}

static void *run(void *arg) {
  (void)arg;
  // A stamp is only as prompt as this thread's wake-up. Where the process may (root, or
  // CAP_SYS_NICE), run at the lowest real-time priority: it sleeps almost always, and wakes
  // ahead of busy threads. Elsewhere it stays an ordinary thread.
  struct sched_param sp = {.sched_priority = 1};
  pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
  struct epoll_event ev[128];
  for (;;) {
    int n = epoll_wait(epfd, ev, 128, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return NULL;
    }
    int64_t t = now_ns();
    for (int i = 0; i < n; i++) {
      uint32_t slot = (uint32_t)(ev[i].data.u64 & 0xffffffffu);
      uint32_t g = (uint32_t)(ev[i].data.u64 >> 32);
      if (slot >= SLOTS || atomic_load(&gen[slot]) != g) continue;
      if (atomic_load(&writable[slot]) == 0) {
        // Until the handshake is seen, an event may be the unconnected socket's own readiness.
        if (!past_handshake(atomic_load(&fds[slot]))) continue;
        // The handshake may have completed after epoll_wait returned with an event from before
        // the connect: date it now, not at `t`.
        int64_t th = now_ns();
        // The descriptor may have been closed and reused meanwhile: then the slot moved on too.
        if (atomic_load(&gen[slot]) != g) continue;
        int64_t zero = 0;
        atomic_compare_exchange_strong(&writable[slot], &zero, th);
        // Its mask may be the unconnected socket's (hung up): only bytes count as an arrival.
        if ((ev[i].events & EPOLLIN) && !(ev[i].events & EPOLLHUP)) atomic_store(&stamp[slot], th);
        continue;
      }
      if (ev[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) atomic_store(&stamp[slot], t);
    }
  }
}

static napi_value num(napi_env env, double v) {
  napi_value out;
  napi_create_double(env, v, &out);
  return out;
}

// A slot number, or -1 for anything else (napi_get_value_int64 would read NaN as 0).
static int64_t slot_of(napi_env env, napi_value v) {
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok || !(d >= 0 && d < SLOTS) || d != (double)(int64_t)d) return -1;
  return (int64_t)d;
}

// The first argument as a slot number, or -1.
static int64_t slot_arg(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return -1;
  return slot_of(env, argv[0]);
}

// A stamp of the slot's current user, or 0 (see `opened`).
static int64_t current(_Atomic int64_t *field, int64_t slot) {
  int64_t v = atomic_load(&field[slot]);
  return v >= atomic_load(&opened[slot]) ? v : 0;
}

static napi_value js_open(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  int64_t family;
  bool arrivals = true;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_int64(env, argv[0], &family) != napi_ok || napi_get_value_bool(env, argv[1], &arrivals) != napi_ok ||
      (family != 4 && family != 6)) {
    return num(env, -EINVAL);
  }
  if (free_count == 0) return num(env, -ENOSPC);
  int fd = socket(family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return num(env, -errno);
  uint32_t slot = free_list[--free_count];
  uint32_t g = atomic_fetch_add(&gen[slot], 1) + 1;
  atomic_store(&opened[slot], now_ns());
  atomic_store(&stamp[slot], 0);
  atomic_store(&writable[slot], 0);
  atomic_store(&fds[slot], fd);
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = arrivals ? EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET : EPOLLOUT | EPOLLET;
  ev.data.u64 = ((uint64_t)g << 32) | slot;
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    int e = errno;
    atomic_fetch_add(&gen[slot], 1);
    atomic_store(&fds[slot], -1);
    free_list[free_count++] = slot;
    close(fd);
    return num(env, -e);
  }
  return num(env, slot);
}

static int valid_slot(int64_t slot) {
  return slot >= 0 && slot < SLOTS && atomic_load(&fds[slot]) >= 0;
}

static napi_value js_fd(napi_env env, napi_callback_info info) {
  int64_t slot = slot_arg(env, info);
  if (!valid_slot(slot)) return num(env, -1);
  return num(env, atomic_load(&fds[slot]));
}

static napi_value js_last(napi_env env, napi_callback_info info) {
  int64_t slot = slot_arg(env, info);
  if (!valid_slot(slot)) return num(env, 0);
  return num(env, (double)current(stamp, slot) / 1e6);
}

static napi_value js_connected(napi_env env, napi_callback_info info) {
  int64_t slot = slot_arg(env, info);
  if (!valid_slot(slot)) return num(env, 0);
  return num(env, (double)current(writable, slot) / 1e6);
}

static napi_value js_release(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  bool close_it = false;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
      napi_get_value_bool(env, argv[1], &close_it) != napi_ok || !valid_slot(slot_of(env, argv[0]))) {
    napi_throw_type_error(env, NULL, "release(slot, close): a slot in use and a boolean");
    return NULL;
  }
  uint32_t slot = (uint32_t)slot_of(env, argv[0]);
  int fd = atomic_load(&fds[slot]);
  atomic_fetch_add(&gen[slot], 1);
  atomic_store(&fds[slot], -1);
  if (close_it) close(fd);
  free_list[free_count++] = slot;
  return NULL;
}

static napi_value js_in_use(napi_env env, napi_callback_info info) {
  (void)info;
  return num(env, SLOTS - free_count);
}

static napi_value js_now(napi_env env, napi_callback_info info) {
  (void)info;
  return num(env, (double)now_ns() / 1e6);
}

static napi_value init(napi_env env, napi_value exports) {
  if (epfd < 0) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
      napi_throw_error(env, NULL, "epoll_create1 failed");
      return NULL;
    }
    free_count = 0; // a previous init may have filled it before its thread failed to start
    for (uint32_t i = 0; i < SLOTS; i++) {
      free_list[free_count++] = SLOTS - 1 - i;
      atomic_store(&fds[i], -1);
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    if (pthread_create(&thread, &attr, run, NULL) != 0) {
      close(epfd);
      epfd = -1;
      napi_throw_error(env, NULL, "cannot start the arrival thread");
      return NULL;
    }
  }
  napi_property_descriptor props[] = {
    {"open", NULL, js_open, NULL, NULL, NULL, napi_default, NULL},
    {"fd", NULL, js_fd, NULL, NULL, NULL, napi_default, NULL},
    {"last", NULL, js_last, NULL, NULL, NULL, napi_default, NULL},
    {"connected", NULL, js_connected, NULL, NULL, NULL, napi_default, NULL},
    {"release", NULL, js_release, NULL, NULL, NULL, napi_default, NULL},
    {"inUse", NULL, js_in_use, NULL, NULL, NULL, napi_default, NULL},
    {"now", NULL, js_now, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

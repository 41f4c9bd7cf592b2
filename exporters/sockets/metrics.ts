// The families the sockets collector exports. Label sets are fixed; values are bounded
// (protocol, port class, TCP state) except where a cap bounds them (unexpected listeners).
import type { MetricDef } from '../types';

export const M = {
  listenerUp: 'portprobe_listener_up',
  listeningSockets: 'portprobe_listening_sockets',
  unexpectedInfo: 'portprobe_unexpected_listener_info',
  unexpectedCount: 'portprobe_unexpected_listeners',
  unexpectedTruncated: 'portprobe_unexpected_listeners_truncated',
  tcpStates: 'portprobe_tcp_connection_states',
  listenOverflows: 'portprobe_tcp_listen_overflows_total',
  listenDrops: 'portprobe_tcp_listen_drops_total',
  scanSuccess: 'portprobe_socket_scan_success',
  scanDuration: 'portprobe_socket_scan_duration_seconds',
  scanSource: 'portprobe_socket_scan_source_info',
  acceptQueue: 'portprobe_listener_accept_queue',
  acceptQueueLimit: 'portprobe_listener_accept_queue_limit',
  connections: 'portprobe_listener_connections',
} as const;

export const SOCKETS_METRICS: readonly MetricDef[] = [
  {
    name: M.listenerUp,
    help: 'Whether a listener from sockets.expect exists (1) or not (0); address "*" means any address.',
    type: 'gauge',
    labelNames: ['protocol', 'port', 'address'],
  },
  {
    name: M.listeningSockets,
    help: 'Listening TCP and bound UDP sockets on this host by IANA port class.',
    type: 'gauge',
    labelNames: ['protocol', 'port_class'],
  },
  {
    name: M.unexpectedInfo,
    help: 'A listener neither expected nor allowed (value 1); at most sockets.max_unexpected_series series.',
    type: 'gauge',
    labelNames: ['protocol', 'address', 'port', 'port_class', 'process'],
  },
  {
    name: M.unexpectedCount,
    help: 'Number of distinct unexpected listeners, including those beyond the series cap.',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: M.unexpectedTruncated,
    help: 'Whether unexpected listeners were left out because of sockets.max_unexpected_series (1) or not (0).',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: M.tcpStates,
    help: 'TCP sockets on this host by connection state, IPv4 and IPv6 together.',
    type: 'gauge',
    labelNames: ['state'],
  },
  {
    name: M.listenOverflows,
    help: "Times a listening socket's accept queue was full (kernel TcpExt ListenOverflows).",
    type: 'counter',
    labelNames: [],
  },
  {
    name: M.listenDrops,
    help: 'Connection requests dropped at a listening socket (kernel TcpExt ListenDrops).',
    type: 'counter',
    labelNames: [],
  },
  {
    name: M.scanSuccess,
    help: 'Whether the last socket scan could read the socket tables (1) or not (0).',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: M.scanDuration,
    help: 'Wall time of the last socket scan.',
    type: 'gauge',
    labelNames: [],
  },
  {
    name: M.scanSource,
    help: 'Where the last socket scan read the socket tables (netlink, procfs or systeminformation); value 1.',
    type: 'gauge',
    labelNames: ['source'],
  },
  {
    name: M.acceptQueue,
    help: "Connections waiting in a reported TCP listener's accept queue (ss -lt Recv-Q); netlink and procfs sources.",
    type: 'gauge',
    labelNames: ['protocol', 'address', 'port'],
  },
  {
    name: M.acceptQueueLimit,
    help: "The backlog a reported TCP listener's accept queue may reach (ss -lt Send-Q); netlink source only.",
    type: 'gauge',
    labelNames: ['protocol', 'address', 'port'],
  },
  {
    name: M.connections,
    help: "Established TCP connections to a reported listener's address and port, those still waiting to be accepted included.",
    type: 'gauge',
    labelNames: ['protocol', 'address', 'port'],
  },
];

// From a listener table to facts: expectations, port classes, unexpected listeners with a
// cardinality cap, TCP states. Pure, so every rule is tested without sockets.
import type { Fact } from '../types';
import { normalizeAddress } from './address';
import { M } from './metrics';
import { PORT_CLASSES, TCP_STATE_NAMES, portClass, type Listener } from './procnet';
import type { ListenQueueCounters } from './netstat';
import { commName, parsePortRange, type ListenerExpectation, type PortRange, type SocketsSettings } from './settings';

/** A listener with its owner when known (null: not permitted or not asked for). */
export type OwnedListener = Listener;

export interface SocketTable {
  listeners: OwnedListener[];
  /** TCP sockets per kernel state code; undefined when states were not read. */
  tcpStates?: number[];
  listenQueue?: ListenQueueCounters;
}

export interface ExpectationStatus {
  protocol: string;
  port: number;
  address: string;
  process?: string;
  up: boolean;
  /** Why a listener on the port did not count, when one exists. */
  note?: string;
}

export interface UnexpectedListener {
  protocol: string;
  address: string;
  port: number;
  process: string;
}

export interface Evaluation {
  facts: Fact[];
  expectations: ExpectationStatus[];
  /** The unexpected listeners exported as series (at most max_unexpected_series). */
  unexpected: UnexpectedListener[];
  /** Distinct unexpected listeners, including those beyond the cap. */
  unexpectedCount: number;
  truncated: boolean;
}

const PROTOCOLS = ['tcp', 'udp'] as const;
/** The states a kernel reports in /proc/net/tcp (new_syn_recv is internal). */
const EXPORTED_STATES = TCP_STATE_NAMES.slice(1, 12);

function matches(e: ListenerExpectation, l: OwnedListener, address: string | undefined): boolean {
  if (l.port !== e.port || l.protocol !== (e.protocol ?? 'tcp')) return false;
  if (address !== undefined && l.address !== address) return false;
  if (e.process !== undefined && (l.owner === null || l.owner.name !== commName(e.process))) return false;
  return true;
}

/** Code-unit order: stable across locales and far cheaper than localeCompare on large tables. */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** protocol, port, address, process name: the order of the unexpected series. */
function compareListeners(a: OwnedListener, b: OwnedListener): number {
  return (
    cmp(a.protocol, b.protocol) ||
    a.port - b.port ||
    cmp(a.address, b.address) ||
    cmp(a.owner?.name ?? '', b.owner?.name ?? '')
  );
}

/**
 * What evaluate() may keep between scans: the unexpected candidates in table order with their
 * owners, and the same sorted. When a scan brings the same listener objects with the same owners
 * (a scan reusing them, see ListenerReuse), the sort is not made again.
 */
export class EvaluationMemo {
  candidates: OwnedListener[] = [];
  owners: Array<OwnedListener['owner']> = [];
  sorted: OwnedListener[] = [];

  /** `candidates` sorted by compareListeners, from the last call when they are the same. */
  sort(candidates: OwnedListener[]): OwnedListener[] {
    let same = candidates.length === this.candidates.length;
    for (let i = 0; same && i < candidates.length; i++)
      same = candidates[i] === this.candidates[i] && candidates[i].owner === this.owners[i];
    if (same) return this.sorted;
    this.candidates = candidates;
    this.owners = candidates.map((l) => l.owner);
    this.sorted = [...candidates].sort(compareListeners);
    return this.sorted;
  }
}

export function evaluate(table: SocketTable, s: SocketsSettings, memo?: EvaluationMemo): Evaluation {
  const facts: Fact[] = [];
  const expectations: ExpectationStatus[] = [];
  const expectedListeners = new Set<OwnedListener>();

  for (const e of s.expect) {
    const protocol = e.protocol ?? 'tcp';
    // Listener addresses are canonical already (parser, normalizeAddress); make this one so too.
    const address =
      e.address === undefined ? undefined : (normalizeAddress(e.address, e.address.includes(':') ? 6 : 4) ?? e.address);
    let up = false;
    for (const l of table.listeners) {
      if (matches(e, l, address)) {
        up = true;
        expectedListeners.add(l);
      }
    }
    const status: ExpectationStatus = { protocol, port: e.port, address: address ?? '*', up };
    if (e.process !== undefined) status.process = e.process;
    if (!up && e.process !== undefined) {
      const other = table.listeners.find((l) => matches({ ...e, process: undefined }, l, address));
      if (other) {
        status.note =
          other.owner === null
            ? "a listener exists but its process is unknown (run the agent as root to see other users' processes)"
            : `a listener exists but belongs to "${other.owner.name}" (pid ${other.owner.pid})`;
      }
    }
    expectations.push(status);
    facts.push({
      metric: M.listenerUp,
      labels: { protocol, port: String(e.port), address: address ?? '*' },
      value: up ? 1 : 0,
    });
  }

  // Counts by protocol and port class: every combination, so the series set is stable.
  const counts = [0, 0, 0, 0, 0, 0];
  for (const l of table.listeners) {
    counts[(l.protocol === 'tcp' ? 0 : 3) + (l.port < 1024 ? 0 : l.port < 49152 ? 1 : 2)]++;
  }
  PROTOCOLS.forEach((protocol, p) => {
    PORT_CLASSES.forEach((port_class, c) => {
      facts.push({ metric: M.listeningSockets, labels: { protocol, port_class }, value: counts[p * 3 + c] });
    });
  });

  // Unexpected: neither matched by an expectation nor allowed. One series per distinct label
  // set (SO_REUSEPORT groups and forked workers share one), in a fixed order so the cap always
  // keeps the same ones. Sorting the candidates and skipping equal neighbours avoids building a
  // key per socket, which matters on hosts with thousands of listeners.
  const ranges: PortRange[] = [];
  for (const p of s.allow.ports) {
    const r = parsePortRange(p);
    if (typeof r !== 'string') ranges.push(r);
  }
  const allowedNames = new Set(s.allow.processes.map(commName));
  const candidates: OwnedListener[] = [];
  for (const l of table.listeners) {
    if (expectedListeners.has(l)) continue;
    if (ranges.length > 0 && ranges.some((r) => l.port >= r.from && l.port <= r.to)) continue;
    if (l.owner !== null && l.owner.name !== '' && allowedNames.has(l.owner.name)) continue;
    candidates.push(l);
  }
  const sorted = memo ? memo.sort(candidates) : candidates.sort(compareListeners);
  const unexpected: UnexpectedListener[] = [];
  let distinct = 0;
  let prev: OwnedListener | undefined;
  for (const l of sorted) {
    if (prev !== undefined && compareListeners(prev, l) === 0) continue;
    prev = l;
    distinct++;
    if (unexpected.length < s.max_unexpected_series) {
      unexpected.push({ protocol: l.protocol, address: l.address, port: l.port, process: l.owner?.name ?? '' });
    }
  }
  for (const u of unexpected) {
    facts.push({
      metric: M.unexpectedInfo,
      labels: {
        protocol: u.protocol,
        address: u.address,
        port: String(u.port),
        port_class: portClass(u.port),
        process: u.process,
      },
      value: 1,
    });
  }
  facts.push(...queueFacts(table.listeners, expectedListeners, unexpected));
  const truncated = unexpected.length < distinct;
  facts.push({ metric: M.unexpectedCount, value: distinct });
  facts.push({ metric: M.unexpectedTruncated, value: truncated ? 1 : 0 });

  for (const f of countFacts(table, s)) facts.push(f);
  return { facts, expectations, unexpected, unexpectedCount: distinct, truncated };
}

/**
 * The facts evaluate() ends with, which do not depend on the listeners: TCP sockets by state and
 * the listen-queue counters. A scan whose listeners are those of the last one, to the byte, keeps
 * the rest of the last evaluation and makes only these again (netlink.ts).
 */
export function countFacts(table: SocketTable, s: SocketsSettings): Fact[] {
  const facts: Fact[] = [];
  if (s.tcp_states && table.tcpStates) {
    EXPORTED_STATES.forEach((state, i) => {
      let v = table.tcpStates?.[i + 1] ?? 0;
      // The kernel shows half-open requests (new_syn_recv) as syn_recv in /proc.
      if (state === 'syn_recv') v += table.tcpStates?.[12] ?? 0;
      facts.push({ metric: M.tcpStates, labels: { state }, value: v });
    });
  }
  if (table.listenQueue) {
    facts.push({ metric: M.listenOverflows, value: table.listenQueue.overflows });
    facts.push({ metric: M.listenDrops, value: table.listenQueue.drops });
  }
  return facts;
}

/**
 * Accept queue, its limit and connections for every TCP listener the agent reports: those an
 * expectation matched and the unexpected ones within the series cap. Listeners sharing a label
 * set (SO_REUSEPORT groups, forked workers) are summed: each has a queue of its own. A source
 * that does not give a number (the limit, from /proc) gives no series for it.
 */
function queueFacts(
  listeners: readonly OwnedListener[],
  expected: ReadonlySet<OwnedListener>,
  unexpected: readonly UnexpectedListener[],
): Fact[] {
  const reported = new Set<string>();
  // Ports first: on a host with thousands of listeners most are not reported, and their keys
  // need not be built.
  const ports = new Set<number>();
  for (const l of expected) if (l.protocol === 'tcp') reported.add(`${l.address} ${l.port}`);
  for (const u of unexpected) if (u.protocol === 'tcp') reported.add(`${u.address} ${u.port}`);
  if (reported.size === 0) return [];
  for (const l of expected) if (l.protocol === 'tcp') ports.add(l.port);
  for (const u of unexpected) if (u.protocol === 'tcp') ports.add(u.port);
  const sums = new Map<
    string,
    { address: string; port: number; queue?: number; limit?: number; connections?: number }
  >();
  const add = (a: number | undefined, b: number | undefined): number | undefined =>
    b === undefined ? a : (a ?? 0) + b;
  for (const l of listeners) {
    if (l.protocol !== 'tcp' || !ports.has(l.port)) continue;
    const key = `${l.address} ${l.port}`;
    if (!reported.has(key)) continue;
    let s = sums.get(key);
    if (s === undefined) sums.set(key, (s = { address: l.address, port: l.port }));
    s.queue = add(s.queue, l.acceptQueue);
    s.limit = add(s.limit, l.acceptQueueLimit);
    s.connections = add(s.connections, l.connections);
  }
  const facts: Fact[] = [];
  const rows = [...sums.values()].sort((a, b) => a.port - b.port || cmp(a.address, b.address));
  for (const r of rows) {
    const labels = { protocol: 'tcp', address: r.address, port: String(r.port) };
    if (r.queue !== undefined) facts.push({ metric: M.acceptQueue, labels, value: r.queue });
    if (r.limit !== undefined) facts.push({ metric: M.acceptQueueLimit, labels, value: r.limit });
    if (r.connections !== undefined) facts.push({ metric: M.connections, labels, value: r.connections });
  }
  return facts;
}

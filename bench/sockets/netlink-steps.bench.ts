// Where a netlink socket scan's time goes: each step of the worker's scan called on its own,
// round after round, in a network namespace holding L listeners and C loopback connections
// (2C established sockets), beside the whole scan as the agent makes it (worker thread,
// message to the event loop):
//
//   npx ts-node --transpile-only bench/sockets/netlink-steps.bench.ts [--listeners=5000] [--connections=5000] [--rounds=20] [--gap=20]
//
// As root (it creates and deletes the namespace). Medians and minimums over the rounds, ms. Each
// step waits --gap ms first, as a scan comes after idleness: the same kernel dump takes half as
// long again when it follows another at once (--gap=0), its memory still in the caches.
import fs from 'node:fs';
import os from 'node:os';
import { socketsCollector } from '../../exporters/sockets';
import { evaluate, EvaluationMemo } from '../../exporters/sockets/evaluate';
import {
  COUNTED_STATES,
  loadSockDiag,
  runNetlinkScan,
  scanSockDiag,
  type NetlinkScanState,
} from '../../exporters/sockets/netlink';
import { ListenerReuse, packListeners, readPackedTable } from '../../exporters/sockets/packed';
import { InodeProcessCache, readListenQueueCounters } from '../../exporters/sockets/procfs';
import { SOCKETS_DEFAULTS, type SocketsSettings } from '../../exporters/sockets/settings';
import { stateMask } from '../../exporters/sockets/sockdiag';
import { median, numericFlag, quietLogger } from '../common';
import { startHolder } from './holder';
import { namespacedBench } from './namespace';

const LISTENERS = numericFlag('listeners', 5000);
const CONNECTIONS = numericFlag('connections', 5000);
const ROUNDS = numericFlag('rounds', 20);
/** Idle time before each step, ms: a scan comes after seconds of idleness, with cold caches. */
const GAP = numericFlag('gap', 20);
const TCP = 6;
const UDP = 17;
/** What a scan with tcp_states on asks for: every state the series count but TIME_WAIT. */
const ASKED = COUNTED_STATES & ~(1 << 6);

async function inner(): Promise<void> {
  console.log(
    `machine: ${os.cpus().length} cores, kernel ${os.release()}, Node ${process.version}, load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const holder = await startHolder(LISTENERS, CONNECTIONS);
  const addon = loadSockDiag();
  const settings: SocketsSettings = { ...SOCKETS_DEFAULTS, max_unexpected_series: 100, source: 'netlink' };
  const collector = socketsCollector.create(settings, quietLogger);
  const signal = new AbortController().signal;
  const state: NetlinkScanState = {
    owners: new InodeProcessCache(settings.procfs),
    reuse: new ListenerReuse(),
    memo: new EvaluationMemo(),
  };
  const scanOpts = {
    ipv6: true,
    tcpStates: true,
    sockstat: '/proc/net/sockstat',
    sockstat6: '/proc/net/sockstat6',
    procNet: '/proc/net',
  };
  try {
    // Warm-up: the worker starts, the owner caches fill.
    await collector.scan(signal);
    await runNetlinkScan(addon.scan, settings, state);
    const bytes = addon.dump(4, TCP, ASKED, 0);
    const t = scanSockDiag(addon.scan, scanOpts, state.reuse);
    const packed = readPackedTable(addon.scan(4, TCP, ASKED));
    await state.owners.assign(t.listeners, signal);
    const listenQueue = await readListenQueueCounters(settings.procfs);
    const steps: Array<[string, () => unknown]> = [
      ['TCP dump, raw bytes (kernel walk + copy)', () => addon.dump(4, TCP, ASKED, 0)],
      [
        'the same with states 0, 13, 14, 15 asked too (13: bound-only sockets)',
        () => addon.dump(4, TCP, 0xffff & ~(1 << 6), 0),
      ],
      ['TCP dump of a state no socket is in (CLOSING): the walk alone', () => addon.dump(4, TCP, 1 << 11, 0)],
      ['TCP dump of listeners only', () => addon.dump(4, TCP, 1 << 10, 0)],
      ['TCP dump of established only', () => addon.dump(4, TCP, 1 << 1, 0)],
      ['C parse of the TCP dump (parse())', () => addon.parse(bytes, TCP, 4)],
      ['TCP scan() = dump + C parse', () => addon.scan(4, TCP, ASKED)],
      ['UDP scan(), IPv4', () => addon.scan(4, UDP, stateMask([7]))],
      ['scanSockDiag(): every dump and the listener objects', () => scanSockDiag(addon.scan, scanOpts, state.reuse)],
      ['listener objects from the packed table (kept)', () => state.reuse.listeners([packed])],
      ['owners, warm cache', () => state.owners.assign(t.listeners, signal)],
      ['/proc/net/netstat', () => readListenQueueCounters(settings.procfs)],
      [
        'sockstat + sockstat6 reads',
        () => [fs.readFileSync('/proc/net/sockstat'), fs.readFileSync('/proc/net/sockstat6')],
      ],
      [
        'evaluation (kept memo)',
        () => evaluate({ listeners: t.listeners, tcpStates: t.tcpStates, listenQueue }, settings, state.memo),
      ],
      ['packing the listener list', () => packListeners(t.listeners)],
      [
        "runNetlinkScan() on this thread: the worker's whole job (listener records as the last scan's)",
        () => runNetlinkScan(addon.scan, settings, state),
      ],
      [
        'the same, nothing kept from the last scan (as when a listener changed)',
        () => {
          state.last = undefined;
          return runNetlinkScan(addon.scan, settings, state);
        },
      ],
      ['collector.scan(): worker + message + result on the loop', () => collector.scan(signal)],
    ];
    const times = new Map<string, number[]>(steps.map(([n]) => [n, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < steps.length; k++) {
        const [name, f] = steps[(r + k) % steps.length];
        if (GAP > 0) await new Promise((ok) => setTimeout(ok, GAP));
        const t0 = process.hrtime.bigint();
        await f();
        times.get(name)!.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
    }
    console.log(
      `\n${LISTENERS} listeners + ${CONNECTIONS} connections; TCP dump ${bytes.length} bytes; ${t.listeners.length} listeners; ` +
        `states ${JSON.stringify(t.tcpStates)}; rounds: ${ROUNDS}, rotating, ${GAP} ms idle before each step\n`,
    );
    console.log('| step | median ms | min ms |\n|---|---:|---:|');
    for (const [name] of steps) {
      const xs = times.get(name)!;
      console.log(`| ${name} | ${median(xs).toFixed(2)} | ${Math.min(...xs).toFixed(2)} |`);
    }
    console.log(
      `\nload average after: ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
  } finally {
    collector.close();
    holder.stop();
  }
}

namespacedBench(__filename, inner);

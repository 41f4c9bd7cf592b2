// The only list of prober names. Adding a prober: one folder, its tests, one entry here.
import type { CollectorDef, ProberDef } from './types';
import { tcpProber } from './tcp';
import { ftpProber } from './ftp';
import { mssqlProber } from './mssql';
import { socketsCollector } from './sockets';
import { icmpProber } from './icmp';

// Each prober has a settings type of its own, which the config loader has checked against that
// prober's schema before a module reaches it: the registry cannot name one type for them all.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const PROBERS: Readonly<Record<string, ProberDef<any>>> = {
  tcp: tcpProber,
  ftp: ftpProber,
  mssql: mssqlProber,
  icmp: icmpProber,
};

// The same for the collectors' settings.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const COLLECTORS: Readonly<Record<string, CollectorDef<any>>> = {
  sockets: socketsCollector,
};

export * from './types';
// The ping rung any module may put before its ladder: the agent, diagnose and the status page ask here.
export {
  DEFAULT_PING_PACKETS,
  PING_PHASE,
  pingFacts,
  pingText,
  pingsItself,
  unansweredPing,
  withPingRung,
  type PingRung,
} from './icmp/rung';

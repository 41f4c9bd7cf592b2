// The only list of prober names. Adding a prober: one folder, its tests, one entry here.
import type { CollectorDef, ProberDef } from './types';
import { tcpProber } from './tcp';
import { ftpProber } from './ftp';
import { mssqlProber } from './mssql';
import { socketsCollector } from './sockets';
import { icmpProber } from './icmp';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const PROBERS: Readonly<Record<string, ProberDef<any>>> = {
  tcp: tcpProber,
  ftp: ftpProber,
  mssql: mssqlProber,
  icmp: icmpProber,
};

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const COLLECTORS: Readonly<Record<string, CollectorDef<any>>> = {
  sockets: socketsCollector,
};

export * from './types';

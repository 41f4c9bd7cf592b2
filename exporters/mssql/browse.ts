// The browser rung: a named instance's TCP port from the SQL Server Browser (MC-SQLR), and the
// hidden-instance rule (see the README).
import type { Finding } from '../types';
import { ProbeError, type Ladder } from '../ladder';
import { buildUcastEx, buildUcastInst, findInstance, parseSvrResp, queryBrowser } from './browser';

/** Resolves the instance's port through the Browser; see the README for the hidden-instance rule. */
export async function browse(
  l: Ladder,
  address: string,
  browserPort: number,
  instance: string,
  fallbackPort?: number,
): Promise<number> {
  const wait = (): number => Math.max(50, Math.min(1500, l.remainingMs() / 3));
  const hidden = (why: string, browserAnswered: boolean): number => {
    l.fact('probe_mssql_instance_hidden', 1, { sql_instance: instance });
    l.details.browser = why;
    l.finding({
      code: 'mssql_hidden_instance',
      // A Browser that answers without the instance: hidden on purpose. No answer at all: hidden,
      // or the Browser is stopped or filtered, which other clients would notice.
      severity: browserAnswered ? 'info' : 'warning',
      message: `${why}; probed the port in the target address, ${fallbackPort}`,
      advice: browserAnswered
        ? 'Clients that connect by instance name cannot find a hidden instance: they need the port (host,port in connection strings).'
        : 'If the instance is not hidden on purpose, check that the SQL Server Browser service runs and that UDP 1434 is open.',
    });
    l.debug(`browser: ${why}; using the configured port ${fallbackPort}`);
    return fallbackPort as number;
  };
  const seen: { refused?: boolean } = {};
  const direct = await queryBrowser(address, browserPort, buildUcastInst(instance), l.signal, wait(), seen);
  if (direct) {
    const r = parseSvrResp(direct);
    if (!r.ok) throw new ProbeError('protocol_error', `the Browser's answer cannot be read: ${r.error}`);
    const found = findInstance(r.instances, instance);
    if (found?.tcpPort !== undefined) {
      l.fact('probe_mssql_browser_port', found.tcpPort, { sql_instance: instance });
      l.fact('probe_mssql_instance_hidden', 0, { sql_instance: instance });
      let browser = `instance ${found.instanceName} on TCP port ${found.tcpPort} (Browser version ${found.version})`;
      if (fallbackPort !== undefined && fallbackPort !== found.tcpPort) {
        browser += `; the target address says port ${fallbackPort}, the Browser's port is used`;
      }
      l.details.browser = browser;
      l.finding(browserPortFinding(l.details.browser as string));
      return found.tcpPort;
    }
    if (found) {
      throw new ProbeError(
        'instance_not_found',
        `the Browser knows instance ${instance} but it offers no TCP port`,
        'Enable TCP/IP for this instance in SQL Server Configuration Manager and restart it.',
      );
    }
  }
  const listing = await queryBrowser(address, browserPort, buildUcastEx(), l.signal, wait(), seen);
  if (listing) {
    const r = parseSvrResp(listing);
    const names = r.ok ? r.instances.map((i) => i.instanceName) : [];
    const found = r.ok ? findInstance(r.instances, instance) : undefined;
    if (found?.tcpPort !== undefined) {
      l.fact('probe_mssql_browser_port', found.tcpPort, { sql_instance: instance });
      l.fact('probe_mssql_instance_hidden', 0, { sql_instance: instance });
      l.details.browser = `instance ${found.instanceName} on TCP port ${found.tcpPort} (from the Browser's list)`;
      l.finding(browserPortFinding(l.details.browser as string));
      return found.tcpPort;
    }
    if (fallbackPort !== undefined) return hidden(`the Browser does not list ${instance} (hidden instance)`, true);
    throw new ProbeError(
      'instance_not_found',
      `the Browser on UDP ${browserPort} does not know instance ${instance}${names.length ? ` (it lists ${names.join(', ').slice(0, 200)})` : ''}`,
      'Check the instance name; a hidden instance is not announced: put its port in the target address (host:port).',
    );
  }
  if (fallbackPort !== undefined)
    return hidden(`no answer from the Browser on UDP ${browserPort} (hidden instance or Browser stopped)`, false);
  throw new ProbeError(
    'browser_no_answer',
    seen.refused
      ? `UDP ${browserPort} is closed: ICMP port unreachable (the Browser is not running, or a firewall rejects)`
      : `no answer from the SQL Server Browser on UDP ${browserPort}`,
    "Is the SQL Server Browser service running, and does the firewall allow UDP 1434? Or put the instance's TCP port in the target address (host:port).",
  );
}

function browserPortFinding(what: string): Finding {
  return { code: 'mssql_browser_port', severity: 'info', message: `the Browser reported ${what}` };
}

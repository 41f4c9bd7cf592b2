// What to check next, by prober: each prober's own advice (its ProberDef's `advice`) before the
// advice for the rung, and a failure's own advice before both.
import { adviceFor } from '../../exporters/advice';
import type { ProbeFailure } from '../../exporters/types';

const failure = (phase: string, reason: ProbeFailure['reason'], advice?: string): ProbeFailure => ({
  phase,
  reason,
  message: 'm',
  ...(advice ? { advice } : {}),
});

describe('adviceFor', () => {
  it('a refused connection is explained in the terms of the service behind the port', () => {
    expect(adviceFor('mssql', failure('connect', 'refused'))).toMatch(
      /SQL Server service running.*1433.*2433.*Windows firewall/,
    );
    expect(adviceFor('ftp', failure('connect', 'refused'))).toMatch(/FTP server running.*21, or 990 for implicit TLS/);
    const generic = adviceFor('tcp', failure('connect', 'refused'));
    expect(generic).toMatch(/^Nothing accepts connections on this port: is the service running/);
    expect(adviceFor('icmp', failure('connect', 'refused'))).toBe(generic);
    expect(adviceFor('no-such-prober', failure('connect', 'refused'))).toBe(generic);
  });

  it('SQL Server adds its firewall to the generic advice for a dropped connect, and only there', () => {
    const generic = adviceFor('tcp', failure('connect', 'timeout')) as string;
    expect(generic).toMatch(/^No answer before the deadline/);
    expect(adviceFor('mssql', failure('connect', 'timeout'))).toBe(
      `${generic} For SQL Server also check that port 1433 (or the instance's port) is allowed through the Windows firewall.`,
    );
    expect(adviceFor('mssql', failure('login', 'timeout'))).toBe(generic);
    expect(adviceFor('ftp', failure('connect', 'timeout'))).toBe(generic);
  });

  it("not_tds is SQL Server advice; the other reasons keep the rung's advice", () => {
    expect(adviceFor('mssql', failure('prelogin', 'not_tds'))).toMatch(/^Something other than SQL Server answers/);
    expect(adviceFor('mssql', failure('tls', 'tls_error'))).toBe(adviceFor('tcp', failure('tls', 'tls_error')));
    expect(adviceFor('mssql', failure('tls', 'tls_error'))).toMatch(/^The TLS handshake failed/);
  });

  it("a failure's own advice wins over the prober's and the rung's", () => {
    expect(adviceFor('mssql', failure('connect', 'refused', 'port 2433 is the hidden instance'))).toBe(
      'port 2433 is the hidden instance',
    );
  });
});

// TLS handshakes against a hostile server on a real socket: the ClientHello of the FTP implicit
// rung, of the FTP explicit rung (after 220 and AUTH TLS 234) and of the TCP prober's tls module
// is answered with mutated real ServerHello flights (recorded from Node's TLS server, TLS 1.2 and
// 1.3) or random bytes. Every case must end with an honest reason: never an exception escaping,
// never internal_error, no socket or descriptor left open. FUZZ_RUNS sets the number of cases.
import { ftpProber } from '../../exporters/ftp';
import { tcpProber } from '../../exporters/tcp';
import { clientHello } from '../../exporters/silence';
import { selfSignedCert } from '../helpers/net';
import { recordServerFlights, startTlsFuzzPeer, tlsCase, type TlsTarget } from '../peers/fuzz-peers';
import { dishonest, probeWith, runSocketFuzz, type ProbeStart } from './harness';

// Cases in CI; FUZZ_RUNS (a million under fuzz:long) is shared with the FTP fuzzer 2:3.
const CASES = process.env.FUZZ_RUNS ? Math.ceil((Number(process.env.FUZZ_RUNS) * 2) / 5) : 4000;
const SLOTS = 16;
const DEADLINE_MS = 300;
const BASE_SEED = Number(process.env.FUZZ_SEED ?? 0x7157);

jest.setTimeout(Math.max(120000, CASES * 20));

const PROBE: Record<TlsTarget, ProbeStart> = {
  'ftp-implicit': probeWith(ftpProber, { tls: 'implicit', tls_config: { insecure_skip_verify: true } } as never),
  'ftp-explicit': probeWith(ftpProber, { tls: 'explicit', tls_config: { insecure_skip_verify: true } } as never),
  'tcp-tls': probeWith(tcpProber, { tls: true, tls_config: { insecure_skip_verify: true }, expect_banner: '.' }),
};

test(`${CASES} hostile TLS server flights through a real socket: an honest reason every time`, async () => {
  const cert = selfSignedCert(5);
  const flights = await recordServerFlights(cert.certFile, cert.keyFile, await clientHello());
  expect(flights.map((f) => f[0])).toEqual([0x16, 0x16]);
  await runSocketFuzz({
    name: 'tls-socket',
    cases: CASES,
    slots: SLOTS,
    deadlineMs: DEADLINE_MS,
    baseSeed: BASE_SEED,
    tally: 'outcomes',
    startPeer: startTlsFuzzPeer,
    setup(peer, seed) {
      const c = tlsCase(seed, flights);
      peer.current = c;
      return {
        probe: PROBE[c.target],
        judge: (r) => ({
          outcome: `${c.target}:${r.failure ? `${r.failure.phase}/${r.failure.reason}` : 'success'}`,
          fault: dishonest(r) ? `${c.target} ${r.failure.phase}/${r.failure.reason}: ${r.failure.message}` : undefined,
        }),
      };
    },
  });
});

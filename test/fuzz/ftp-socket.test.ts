// The FTP prober against a hostile FTP server on a real socket: every rung (greeting, USER/PASS,
// TYPE, EPSV/PASV/PORT, LIST/RETR, QUIT) answered with mutated or random reply streams
// (multi-line replies, huge lines, bad codes, NULs, partial lines, closes and resets mid-reply).
// Every case must end with an honest reason: never an exception escaping, never internal_error,
// no socket or descriptor left open. FUZZ_RUNS sets the number of cases (npm run fuzz:long).
import { ftpProber } from '../../exporters/ftp';
import { ftpCase, startFtpFuzzPeer } from '../peers/fuzz-peers';
import { dishonest, probeWith, runSocketFuzz } from './harness';

// Cases in CI; FUZZ_RUNS (a million under fuzz:long) is shared with the TLS fuzzer 3:2.
const CASES = process.env.FUZZ_RUNS ? Math.ceil((Number(process.env.FUZZ_RUNS) * 3) / 5) : 6000;
const SLOTS = 16;
// A backstop only: the peer closes idle connections, so a case rarely waits for it.
const DEADLINE_MS = 300;
const BASE_SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);

jest.setTimeout(Math.max(120000, CASES * 20));

test(`${CASES} hostile FTP reply streams through a real socket: an honest reason every time`, async () => {
  await runSocketFuzz({
    name: 'ftp-socket',
    cases: CASES,
    slots: SLOTS,
    deadlineMs: DEADLINE_MS,
    baseSeed: BASE_SEED,
    tally: 'reasons',
    startPeer: startFtpFuzzPeer,
    setup(peer, seed) {
      const c = ftpCase(seed, peer.dataPort);
      peer.current = c;
      return {
        probe: probeWith(ftpProber, c.settings as never),
        judge: (r) => ({
          outcome: r.failure?.reason ?? 'success',
          fault: dishonest(r) ? `${r.failure.phase}/${r.failure.reason}: ${r.failure.message}` : undefined,
        }),
      };
    },
  });
});

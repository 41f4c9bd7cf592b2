// The FTP prober against a scripted peer that misbehaves in one way at a time. Each probe
// must end with the reason of the rung that broke, hold no more than its caps, and leave no
// file descriptor behind. The peer's well-behaved script is first checked with curl.
import { execFile } from 'node:child_process';
import { LISTING, startHostile, type HostileBehaviour, type HostilePeer } from '../peers/ftp/hostile';
import { ftpProber } from '../../exporters/ftp';
import { DeadlineError } from '../../exporters/ladder';
import { fact, probeFtp, type ProbeArgs } from './probe';
import { openFdCount } from '../helpers/net';

function run(cmd: string, args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8' }, (err, stdout) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout });
    });
  });
}

/** Waits (bounded) for closed sockets to be released, then returns the count. */
async function settledFds(target: number): Promise<number> {
  for (let i = 0; i < 50 && openFdCount() > target; i++) await new Promise((r) => setTimeout(r, 20));
  return openFdCount();
}

async function withPeer<T>(
  behaviour: HostileBehaviour,
  fn: (p: HostilePeer, address: string) => Promise<T>,
): Promise<T> {
  const peer = await startHostile(behaviour);
  try {
    return await fn(peer, `${peer.host}:${peer.port}`);
  } finally {
    await peer.stop();
  }
}

describe('the scripted peer, checked with curl', () => {
  test('well_behaved: curl lists the directory over EPSV', async () => {
    await withPeer('well_behaved', async (_p, address) => {
      const r = await run('curl', ['-sS', '--max-time', '10', `ftp://${address}/`]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('hello');
    });
  });

  test('well_behaved: curl lists the directory in active mode (PORT/EPRT)', async () => {
    await withPeer('well_behaved', async (p, address) => {
      const r = await run('curl', ['-sS', '--max-time', '10', '--ftp-port', '127.0.0.1', `ftp://${address}/`]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('hello');
      expect(p.activeConnects()).toBe(1);
    });
  });

  test('stalled_data: curl receives the bytes, then gives up at its own timeout', async () => {
    await withPeer('stalled_data', async (_p, address) => {
      const r = await run('curl', ['-sS', '--max-time', '2', `ftp://${address}/`]);
      expect(r.code).toBe(28); // CURLE_OPERATION_TIMEDOUT
      expect(r.stdout).toContain('hello');
    });
  });

  test('mute_user and mute_list: curl gets the greeting, then gives up at its own timeout', async () => {
    for (const behaviour of ['mute_user', 'mute_list'] as const) {
      await withPeer(behaviour, async (_p, address) => {
        const r = await run('curl', ['-sS', '--max-time', '2', `ftp://${address}/`]);
        expect({ behaviour, code: r.code }).toEqual({ behaviour, code: 28 }); // CURLE_OPERATION_TIMEDOUT
      });
    }
  });

  test('the prober agrees with curl on the well-behaved script, in every mode', async () => {
    await withPeer('well_behaved', async (_p, address) => {
      const r = await probeFtp(address, { data_channel: ['epsv', 'pasv', 'active'] });
      expect(r.success).toBe(true);
      for (const mode of ['epsv', 'pasv', 'active']) {
        expect(fact(r, 'probe_ftp_transfer_bytes', { mode })).toBe(LISTING.length);
      }
    });
  });
});

interface Case {
  behaviour: HostileBehaviour;
  args: ProbeArgs;
  phase: string;
  reason: string;
  timeout?: number;
}

const CASES: Case[] = [
  { behaviour: 'dribbled_banner', args: {}, phase: 'banner', reason: 'stalled', timeout: 1 },
  { behaviour: 'endless_multiline', args: {}, phase: 'banner', reason: 'protocol_error' },
  { behaviour: 'huge_banner', args: {}, phase: 'banner', reason: 'protocol_error' },
  { behaviour: 'too_many', args: {}, phase: 'banner', reason: 'too_many_connections' },
  { behaviour: 'not_ftp', args: {}, phase: 'banner', reason: 'banner_unexpected' },
  {
    behaviour: 'stalled_data',
    args: { data_channel: ['epsv'] },
    phase: 'data_epsv',
    reason: 'data_timeout',
    timeout: 1,
  },
  {
    behaviour: 'stalled_data',
    args: { data_channel: ['active'] },
    phase: 'data_active',
    reason: 'data_timeout',
    timeout: 1,
  },
  { behaviour: 'closed_data_port', args: { data_channel: ['epsv'] }, phase: 'data_epsv', reason: 'pasv_unreachable' },
  { behaviour: 'closed_data_port', args: { data_channel: ['pasv'] }, phase: 'data_pasv', reason: 'pasv_unreachable' },
  {
    behaviour: 'active_never_connects',
    args: { data_channel: ['active'] },
    phase: 'data_active',
    reason: 'active_refused',
    timeout: 1,
  },
  // Silence after the greeting is a hung server (stalled), not a dropped packet (timeout).
  { behaviour: 'mute_passive', args: { data_channel: ['pasv'] }, phase: 'data_pasv', reason: 'stalled', timeout: 1 },
  { behaviour: 'mute_passive', args: { data_channel: ['epsv'] }, phase: 'data_epsv', reason: 'stalled', timeout: 1 },
  { behaviour: 'mute_user', args: {}, phase: 'login', reason: 'stalled', timeout: 1 },
  { behaviour: 'mute_pass', args: {}, phase: 'login', reason: 'stalled', timeout: 1 },
  { behaviour: 'mute_type', args: { data_channel: ['epsv'] }, phase: 'data_epsv', reason: 'stalled', timeout: 1 },
  // In active mode silence cannot be told from a connect-back that never came (pyftpdlib answers
  // PORT, vsftpd answers LIST, only once it has connected): active_refused, whose message says so.
  {
    behaviour: 'mute_port',
    args: { data_channel: ['active'] },
    phase: 'data_active',
    reason: 'active_refused',
    timeout: 1,
  },
  {
    behaviour: 'mute_list',
    args: { data_channel: ['active'] },
    phase: 'data_active',
    reason: 'active_refused',
    timeout: 1,
  },
  { behaviour: 'mute_list', args: { data_channel: ['epsv'] }, phase: 'data_epsv', reason: 'stalled', timeout: 1 },
  { behaviour: 'active_425', args: { data_channel: ['active'] }, phase: 'data_active', reason: 'active_refused' },
];

describe.each(CASES)('$behaviour $args.data_channel', (c) => {
  test(`→ ${c.reason} at ${c.phase}, no descriptor left open`, async () => {
    const before = openFdCount();
    await withPeer(c.behaviour, async (peer, address) => {
      const r = await probeFtp(address, c.args, c.timeout ?? 5);
      expect(r.success).toBe(false);
      expect(r.failure).toMatchObject({ phase: c.phase, reason: c.reason });
      expect(r.failure?.advice ?? '').not.toContain('undefined');
      if (c.reason === 'stalled') {
        // A greeting cut short is the greeting rung's own stall; later rungs stall after a greeting.
        expect(r.failure?.advice).toMatch(
          c.phase === 'banner'
            ? /^The FTP service began its greeting and stopped/
            : /^The FTP server answered the greeting and earlier commands, then stopped answering/,
        );
        expect(r.failure?.advice).not.toMatch(/firewall/i);
      }
      if (c.behaviour === 'huge_banner') {
        // The probe hung up after its 2 KB line cap: the peer got nowhere near 100 MB out.
        expect(r.failure?.message).toContain('longer than 2048 bytes');
        expect(peer.bytesWritten()).toBeLessThan(32 * 1024 * 1024);
      }
      if (c.behaviour === 'endless_multiline') expect(r.failure?.message).toContain('more than 64 lines');
    });
    expect(await settledFds(before)).toBeLessThanOrEqual(before);
  });
});

test('one mode failing does not stop the others: EPSV refused port, active still tested', async () => {
  await withPeer('closed_data_port', async (_p, address) => {
    const r = await probeFtp(address, { data_channel: ['epsv', 'active'] });
    expect(r.failure).toMatchObject({ phase: 'data_epsv', reason: 'pasv_unreachable' });
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'epsv' })).toBe(0);
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'active' })).toBe(1);
  });
});

test('EPSV not implemented → protocol_error with advice to drop the mode; PASV still tested', async () => {
  await withPeer('no_epsv', async (_p, address) => {
    const r = await probeFtp(address, { data_channel: ['epsv', 'pasv'] });
    expect(r.failure).toMatchObject({ phase: 'data_epsv', reason: 'protocol_error' });
    expect(r.failure?.message).toBe('EPSV: 502 Command not implemented. (the server does not implement EPSV)');
    expect(r.failure?.advice).toContain('remove epsv from data_channel');
    expect(fact(r, 'probe_ftp_status_code', { phase: 'data_epsv' })).toBe(502);
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'pasv' })).toBe(1);
  });
});

test('agent shutdown during a stalled transfer → aborted, not a target failure reason', async () => {
  await withPeer('stalled_data', async (_p, address) => {
    const ac = new AbortController();
    const settings = { ...ftpProber.defaults, data_channel: ['epsv' as const] };
    const running = ftpProber.run({
      target: { name: 't', address, labels: {} },
      module: { name: 'm', prober: 'ftp', timeoutSeconds: 30, settings },
      signal: ac.signal,
      deadline: Date.now() + 30_000,
      logger: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined },
    });
    setTimeout(() => ac.abort(new DeadlineError(true)), 300);
    const r = await running;
    expect(r.failure).toMatchObject({ phase: 'data_epsv', reason: 'aborted' });
  });
});

test('a mode the server never answers uses up its own share only: the modes after it are still tested', async () => {
  await withPeer('mute_passive', async (_p, address) => {
    const r = await probeFtp(address, { data_channel: ['epsv', 'pasv', 'active'] }, 3);
    expect(r.failure).toMatchObject({ phase: 'data_epsv', reason: 'stalled' });
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'epsv' })).toBe(0);
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'pasv' })).toBe(0);
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'active' })).toBe(1);
    expect(fact(r, 'probe_ftp_transfer_bytes', { mode: 'active' })).toBe(LISTING.length);
  });
});

test('after an abandoned active transfer (150, no connect-back) the next mode runs on a fresh session', async () => {
  await withPeer('active_never_connects', async (_p, address) => {
    const r = await probeFtp(address, { data_channel: ['active', 'epsv'] }, 2);
    expect(r.failure).toMatchObject({ phase: 'data_active', reason: 'active_refused' });
    expect(fact(r, 'probe_ftp_data_channel_success', { mode: 'epsv' })).toBe(1);
    // Two sessions: the abandoned one was closed, the second logged in again.
    expect(r.log?.filter((l) => l.startsWith('> USER')).length).toBe(2);
  });
});

// Issue 22, item 6: a peer that echoes the password after padding (so a cut leaves only its
// first characters), splits it over two reply lines or changes one character of it. Every
// fragment of 4 or more characters is hidden, wherever the result or the log goes.
import { parseConfig } from '../../config/load';
import { runProbe } from '../../agent/runner';
import { scrubText } from '../../exporters/secret';
import { oneLine } from '../../exporters/ladder';
import { recordingLogger } from '../helpers/context';
import { ftpLoginPeer } from '../helpers/ftp-login-peer';

const SECRET = 'Xq7-Sentinel-pw-93kZ';

/** Every run of 4 characters of the secret found in the text (case aside). */
function fragments(text: string, secret = SECRET): string[] {
  const found: string[] = [];
  const lower = text.toLowerCase();
  for (let i = 0; i + 4 <= secret.length; i++) {
    const g = secret.slice(i, i + 4).toLowerCase();
    if (lower.includes(g)) found.push(g);
  }
  return found;
}

describe('scrubText', () => {
  const secrets = [SECRET];
  it('hides the whole secret and any 4-character fragment of it', () => {
    expect(scrubText(`530 "${SECRET}" is wrong`, secrets)).toBe('530 "<secret>" is wrong');
    expect(scrubText('pad pad Xq7-Se', secrets)).toBe('pad pad <secret>');
    expect(scrubText('a Xq7-Sent\nb inel-pw-93kZ', secrets)).toBe('a <secret>\nb <secret>');
    // One character changed: the parts on either side are still fragments.
    expect(scrubText('Xq7-SentXnel-pw-93kZ', secrets)).toBe('<secret>X<secret>');
    expect(scrubText('XQ7-SENTINEL-PW-93KZ', secrets)).toBe('<secret>');
    // Fewer than 4 characters cannot be told from chance.
    expect(scrubText('Xq7 and 93k', secrets)).toBe('Xq7 and 93k');
  });
  it('hides a fragment before a cut, so the cut cannot leave one', () => {
    const text = `${'p'.repeat(296)}${SECRET}`;
    const cut = oneLine(text, 300, secrets);
    expect(fragments(cut)).toEqual([]);
    expect(cut).toBe(`${'p'.repeat(296)}<se…`);
  });
});

/** A scripted FTP server (hostile on purpose) whose 530 reply carries the password as `shape` says. */
async function echoingPeer(shape: (pw: string) => string) {
  return ftpLoginPeer({ greeting: '220 echo peer ready\r\n', pass: shape, other: () => '502 not implemented\r\n' });
}

describe.each([
  ["echoed after padding, past the prober's reply cut", (pw: string) => `530 ${'.'.repeat(190)}${pw}\r\n`],
  [
    'split over two reply lines',
    (pw: string) => `530-first half ${pw.slice(0, 9)}\r\n530 second half ${pw.slice(9)}\r\n`,
  ],
  ['with one character changed', (pw: string) => `530 not "${pw.slice(0, 8)}#${pw.slice(9)}"\r\n`],
  ['malformed, past the malformed-line cut', (pw: string) => `5x0 ${'-'.repeat(70)}${pw}\r\n`],
] as const)('a peer echoing the password %s', (_label, shape) => {
  let peer: Awaited<ReturnType<typeof echoingPeer>>;
  beforeAll(async () => {
    peer = await echoingPeer(shape);
  });
  afterAll(() => peer.close());

  it('leaves no fragment of it in the result or the log', async () => {
    const cfg = parseConfig(
      [
        'modules:',
        '  creds: {prober: ftp, timeout: 2s, ftp: {username: probe, password: "${PP_SCRUB_PW}", data_channel: [pasv]}}',
        'targets:',
        `  - {name: echo, module: creds, address: "127.0.0.1:${peer.port}"}`,
      ].join('\n'),
      'scrub.yml',
      { PP_SCRUB_PW: SECRET },
    );
    const logger = recordingLogger();
    const result = await runProbe({ target: cfg.targets[0], module: cfg.modules.get('creds') as never, logger });
    expect(result.success).toBe(false);
    expect(result.failure?.phase).toBe('login');
    const seen = JSON.stringify(result) + logger.lines.join('\n');
    expect(fragments(seen)).toEqual([]);
    expect(seen).toContain('<secret>');
  });
});

// The HTTP layer loads express without qs (a stand-in takes its place until something uses it):
// in a fresh node, building the app leaves qs's own dependencies unloaded, and qs still answers
// in full once asked, from the real module.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

const SCRIPT = `
const path = require('path');
const root = process.argv[1];
const { createApp } = require(path.join(root, 'dist/agent/http.js'));
const loaded = (name) => Object.keys(require.cache).some((k) => k.includes('/node_modules/' + name + '/'));
createApp({ agent: {}, logger: {}, reload: () => ({ ok: true, errors: [] }) });
const before = { express: loaded('express'), sideChannel: loaded('side-channel') };
const qs = require(require.resolve('qs', { paths: [path.join(root, 'node_modules/express')] }));
const parsed = qs.parse('a[b]=1&c=2');
const text = qs.stringify({ x: [1, 2] });
process.stdout.write(JSON.stringify({ before, parsed, text, after: { sideChannel: loaded('side-channel') } }));
`;

describe('express without qs at start', () => {
  it('builds the app without loading qs, and qs works in full when first used', () => {
    const out = JSON.parse(execFileSync(process.execPath, ['-e', SCRIPT, ROOT], { encoding: 'utf8' })) as unknown;
    expect(out).toEqual({
      before: { express: true, sideChannel: false },
      parsed: { a: { b: '1' }, c: '2' },
      text: 'x%5B0%5D=1&x%5B1%5D=2',
      after: { sideChannel: true },
    });
  });
});

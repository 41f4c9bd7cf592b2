// A throw-away three-level PKI made with the openssl CLI: a root CA, an intermediate CA and a leaf
// for localhost / 127.0.0.1, each with its own lifetime (negative days: already expired), so tests
// can tell which certificate's expiry a metric reports.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface ChainCert {
  file: string;
  pem: string;
  /** notAfter, seconds since the epoch, as openssl reads it back. */
  notAfter: number;
}

export interface CertChain {
  dir: string;
  root: ChainCert;
  intermediate: ChainCert;
  leaf: ChainCert;
  leafKey: Buffer;
  /** leaf then intermediate: what a correctly configured server sends. */
  served: Buffer;
  /** The served chain in one file, and the key in another, for servers that read files. */
  servedFile: string;
  keyFile: string;
  cleanup(): void;
}

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function read(file: string): ChainCert {
  const end = openssl(['x509', '-in', file, '-noout', '-enddate'])
    .trim()
    .replace(/^notAfter=/, '');
  return { file, pem: readFileSync(file, 'utf8'), notAfter: Date.parse(end) / 1000 };
}

export function makeCertChain(days: { root: number; intermediate: number; leaf: number }): CertChain {
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-chain-'));
  const f = (name: string): string => path.join(dir, name);
  const caExt = f('ca.ext');
  writeFileSync(caExt, 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  const leafExt = f('leaf.ext');
  writeFileSync(leafExt, 'subjectAltName=DNS:localhost,IP:127.0.0.1\n');
  openssl([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-sha256',
    '-keyout',
    f('root.key'),
    '-out',
    f('root.pem'),
    '-days',
    String(days.root),
    '-subj',
    '/CN=portprobe test root',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('int.key'),
    '-out',
    f('int.csr'),
    '-subj',
    '/CN=portprobe test intermediate',
  ]);
  openssl([
    'x509',
    '-req',
    '-sha256',
    '-in',
    f('int.csr'),
    '-CA',
    f('root.pem'),
    '-CAkey',
    f('root.key'),
    '-CAcreateserial',
    '-days',
    String(days.intermediate),
    '-extfile',
    caExt,
    '-out',
    f('int.pem'),
  ]);
  openssl([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    f('leaf.key'),
    '-out',
    f('leaf.csr'),
    '-subj',
    '/CN=localhost',
  ]);
  openssl([
    'x509',
    '-req',
    '-sha256',
    '-in',
    f('leaf.csr'),
    '-CA',
    f('int.pem'),
    '-CAkey',
    f('int.key'),
    '-CAcreateserial',
    '-days',
    String(days.leaf),
    '-extfile',
    leafExt,
    '-out',
    f('leaf.pem'),
  ]);
  const root = read(f('root.pem'));
  const intermediate = read(f('int.pem'));
  const leaf = read(f('leaf.pem'));
  const served = Buffer.from(leaf.pem + intermediate.pem);
  writeFileSync(f('served.pem'), served);
  return {
    dir,
    root,
    intermediate,
    leaf,
    served,
    leafKey: readFileSync(f('leaf.key')),
    servedFile: f('served.pem'),
    keyFile: f('leaf.key'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

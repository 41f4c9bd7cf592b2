// What the blackbox certificate series (probe_ssl_earliest_cert_expiry,
// probe_ssl_last_chain_expiry_timestamp_seconds) cost a TLS rung: socketChainExpiries after each
// of N handshakes against a local Node TLS server sending leaf + intermediate, verified against
// the root given as `ca` (a fresh Buffer each time, as tlsOptions reads ca_file for every probe).
// Reported side by side in one run: the handshake's wall time (client and server share this
// process), socketChainExpiries, and its main part, Node's getPeerCertificate(true).
//
//   npx ts-node --transpile-only bench/tls-chain.bench.ts [N=300]
import tls from 'node:tls';
import { makeCertChain } from '../test/helpers/cert-chain';
import { socketChainExpiries, trustAnchors } from '../exporters/net/chain';

const N = Number(process.argv[2] ?? 300);
const us = (a: bigint, b: bigint): number => Number(b - a) / 1e3;
const median = (x: number[]): number => [...x].sort((p, q) => p - q)[x.length >> 1];

async function main(): Promise<void> {
  const c = makeCertChain({ root: 60, intermediate: 120, leaf: 200 });
  const srv = tls.createServer({ cert: c.served, key: c.leafKey }, (s) => s.end());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  const t0 = process.hrtime.bigint();
  trustAnchors(undefined);
  const bundledMs = us(t0, process.hrtime.bigint()) / 1000;
  const handshake: number[] = [];
  const chain: number[] = [];
  const detailed: number[] = [];
  for (let i = 0; i < N; i++) {
    const ca = Buffer.from(c.root.pem);
    const a = process.hrtime.bigint();
    const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const x = tls.connect({ port, host: '127.0.0.1', ca, servername: 'localhost' }, () => resolve(x));
      x.once('error', reject);
    });
    const b = process.hrtime.bigint();
    socketChainExpiries(s, ca);
    const d = process.hrtime.bigint();
    s.getPeerCertificate(true);
    const e = process.hrtime.bigint();
    handshake.push(us(a, b));
    chain.push(us(b, d));
    detailed.push(us(d, e));
    s.destroy();
  }
  srv.close();
  c.cleanup();
  const h = median(handshake);
  const ch = median(chain);
  process.stdout.write(
    `N=${N}: handshake median ${h.toFixed(0)} us; socketChainExpiries median ${ch.toFixed(0)} us ` +
      `(${((100 * ch) / h).toFixed(1)} % of the handshake), of which getPeerCertificate(true) ${median(detailed).toFixed(0)} us; ` +
      `Node's bundled roots indexed once per process in ${bundledMs.toFixed(1)} ms\n`,
  );
}

void main();

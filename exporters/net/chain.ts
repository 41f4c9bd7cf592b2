// Certificate-chain expiries in blackbox_exporter's terms, from what Node exposes of a handshake:
//   probe_ssl_earliest_cert_expiry                 earliest notAfter among the certificates the peer sent
//   probe_ssl_last_chain_expiry_timestamp_seconds  earliest notAfter along the verified chain (verified
//                                                  connections only: without verification there is none)
//
// Node gives one chain (getPeerCertificate(true)): the certificates the peer sent, linked leaf to
// issuer, followed by the issuers OpenSSL took from the trust store to reach a root. The store's
// part is a suffix; it is recognised by fingerprint against the trusted set the connection used
// (ca_file, else Node's bundled roots). A trusted root that the peer also sends is counted as the
// store's: it changes the earliest expiry only if the root expires before everything under it.
import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';

/** The part of Node's PeerCertificate this module reads. */
export interface ChainLink {
  fingerprint256: string;
  valid_to: string;
  issuerCertificate?: ChainLink;
}

export interface ChainExpiries {
  /** Seconds since the epoch; undefined when no certificate carries a readable date. */
  earliestSeconds?: number;
  /** Seconds since the epoch; undefined unless the chain was verified. */
  lastChainSeconds?: number;
}

/** Leaf first, each certificate once (a self-signed root links to itself). */
export function chainList(leaf: ChainLink | undefined): ChainLink[] {
  const out: ChainLink[] = [];
  const seen = new Set<string>();
  for (let c = leaf; c && c.fingerprint256 && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    out.push(c);
  }
  return out;
}

function earliest(certs: readonly ChainLink[]): number | undefined {
  let min: number | undefined;
  for (const c of certs) {
    const t = Date.parse(c.valid_to);
    if (Number.isFinite(t) && (min === undefined || t < min)) min = t;
  }
  return min === undefined ? undefined : min / 1000;
}

/**
 * Expiries of a chain as Node built it. `trusted` holds the SHA-256 fingerprints (Node's
 * colon-separated upper-case form) of the trust anchors; `verified` is the socket's `authorized`.
 * Pure.
 */
export function chainExpiries(leaf: ChainLink | undefined, verified: boolean, trusted: ReadonlySet<string>): ChainExpiries {
  const chain = chainList(leaf);
  // The store's suffix: the longest run of trusted certificates at the end, never the leaf.
  let sent = chain.length;
  while (sent > 1 && trusted.has(chain[sent - 1].fingerprint256)) sent--;
  return {
    earliestSeconds: earliest(chain.slice(0, sent)),
    lastChainSeconds: verified ? earliest(chain) : undefined,
  };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

function fingerprints(pems: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const pem of pems) {
    for (const m of pem.match(PEM_CERT) ?? []) {
      try {
        out.add(new X509Certificate(m).fingerprint256);
      } catch {
        // Not a certificate OpenSSL can read: it cannot have been a trust anchor either.
      }
    }
  }
  return out;
}

let bundled: Set<string> | undefined;
const byCa = new WeakMap<object, Set<string>>();

/** Fingerprints of the trust anchors of a connection made with `ca` (tls.connect's option). */
export function trustedFingerprints(ca: tls.ConnectionOptions['ca']): ReadonlySet<string> {
  if (ca === undefined) return (bundled ??= fingerprints(tls.rootCertificates));
  const list = (Array.isArray(ca) ? ca : [ca]).map((c) => c.toString());
  if (typeof ca === 'string') return fingerprints(list);
  const hit = byCa.get(ca);
  if (hit) return hit;
  const set = fingerprints(list);
  byCa.set(ca, set);
  return set;
}

/** The expiries of a finished handshake; `ca` is what the connection was given as trust anchors. */
export function socketChainExpiries(socket: tls.TLSSocket, ca: tls.ConnectionOptions['ca']): ChainExpiries {
  const leaf: Partial<ChainLink> | undefined = socket.getPeerCertificate(true);
  if (!leaf || !leaf.fingerprint256) return {};
  return chainExpiries(leaf as ChainLink, socket.authorized, trustedFingerprints(ca));
}

// Certificate-chain expiries in blackbox_exporter's terms, from what Node exposes of a handshake:
//   probe_ssl_earliest_cert_expiry                 earliest notAfter among the certificates the peer sent
//   probe_ssl_last_chain_expiry_timestamp_seconds  earliest notAfter along the verified chain (verified
//                                                  connections only: without verification there is none)
//
// Node gives one chain (getPeerCertificate(true)): the certificates the peer sent, linked leaf to
// issuer, followed by the issuers OpenSSL took from the trust store to reach a root. The store's
// part is a suffix; it is recognised by its DER bytes among the trust anchors the connection used
// (ca_file, else Node's bundled roots). A trusted root that the peer also sends is counted as the
// store's: it changes the earliest expiry only if the root expires before everything under it.
import type tls from 'node:tls';
import { nodeTls } from './lazy-tls';

/** The part of Node's PeerCertificate this module reads. */
export interface ChainLink {
  fingerprint256: string;
  valid_to: string;
  /** DER. */
  raw?: Buffer;
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
 * Expiries of a chain as Node built it. `trusted` says whether a certificate is one of the trust
 * anchors; `verified` is the socket's `authorized`. Pure.
 */
export function chainExpiries(
  leaf: ChainLink | undefined,
  verified: boolean,
  trusted: (c: ChainLink) => boolean,
): ChainExpiries {
  const chain = chainList(leaf);
  // The store's suffix: the longest run of trusted certificates at the end, never the leaf.
  let sent = chain.length;
  while (sent > 1 && trusted(chain[sent - 1])) sent--;
  return {
    earliestSeconds: earliest(chain.slice(0, sent)),
    lastChainSeconds: verified ? earliest(chain) : undefined,
  };
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----([^-]+)-----END CERTIFICATE-----/g;

/** The base64 DER of every certificate in PEM text: string work only, no parsing. */
function derBodies(text: string): Set<string> {
  const out = new Set<string>();
  for (const m of text.matchAll(PEM_CERT)) out.add(m[1].replace(/\s+/g, ''));
  return out;
}

let bundled: Set<string> | undefined;
/** By PEM text: ca_file is read afresh for every probe, its content rarely changes. */
const byText = new Map<string, Set<string>>();
const BY_TEXT_MAX = 64;

/** The trust anchors of a connection made with `ca` (tls.connect's option), as base64 DER. */
export function trustAnchors(ca: tls.ConnectionOptions['ca']): ReadonlySet<string> {
  if (ca === undefined) return (bundled ??= derBodies(nodeTls().rootCertificates.join('\n')));
  const text = (Array.isArray(ca) ? ca : [ca]).map((c) => c.toString()).join('\n');
  const hit = byText.get(text);
  if (hit) return hit;
  const set = derBodies(text);
  if (byText.size >= BY_TEXT_MAX) byText.delete(byText.keys().next().value as string);
  byText.set(text, set);
  return set;
}

/** The expiries of a finished handshake; `ca` is what the connection was given as trust anchors. */
export function socketChainExpiries(socket: tls.TLSSocket, ca: tls.ConnectionOptions['ca']): ChainExpiries {
  const leaf: Partial<ChainLink> | undefined = socket.getPeerCertificate(true);
  if (!leaf || !leaf.fingerprint256) return {};
  const anchors = trustAnchors(ca);
  return chainExpiries(
    leaf as ChainLink,
    socket.authorized,
    (c) => c.raw !== undefined && anchors.has(c.raw.toString('base64')),
  );
}

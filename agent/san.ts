// Client-certificate SAN check of the web config, apart from web-config.ts so that serving HTTP
// does not load the web config's parser and bcrypt worker when no web config is given.
import { timingSafeEqual } from 'node:crypto';

/** True when one of the certificate's SANs is in the allowed list (exact match). */
export function sanAllowed(subjectAltName: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  const sans = (subjectAltName ?? '').split(',').map((s) => s.trim().replace(/^(DNS|IP Address|email|URI):/, ''));
  return sans.some((s) =>
    allowed.some((a) => a.length === s.length && timingSafeEqual(Buffer.from(a), Buffer.from(s))),
  );
}

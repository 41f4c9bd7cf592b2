// Client-certificate SAN check of the web config, apart from web-config.ts so that serving HTTP
// does not load the web config's parser and bcrypt worker when no web config is given.
// node:crypto only when a list is checked: serving without client certificates never loads it.

/** True when one of the certificate's SANs is in the allowed list (exact match). */
export function sanAllowed(subjectAltName: string | undefined, allowed: readonly string[]): boolean {
  if (allowed.length === 0) return true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- on first use, see above
  const { timingSafeEqual } = require('node:crypto') as typeof import('node:crypto');
  const sans = (subjectAltName ?? '').split(',').map((s) => s.trim().replace(/^(DNS|IP Address|email|URI):/, ''));
  return sans.some((s) =>
    allowed.some((a) => a.length === s.length && timingSafeEqual(Buffer.from(a), Buffer.from(s))),
  );
}

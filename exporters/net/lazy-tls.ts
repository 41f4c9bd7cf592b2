// node:tls (and the node:crypto it loads) on first use: an agent whose modules use no TLS never
// loads them, and starts sooner (BENCHMARKS.md, "Start-up, bundled"). Types come from
// `import type tls from 'node:tls'`, which loads nothing.
let loaded: typeof import('node:tls') | undefined;

export function nodeTls(): typeof import('node:tls') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded on first use, see above
  return (loaded ??= require('node:tls') as typeof import('node:tls'));
}

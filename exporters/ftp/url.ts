// `portprobe diagnose ftp://[user@]host[:port][/path]` and ftps://: the target and settings such a
// URL stands for (the ftp ProberDef's `urls`). ftps:// is explicit TLS, on port 990 implicit.
import type { ProbeUrls } from '../types';
import { FTPS_IMPLICIT_PORT } from './settings';

export const FTP_URLS: ProbeUrls = {
  schemes: ['ftp', 'ftps'],
  usage: 'ftp://[user@]host[:port][/path], ftps://... (port 990: implicit TLS)',
  fromUrl(u) {
    const implicit = u.scheme === 'ftps' && u.port === FTPS_IMPLICIT_PORT;
    const settings: Record<string, unknown> = {
      tls: u.scheme === 'ftp' ? 'none' : implicit ? 'implicit' : 'explicit',
      ...(u.user ? { username: u.user, ...u.secret } : {}),
      ...(u.path && u.path !== '/' ? { path: u.path } : {}),
      ...(u.insecure ? { tls_config: { insecure_skip_verify: true } } : {}),
    };
    return { address: `${u.host}:${u.port}`, settings };
  },
};

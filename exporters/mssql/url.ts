// `portprobe diagnose mssql://[user@]host[:port][/instance]`: the target and settings such a URL
// stands for (the mssql ProberDef's `urls`).
import type { ProbeUrls } from '../types';

export const MSSQL_URLS: ProbeUrls = {
  schemes: ['mssql'],
  usage: 'mssql://[user@]host[:port][/instance]',
  fromUrl(u) {
    const instance = u.path.replace(/^\/+|\/+$/g, '');
    if (instance.includes('/')) throw new Error('the path is one instance name');
    const settings: Record<string, unknown> = {
      ...(instance ? { instance } : {}),
      ...(u.user ? { username: u.user, ...u.secret } : {}),
      ...(u.insecure ? { trust_server_certificate: true } : {}),
    };
    // A named instance without a port is found through the Browser.
    return { address: instance && !u.portGiven ? u.host : `${u.host}:${u.port}`, settings };
  },
};

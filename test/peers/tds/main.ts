// Manual use: npx ts-node --transpile-only test/peers/tds/main.ts --port 14330 \
//   --version 15.0.2000.5 --encryption required --user sa:secret --instance SQLEXPRESS --browser-port 14340
import { startTdsPeer, type PeerEncryption } from './server';
import { startBrowserPeer } from './browser';

function usage(): never {
  process.stderr.write(
    'usage: main.ts [--host 127.0.0.1] [--port N] [--version M.m.b.s] [--encryption off|required|not_supported|strict]\n' +
      '               [--user name:password]... [--instance NAME] [--browser-port N] [--hidden]\n',
  );
  process.exit(2);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  let host = '127.0.0.1';
  let port = 0;
  let version = { major: 16, minor: 0, build: 4135, subbuild: 4 };
  let encryption: PeerEncryption = 'off';
  const users: Record<string, string> = {};
  let instance: string | undefined;
  let browserPort: number | undefined;
  let hidden = false;
  for (let i = 0; i < args.length; i++) {
    const next = (): string => args[++i] ?? usage();
    switch (args[i]) {
      case '--host':
        host = next();
        break;
      case '--port':
        port = Number(next());
        break;
      case '--version': {
        const p = next().split('.').map(Number);
        if (p.length !== 4 || p.some((n) => !Number.isInteger(n))) usage();
        version = { major: p[0], minor: p[1], build: p[2], subbuild: p[3] };
        break;
      }
      case '--encryption': {
        const e = next();
        if (e !== 'off' && e !== 'required' && e !== 'not_supported' && e !== 'strict') usage();
        encryption = e;
        break;
      }
      case '--user': {
        const [u, ...rest] = next().split(':');
        users[u] = rest.join(':');
        break;
      }
      case '--instance':
        instance = next();
        break;
      case '--browser-port':
        browserPort = Number(next());
        break;
      case '--hidden':
        hidden = true;
        break;
      default:
        usage();
    }
  }
  const log = (line: string): void => void process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const tds = await startTdsPeer({ host, port, version, encryption, users, instanceName: instance, log });
  log(`TDS peer on ${host}:${tds.port} version ${Object.values(version).join('.')} encryption ${encryption}`);
  if (browserPort !== undefined) {
    const b = await startBrowserPeer({
      host,
      port: browserPort,
      instances: [
        {
          name: instance ?? 'MSSQLSERVER',
          tcpPort: tds.port,
          hidden,
          version: `${version.major}.${version.minor}.${version.build}.${version.subbuild}`,
        },
      ],
      log,
    });
    log(`Browser peer on udp ${host}:${b.port}`);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});

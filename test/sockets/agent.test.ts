// The collector as the agent sees it: the `sockets:` section through the config loader, and a
// real scan through the store's exposition, checked by promtool.
import { execFileSync } from 'node:child_process';
import { parseConfig } from '../../config/load';
import { FamilyRegistry } from '../../agent/exposition';
import { ResultStore } from '../../agent/store';
import { socketsCollector, type SocketsSettings } from '../../exporters/sockets';
import { silentLogger } from '../helpers/context';
import { SocketHolder } from './helpers';
import { assertExposition } from '../helpers/exposition-check';

const configError = (yaml: string): string => {
  try {
    parseConfig(`global: {interval: 30s}\n${yaml}`, 'host.yml');
  } catch (err) {
    return (err as Error).message;
  }
  return 'no error';
};

describe('the sockets: section', () => {
  test('defaults merged under the user settings; off when the section is absent', () => {
    const cfg = parseConfig(
      'sockets:\n  interval: 10s\n  expect: [{port: 22}]\n  allow: {ports: ["8000-8099"]}\n',
      'host.yml',
    );
    const c = cfg.collectors.find((x) => x.name === 'sockets');
    expect(c?.enabled).toBe(true);
    expect(c?.intervalMs).toBe(10_000);
    const s = c?.settings as SocketsSettings;
    expect(s.procfs).toBe('/proc');
    expect(s.allow).toEqual({ ports: ['8000-8099'], processes: [] });
    expect(s.max_unexpected_series).toBe(100);
    expect(
      parseConfig('global: {interval: 30s}\n', 'host.yml').collectors.find((x) => x.name === 'sockets')?.enabled,
    ).toBe(false);
  });

  test('errors name the file, line and field', () => {
    expect(configError('sockets:\n  expect: [{port: 22, address: nothere}]\n')).toBe(
      'host.yml:3: sockets.expect[0].address: "nothere" is not an IP address such as 0.0.0.0 or ::1',
    );
    expect(configError('sockets:\n  allow: {ports: ["9-1"]}\n')).toBe(
      'host.yml:3: sockets.allow.ports[0]: "9-1" starts after it ends',
    );
    expect(configError('sockets:\n  interval: 100ms\n')).toBe(
      'host.yml:3: sockets.interval: must be at least 1s, got 100ms',
    );
    expect(configError('sockets:\n  colour: red\n')).toMatch(/^host\.yml:3: sockets\.colour: unknown field/);
  });
});

test('a real scan rendered by the store passes promtool check metrics', async () => {
  const holder = await SocketHolder.start([{ protocol: 'tcp', address: '127.0.0.1' }]);
  try {
    const port = holder.sockets[0].port;
    const store = new ResultStore(new FamilyRegistry(socketsCollector.metrics));
    const c = socketsCollector.create(
      { ...socketsCollector.defaults, expect: [{ port, protocol: 'tcp', address: '127.0.0.1', process: 'node' }] },
      silentLogger,
    );
    store.recordCollector('sockets', await c.scan(new AbortController().signal));
    const text = store.exposition().toString('utf8');
    assertExposition(text);
    expect(text).toContain(`portprobe_listener_up{protocol="tcp",port="${port}",address="127.0.0.1"} 1\n`);
    expect(text).toContain('# TYPE portprobe_tcp_connection_states gauge\n');
    expect(text).toMatch(/^portprobe_socket_scan_success 1$/m);
    // The default source on Linux with the addon built: netlink, with the per-listener series.
    expect(text).toContain('portprobe_socket_scan_source_info{source="netlink"} 1\n');
    expect(text).toContain(`portprobe_listener_accept_queue{protocol="tcp",address="127.0.0.1",port="${port}"} 0\n`);
    expect(text).toContain(
      `portprobe_listener_accept_queue_limit{protocol="tcp",address="127.0.0.1",port="${port}"} 511\n`,
    );
    expect(text).toContain(`portprobe_listener_connections{protocol="tcp",address="127.0.0.1",port="${port}"} 0\n`);
    c.close();
    // promtool reads the exposition on stdin; no output and exit 0 means no lint findings.
    const lint = execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(lint).toBe('');
  } finally {
    await holder.stop();
  }
});

// The README's command examples are run, so the README cannot drift from the program. A code
// block preceded by an HTML comment is part of this test:
//   <!-- readme-test: file NAME -->       the block is written to NAME in the scratch directory
//   <!-- readme-test: run [netns=SETUP] --> the block is "$ command" (continued with "\" lines)
//                                          followed by its output; the command runs in bash in the
//                                          scratch directory, `portprobe` being the built CLI, and
//                                          its stdout and stderr must equal the output shown, with
//                                          only durations ("3.1 ms") normalised. With netns=SETUP
//                                          it runs in a network namespace prepared as SETUP says.
// Every block that shows "$ command" must be marked, so a new example cannot escape the test.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { MAIN } from './helpers/agent-process';
import { createNetns, type Netns } from './helpers/netns';
import { markedBlocks } from './helpers/readme';

jest.setTimeout(90_000);

const ROOT = path.join(__dirname, '..');
const README = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

/** Splits a run block into its command (continuation lines joined) and the output shown. */
function commandAndOutput(body: string): { command: string; output: string } {
  const lines = body.split('\n');
  if (!lines[0].startsWith('$ ')) throw new Error(`a run block must start with "$ ": ${lines[0]}`);
  let command = lines[0].slice(2);
  let i = 1;
  while (command.endsWith('\\') && i < lines.length) command = `${command.slice(0, -1)}${lines[i++].trim()}`;
  return { command, output: lines.slice(i).join('\n') };
}

/** Durations vary from run to run; the right-aligned column they sit in does too. */
const normalise = (s: string): string => s.replace(/ +\d+(\.\d+)? ms\b/g, ' <t> ms').replace(/\s+$/, '');

/** bash, with `portprobe` the built CLI. */
function script(command: string): string {
  return [`portprobe() { ${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} "$@"; }`, command].join('\n');
}

interface Setup {
  ns: Netns;
  cleanup(): Promise<void>;
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, ms = 15_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Namespaces the run blocks need, each with what the README's example assumes is there. */
const SETUPS: Record<string, () => Promise<Setup>> = {
  // `npm start`: the agent on config/default.yml, port 9821, in a namespace of its own so the
  // port is free whatever else runs on this machine.
  'default-agent': async () => {
    const ns = createNetns('readme-agent');
    const agent = spawn('ip', ['netns', 'exec', ns.name, process.execPath, MAIN, '--config.file=config/default.yml'], {
      cwd: ROOT,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    agent.stderr?.on('data', (b: Buffer) => (log += b.toString()));
    try {
      await waitFor('the agent listening', () => /listening/.test(log));
    } catch (e) {
      await stop(agent);
      ns.remove();
      throw new Error(`${(e as Error).message}\n${log}`, { cause: e });
    }
    return {
      ns,
      cleanup: async () => {
        await stop(agent);
        ns.remove();
      },
    };
  },
  // files.example.org (192.0.2.21 in the namespace's /etc/hosts) runs vsftpd with anonymous
  // login; its passive data port 39109 is rejected by the firewall.
  'ftp-passive-refused': async () => {
    const ns = createNetns('readme-ftp');
    const etc = path.join('/etc/netns', ns.name);
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-readme-ftp-'));
    let vsftpd: ChildProcess | undefined;
    const cleanup = async (): Promise<void> => {
      if (vsftpd) await stop(vsftpd);
      ns.remove();
      rmSync(etc, { recursive: true, force: true });
      rmSync(dir, { recursive: true, force: true });
    };
    try {
      execFileSync('ip', ['-n', ns.name, 'addr', 'add', '192.0.2.21/32', 'dev', 'lo']);
      mkdirSync(etc, { recursive: true });
      writeFileSync(path.join(etc, 'hosts'), '127.0.0.1 localhost\n192.0.2.21 files.example.org\n');
      execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-f', '-'], {
        input:
          'table inet pp_readme {\n  chain in {\n    type filter hook input priority 0; policy accept;\n    tcp dport 39109 reject with tcp reset\n  }\n}\n',
      });
      chmodSync(dir, 0o755);
      mkdirSync(path.join(dir, 'anon'), { mode: 0o755 });
      mkdirSync('/var/run/vsftpd/empty', { recursive: true });
      const conf = path.join(dir, 'vsftpd.conf');
      writeFileSync(
        conf,
        [
          'listen=YES',
          'listen_ipv6=NO',
          'listen_address=192.0.2.21',
          'listen_port=21',
          'background=NO',
          'anonymous_enable=YES',
          `anon_root=${dir}/anon`,
          'no_anon_password=YES',
          'local_enable=NO',
          'write_enable=NO',
          'seccomp_sandbox=NO',
          'isolate=NO',
          'isolate_network=NO',
          'secure_chroot_dir=/var/run/vsftpd/empty',
          'pasv_enable=YES',
          'pasv_min_port=39109',
          'pasv_max_port=39109',
          'connect_from_port_20=NO',
          'xferlog_enable=NO',
          'syslog_enable=NO',
          `vsftpd_log_file=${dir}/vsftpd.log`,
          'ssl_enable=NO',
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      vsftpd = spawn('ip', ['netns', 'exec', ns.name, '/usr/sbin/vsftpd', conf], { stdio: 'ignore' });
      await waitFor('vsftpd greeting on files.example.org:21', async () => {
        const r = await ns.exec(
          [
            process.execPath,
            '-e',
            "const s=require('net').connect(21,'192.0.2.21');s.on('data',d=>{process.stdout.write(String(d));s.destroy()});s.on('error',()=>{})",
          ],
          3000,
        );
        return r.stdout.startsWith('220');
      });
      return { ns, cleanup };
    } catch (e) {
      await cleanup();
      throw e;
    }
  },
};

const blocks = markedBlocks(README);
const runs = blocks.filter((b) => b.kind === 'run');

test('the README has run blocks, and every "$ command" block is one', () => {
  expect(runs.length).toBeGreaterThanOrEqual(3);
  const lines = README.split('\n');
  const unmarked: string[] = [];
  let inBlock = false;
  lines.forEach((l, i) => {
    if (!l.startsWith('```')) return;
    inBlock = !inBlock;
    if (inBlock && (lines[i + 1] ?? '').startsWith('$ ') && !runs.some((b) => b.line === i + 1))
      unmarked.push(`${i + 1}: ${lines[i + 1]}`);
  });
  expect(unmarked).toEqual([]);
  for (const b of runs) if (b.args.netns !== undefined) expect(Object.keys(SETUPS)).toContain(b.args.netns);
});

describe.each(runs.map((b) => [`README.md:${b.line}: ${commandAndOutput(b.body).command}`, b] as const))(
  '%s',
  (_title, block) => {
    test('prints what the README shows', async () => {
      const { command, output } = commandAndOutput(block.body);
      const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-readme-'));
      const setup = block.args.netns ? await SETUPS[block.args.netns]() : undefined;
      try {
        for (const f of blocks.filter((b) => b.kind === 'file'))
          writeFileSync(path.join(dir, f.name as string), `${f.body}\n`);
        const argv = ['bash', '-c', `cd ${JSON.stringify(dir)}\n${script(command)} 2>&1`];
        const run = async (): Promise<string> => {
          if (setup) return (await setup.ns.exec(argv, 30_000)).stdout;
          try {
            return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 30_000 });
          } catch (e) {
            return String((e as { stdout?: string }).stdout ?? '');
          }
        };
        let actual = await run();
        // An agent serves its first results moments after it starts: give it those moments.
        if (block.args.netns === 'default-agent') {
          await waitFor(
            'the output shown',
            async () => normalise((actual = await run())) === normalise(output),
            10_000,
          ).catch(() => undefined);
        }
        expect(normalise(actual)).toBe(normalise(output));
      } finally {
        await setup?.cleanup();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);

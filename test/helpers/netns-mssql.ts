// nftables rules for the SQL Server firewall tests, on top of test/helpers/netns.ts: one table
// whose input chain sees both directions of loopback traffic inside the namespace. Input, not
// output: a packet dropped in the sender's own output hook fails its send() with EPERM, which no
// firewall on a real path does; dropped on arrival, it leaves the sender as it would on a network.
import { execFileSync } from 'node:child_process';
import type { Netns } from './netns';

const TABLE = 'pp_mssql';

/** Replaces the rules of the test's table with `rules` (nft syntax, one per line). */
export function setRules(ns: Netns, rules: string[]): void {
  clearRules(ns);
  const text = [
    `table inet ${TABLE} {`,
    '  chain in {',
    '    type filter hook input priority 0; policy accept;',
    ...rules.map((r) => `    ${r}`),
    '  }',
    '}',
    '',
  ].join('\n');
  execFileSync('ip', ['netns', 'exec', ns.name, 'nft', '-f', '-'], { input: text, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function clearRules(ns: Netns): void {
  try {
    execFileSync('ip', ['netns', 'exec', ns.name, 'nft', 'delete', 'table', 'inet', TABLE], { stdio: 'pipe' });
  } catch {
    // no table yet
  }
}

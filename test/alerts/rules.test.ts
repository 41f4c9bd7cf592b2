// The alert rules (helm/portprobe/files/portprobe-rules.yml): promtool accepts them, each alert
// carries what an on-call person needs, each has a promtool unit test firing and one not firing,
// and those tests fail when the rule stops working.
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';

const REPO = path.resolve(__dirname, '..', '..');
const RULES = path.join(REPO, 'helm', 'portprobe', 'files', 'portprobe-rules.yml');
const RUNBOOK = path.join(REPO, 'helm', 'portprobe', 'RUNBOOK.md');
/** Every promtool unit-test file of this folder (portprobe-rules.test.yml, mssql-health.test.yml ...). */
const UNIT_TEST_FILES = readdirSync(__dirname)
  .filter((f) => f.endsWith('.test.yml'))
  .sort();

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
interface RuleFile {
  groups: { name: string; rules: Rule[] }[];
}
interface UnitTests {
  rule_files: string[];
  tests: { name: string; alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

function promtool(args: string[], cwd: string): { status: number; out: string } {
  const r = spawnSync('promtool', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`cannot run promtool (install the Debian package prometheus): ${r.error.message}`);
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** GitHub's anchor for a Markdown heading. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

const ruleFile = parseYaml(readFileSync(RULES, 'utf8')) as RuleFile;
const alerts = ruleFile.groups.flatMap((g) => g.rules);
const unitTests: UnitTests = {
  rule_files: [],
  tests: UNIT_TEST_FILES.flatMap((f) => (parseYaml(readFileSync(path.join(__dirname, f), 'utf8')) as UnitTests).tests),
};

test('promtool check rules accepts the file', () => {
  const r = promtool(['check', 'rules', RULES], REPO);
  expect(r.out).toContain(`SUCCESS: ${alerts.length} rules found`);
  expect(r.status).toBe(0);
});

test("the issue's alerts are all there, with unique names", () => {
  expect(alerts.map((a) => a.alert).sort()).toEqual(
    [
      'PortprobeConfigReloadFailed',
      'PortprobeExpectedListenerMissing',
      'PortprobeFtpDataChannelBroken',
      'PortprobeFtpPasvAddressMismatch',
      'PortprobeLastResortErrors',
      'PortprobeListenerNotAccepting',
      'PortprobeMssqlLoginFailing',
      'PortprobeMssqlDatabaseNotOnline',
      'PortprobeMssqlBackupTooOld',
      'PortprobeMssqlAvailabilityGroupUnhealthy',
      'PortprobeMssqlBlockedSessions',
      'PortprobeMssqlDeadlocksRising',
      'PortprobeMssqlPatchAdvisory',
      'PortprobeProbesSkipped',
      'PortprobeTargetDown',
      'PortprobeTlsCertificateExpiringSoon',
      'PortprobeUnexpectedDynamicListener',
    ].sort(),
  );
});

describe.each(alerts.map((a) => [a.alert, a] as const))('%s', (_name, rule) => {
  test('has a severity, summary, description, a for duration and a runbook anchor that exists', () => {
    expect(['critical', 'warning', 'info']).toContain(rule.labels?.severity);
    expect(rule.for).toMatch(/^[0-9]+[smh]$/);
    expect(rule.annotations?.summary?.length).toBeGreaterThan(10);
    expect(rule.annotations?.description?.length).toBeGreaterThan(rule.annotations?.summary?.length ?? 0);
    const url = rule.annotations?.runbook_url ?? '';
    expect(url).toMatch(/^https:\/\/github\.com\/portprobe\/portprobe\/blob\/main\/helm\/portprobe\/RUNBOOK\.md#/);
    const anchors = readFileSync(RUNBOOK, 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('## '))
      .map((l) => slug(l.slice(3)));
    expect(anchors).toContain(url.split('#')[1]);
    expect(url.split('#')[1]).toBe(slug(rule.alert));
  });

  test('per-target expressions aggregate by target so replicas never double-count', () => {
    // Target series: the probe's own (probe_*) and the SQL Server health pack's (mssql_*).
    if (!/\b(probe|mssql)_/.test(rule.expr)) {
      // Socket and agent alerts are per agent: one DaemonSet pod per node, one series per agent.
      expect(rule.expr).toMatch(/\bportprobe_/);
      return;
    }
    const metrics = rule.expr.match(/\b(probe|mssql)_[a-z_]+/g) ?? [];
    const aggregated =
      rule.expr.match(/\b(max|min) by \(target, module[^)]*\) \(\s*(?:(?:rate|increase)\()?(probe|mssql)_[a-z_]+/g) ??
      [];
    expect(aggregated.length).toBe(metrics.length);
  });

  test('has a promtool unit test that fires and one that does not', () => {
    const cases = unitTests.tests.flatMap((t) => t.alert_rule_test ?? []).filter((c) => c.alertname === rule.alert);
    expect(cases.some((c) => c.exp_alerts.length > 0)).toBe(true);
    expect(cases.some((c) => c.exp_alerts.length === 0)).toBe(true);
  });
});

test.each(UNIT_TEST_FILES)('promtool test rules %s passes', (file) => {
  const r = promtool(['test', 'rules', file], __dirname);
  expect(r.out).toContain('SUCCESS');
  expect(r.status).toBe(0);
});

test('the unit tests catch each alert being broken', () => {
  // Replace one alert's expression with one that never fires: promtool must then fail.
  const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-rules-'));
  try {
    const testDir = path.join(dir, 'test', 'alerts');
    const rulesDir = path.join(dir, 'helm', 'portprobe', 'files');
    mkdirSync(testDir, { recursive: true });
    mkdirSync(rulesDir, { recursive: true });
    for (const f of UNIT_TEST_FILES) copyFileSync(path.join(__dirname, f), path.join(testDir, f));
    const survivors: string[] = [];
    for (const victim of alerts) {
      const broken: RuleFile = {
        groups: ruleFile.groups.map((g) => ({
          ...g,
          rules: g.rules.map((r) => (r.alert === victim.alert ? { ...r, expr: 'vector(0) == 1' } : r)),
        })),
      };
      writeFileSync(path.join(rulesDir, 'portprobe-rules.yml'), stringify(broken));
      const r = promtool(['test', 'rules', ...UNIT_TEST_FILES], testDir);
      if (r.status === 0) survivors.push(victim.alert);
      else expect(r.out).toContain(victim.alert);
    }
    expect(survivors).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);

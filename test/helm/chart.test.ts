// The Helm chart, rendered like `helm template` by the Go harness for the default values and for
// every ci/*-values.yaml, and checked object by object: Kubernetes schemas (kubernetes-models),
// the Prometheus Operator fields (our schema of the CRDs' fields we use), the agent's own config
// loader, and the wiring between objects (selectors, ports, mounts, security defaults).
import Ajv, { type ValidateFunction } from 'ajv';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { ConfigMap, Service, ServiceAccount } from 'kubernetes-models/v1';
import { DaemonSet, Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { parseConfig } from '../../config/load';
import { CHART, goChecks, goTest, readText, Renderer, type Rendered } from './harness';
import { syncedValuesSchema } from '../../scripts/sync-values-schema';

type Obj = Rendered['objects'][number];
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered manifests are parsed YAML of every kind
type Any = any;

const CI_DIR = path.join(CHART, 'ci');
const CI_FILES = readdirSync(CI_DIR)
  .filter((f) => f.endsWith('-values.yaml'))
  .sort();

const K8S_MODELS: Record<string, new (data: Any) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'apps/v1/DaemonSet': DaemonSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

const ajv = new Ajv({ allErrors: true, strict: false });
const valuesSchema = ajv.compile(JSON.parse(readText(CHART, 'values.schema.json')));
const crdSchema = JSON.parse(readText(__dirname, 'monitoring-crds.schema.json'));
ajv.addSchema(crdSchema, 'crds');
const CRD_VALIDATORS: Record<string, ValidateFunction> = {
  'monitoring.coreos.com/v1/ServiceMonitor': ajv.getSchema('crds#/definitions/ServiceMonitor') as ValidateFunction,
  'monitoring.coreos.com/v1/PrometheusRule': ajv.getSchema('crds#/definitions/PrometheusRule') as ValidateFunction,
};

const grafanaProvisioning = new Ajv({ allErrors: true, strict: true }).compile(
  JSON.parse(readText(__dirname, 'grafana-alert-provisioning.schema.json')),
);

function ajvErrors(v: ValidateFunction): string {
  return (v.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`).join('; ');
}

function validateObject(o: Obj): void {
  const key = `${o.apiVersion}/${o.kind}`;
  const { source, ...data } = o;
  const Model = K8S_MODELS[key];
  if (Model) {
    try {
      new Model(data).validate();
    } catch (e) {
      throw new Error(`${source}: ${key} ${o.metadata.name}: ${(e as Error).message}`, { cause: e });
    }
    return;
  }
  const crd = CRD_VALIDATORS[key];
  if (!crd) throw new Error(`${source}: no validator for ${key}`);
  if (!crd(data)) throw new Error(`${source}: ${key} ${o.metadata.name}: ${ajvErrors(crd)}`);
}

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);
const workloads = (r: Rendered): Obj[] => r.objects.filter((o) => WORKLOADS.has(o.kind));
const ofKind = (r: Rendered, kind: string): Obj[] => r.objects.filter((o) => o.kind === kind);
const one = (r: Rendered, kind: string, name?: string): Obj => {
  const found = ofKind(r, kind).filter((o) => name === undefined || o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ''}, found ${found.length}`);
  return found[0];
};
const container = (w: Obj): Any => w.spec.template.spec.containers[0];
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/**
 * Loads every rendered portprobe.yml with the agent's own loader, as the pod would see it:
 * each *_file must lie in a mounted Secret (materialised in a temp root) and each ${VAR} must
 * be set by the container's env.
 */
function loadRenderedConfigs(r: Rendered): number {
  let loaded = 0;
  for (const w of workloads(r)) {
    const pod = w.spec.template.spec;
    const c = container(w);
    const configVolume = pod.volumes.find((v: Any) => v.name === 'config');
    const cm = r.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === configVolume.configMap.name);
    if (!cm) {
      expect(r.values.existingConfigMap).toBe(configVolume.configMap.name);
      continue;
    }
    const mount = c.volumeMounts.find((m: Any) => m.name === 'config');
    const configArg = c.args.find((a: string) => a.startsWith('--config.file='));
    expect(configArg).toBe(`--config.file=${mount.mountPath}/portprobe.yml`);
    let text: string = cm.data['portprobe.yml'];
    const root = mkdtempSync(path.join(tmpdir(), 'portprobe-pod-'));
    try {
      const secretMounts = c.volumeMounts.filter((m: Any) =>
        pod.volumes.some((v: Any) => v.name === m.name && v.secret !== undefined),
      );
      const files = new Set<string>();
      const walk = (node: unknown): void => {
        if (Array.isArray(node)) node.forEach(walk);
        else if (node && typeof node === 'object') {
          for (const [k, v] of Object.entries(node)) {
            if (k.endsWith('_file') && typeof v === 'string') files.add(v);
            else walk(v);
          }
        }
      };
      walk(parseYaml(text));
      for (const f of files) {
        const inSecret = secretMounts.some((m: Any) => f.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
        if (!inSecret) throw new Error(`${w.kind} ${w.metadata.name}: ${f} is not inside a mounted Secret`);
        const local = path.join(root, f);
        mkdirSync(path.dirname(local), { recursive: true });
        writeFileSync(local, 'not-a-real-password\n');
        text = text.split(f).join(local);
      }
      const env: NodeJS.ProcessEnv = {};
      for (const e of c.env ?? []) env[e.name] = 'value-from-the-pod';
      parseConfig(text, `${cm.metadata.name}/portprobe.yml`, env);
      loaded++;
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  return loaded;
}

/** Invariants every rendering must satisfy. */
function checkInvariants(r: Rendered): void {
  expect(valuesSchema(r.values)).toBe(true);
  expect(r.objects.length).toBeGreaterThan(0);
  expect(r.notes).toContain('portprobe');

  const ids = r.objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
  expect(new Set(ids).size).toBe(ids.length);

  for (const o of r.objects) {
    validateObject(o);
    expect(o.metadata.labels?.['app.kubernetes.io/instance']).toBe('portprobe');
    expect(o.metadata.labels?.['helm.sh/chart']).toMatch(/^portprobe-\d+\.\d+\.\d+/);
    for (const v of Object.values(o.metadata.labels ?? {})) expect(String(v).length).toBeLessThanOrEqual(63);
  }
  for (const s of ofKind(r, 'Service')) expect(s.metadata.name).toMatch(/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/);

  const icmp = Object.values((r.values.config as Any)?.modules ?? {}).some((m: Any) => m.prober === 'icmp');
  const webValues = (r.values.webConfig as Any) ?? {};
  const web = {
    enabled: webValues.enabled === true,
    tls: webValues.enabled && webValues.tls,
    auth: webValues.enabled && webValues.authentication,
  };
  for (const w of workloads(r)) {
    const spec = w.spec;
    const podLabels = spec.template.metadata.labels;
    expect(matches(spec.selector.matchLabels, podLabels)).toBe(true);
    const pod = spec.template.spec;
    expect(pod.containers).toHaveLength(1);
    const c = container(w);
    const sc = c.securityContext;
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.capabilities.drop).toEqual(['ALL']);
    const added: string[] = sc.capabilities.add ?? [];
    const sockets = w.kind === 'DaemonSet';
    const rootAllowed = sockets && (r.values.daemonset as Any).runAsRoot === true;
    if (sockets) {
      expect(pod.hostNetwork).toBe(true);
      const procMount = c.volumeMounts.find((m: Any) => m.mountPath === '/host/proc');
      expect(procMount.readOnly).toBe(true);
      expect(pod.volumes.find((v: Any) => v.name === procMount.name).hostPath.path).toBe('/proc');
      expect(pod.hostPID).toBe((r.values.daemonset as Any).hostPID === true);
      expect(added).toEqual(rootAllowed && pod.hostPID ? ['SYS_PTRACE', 'DAC_READ_SEARCH'] : []);
    } else {
      expect(pod.hostNetwork).toBeUndefined();
      expect(pod.hostPID).toBeUndefined();
      expect(added).toEqual(icmp ? ['NET_RAW'] : []);
    }
    if (rootAllowed) {
      expect(pod.securityContext.runAsUser).toBe(0);
    } else {
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(sc.runAsNonRoot).toBe(true);
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
    }
    expect(pod.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe(one(r, 'ServiceAccount').metadata.name);
    for (const kind of ['requests', 'limits']) {
      expect(c.resources[kind].cpu).toBeDefined();
      expect(c.resources[kind].memory).toBeDefined();
    }
    // Liveness and readiness the kubelet can pass: HTTPS when the agent serves TLS, a TCP
    // connect when it asks for credentials the kubelet does not have.
    for (const [probe, p] of [
      [c.livenessProbe, '/-/healthy'],
      [c.readinessProbe, '/-/ready'],
    ] as const) {
      if (web.auth) {
        expect(probe.tcpSocket).toEqual({ port: 'http' });
        expect(probe.httpGet).toBeUndefined();
      } else {
        expect(probe.httpGet).toEqual({ path: p, port: 'http', ...(web.tls ? { scheme: 'HTTPS' } : {}) });
      }
    }
    if (web.enabled) {
      expect(c.args).toContain('--web.config.file=/etc/portprobe/web/config/web.yml');
      const vol = pod.volumes.find((v: Any) => v.name === 'web-config');
      expect(vol.secret.secretName).toBe((r.values.webConfig as Any).secretName);
      expect(c.volumeMounts).toContainEqual({
        name: 'web-config',
        mountPath: '/etc/portprobe/web/config',
        readOnly: true,
      });
    } else {
      expect(c.args.some((a: string) => a.startsWith('--web.config.file'))).toBe(false);
    }
    // secretMounts reach every workload, the sockets DaemonSet included.
    for (const m of (r.values.secretMounts as Any[]) ?? []) {
      expect(c.volumeMounts).toContainEqual({ name: m.name, mountPath: m.mountPath, readOnly: true });
      expect(pod.volumes.find((v: Any) => v.name === m.name).secret.secretName).toBe(m.secretName);
    }
    for (const m of (r.values.extraVolumeMounts as Any[]) ?? []) expect(c.volumeMounts).toContainEqual(m);
    for (const v of (r.values.extraVolumes as Any[]) ?? []) expect(pod.volumes).toContainEqual(v);
    expect(c.envFrom).toEqual((r.values.extraEnvFrom as Any[])?.length ? r.values.extraEnvFrom : undefined);
    const port = c.ports.find((p: Any) => p.name === 'http').containerPort;
    expect(c.args).toContain(`--web.listen-address=:${port}`);
    for (const m of c.volumeMounts) expect(pod.volumes.some((v: Any) => v.name === m.name)).toBe(true);
    for (const m of c.volumeMounts) expect(m.readOnly).toBe(true);
    expect(pod.volumes.every((v: Any) => v.emptyDir === undefined)).toBe(true);

    // Every workload is behind a Service whose targetPort is the container's named port.
    const services = ofKind(r, 'Service').filter((s) => matches(s.spec.selector, podLabels));
    expect(services).toHaveLength(1);
    expect(services[0].spec.ports[0].targetPort).toBe('http');
  }

  // Every ServiceMonitor selects at least one Service in its namespace list, by a named port.
  for (const sm of ofKind(r, 'ServiceMonitor')) {
    const selected = ofKind(r, 'Service').filter(
      (s) =>
        matches(sm.spec.selector.matchLabels, s.metadata.labels) &&
        sm.spec.namespaceSelector.matchNames.includes(s.metadata.namespace),
    );
    expect(selected.length).toBeGreaterThan(0);
    for (const ep of sm.spec.endpoints) {
      for (const s of selected) expect(s.spec.ports.map((p: Any) => p.name)).toContain(ep.port);
      // Every monitor follows the agent's web config.
      expect(ep.scheme).toBe(web.tls ? 'https' : 'http');
      expect(ep.tlsConfig).toEqual(
        web.enabled && Object.keys(webValues.scrapeTlsConfig ?? {}).length ? webValues.scrapeTlsConfig : undefined,
      );
      expect(ep.basicAuth).toEqual(
        web.enabled && Object.keys(webValues.scrapeBasicAuth ?? {}).length ? webValues.scrapeBasicAuth : undefined,
      );
    }
  }
  // PodDisruptionBudget and NetworkPolicy select the probing pods.
  for (const o of [...ofKind(r, 'PodDisruptionBudget'), ...ofKind(r, 'NetworkPolicy')]) {
    const selector = o.kind === 'NetworkPolicy' ? o.spec.podSelector.matchLabels : o.spec.selector.matchLabels;
    const probing = workloads(r).filter((w) => w.kind !== 'DaemonSet');
    expect(probing.length).toBeGreaterThan(0);
    for (const w of probing) expect(matches(selector, w.spec.template.metadata.labels)).toBe(true);
  }
  for (const cm of ofKind(r, 'ConfigMap').filter((o) => o.metadata.labels?.grafana_alert !== undefined)) {
    const doc = parseYaml(cm.data['portprobe-alerts.yaml']);
    if (!grafanaProvisioning(doc))
      throw new Error(`${cm.source}: not Grafana's alert provisioning format: ${ajvErrors(grafanaProvisioning)}`);
  }
  loadRenderedConfigs(r);
}

let renderer: Renderer;
beforeAll(() => {
  renderer = Renderer.build();
}, 180_000);
afterAll(() => renderer?.dispose());

const renderCi = (file: string): Rendered => renderer.render([path.join(CI_DIR, file)]);

describe('render harness', () => {
  test('Go sources are gofmt-clean and pass go vet', () => {
    expect(goChecks()).toEqual({ gofmt: '', vet: '' });
  }, 120_000);

  test("its Go tests, which pin it to helm's behaviour, pass", () => {
    const r = goTest();
    expect([r.status, r.out]).toEqual([0, expect.stringMatching(/^ok\s/m)]);
  }, 120_000);

  test('later values files win, maps merge, null deletes a key', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-values-'));
    try {
      const a = path.join(dir, 'a.yaml');
      const b = path.join(dir, 'b.yaml');
      writeFileSync(a, 'replicaCount: 3\nserviceMonitor: {enabled: true, interval: 1m}\npodLabels: {team: a}\n');
      writeFileSync(b, 'serviceMonitor: {interval: 2m}\npodLabels: null\n');
      const r = renderer.render([a, b]);
      expect((r.values.serviceMonitor as Any).enabled).toBe(true);
      expect((r.values.serviceMonitor as Any).interval).toBe('2m');
      expect(r.values.podLabels).toBeUndefined();
      expect(one(r, 'Deployment').spec.replicas).toBe(3);
      expect(one(r, 'ServiceMonitor').spec.endpoints[0].interval).toBe('2m');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('values', () => {
  test('values.yaml satisfies values.schema.json', () => {
    const values = parseYaml(readText(CHART, 'values.yaml'));
    if (!valuesSchema(values)) throw new Error(ajvErrors(valuesSchema));
  });

  test.each(CI_FILES)('%s merged over values.yaml satisfies values.schema.json', (file) => {
    const r = renderCi(file);
    if (!valuesSchema(r.values)) throw new Error(ajvErrors(valuesSchema));
  });

  test.each([
    ['a string replica count', { replicaCount: 'two' }, '/replicaCount'],
    ['a misspelt key', { serviceMonitor: { enabeld: true } }, '/serviceMonitor'],
    ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }, '/image/pullPolicy'],
    ['zero shards', { sharding: { shards: 0 } }, '/sharding/shards'],
    [
      'a relative secret mount',
      { secretMounts: [{ name: 'x', secretName: 'x', mountPath: 'secrets' }] },
      '/secretMounts/0/mountPath',
    ],
    ['a bad scrape interval', { serviceMonitor: { interval: '30 seconds' } }, '/serviceMonitor/interval'],
    ['an unknown top-level key', { replicas: 2 }, ''],
  ])('the schema rejects %s', (_what, override, at) => {
    const values = { ...parseYaml(readText(CHART, 'values.yaml')), ...override };
    for (const [k, v] of Object.entries(override)) {
      const base = parseYaml(readText(CHART, 'values.yaml'))[k];
      if (base && typeof base === 'object' && !Array.isArray(base) && typeof v === 'object')
        values[k] = { ...base, ...v };
    }
    expect(valuesSchema(values)).toBe(false);
    expect((valuesSchema.errors ?? []).map((e) => e.instancePath)).toContain(at);
  });

  test("values.schema.json carries the agent's current config schema for config and daemonset.config", () => {
    const text = readText(CHART, 'values.schema.json');
    // What validates must match; descriptions may lag. If this fails, run
    //   npm run schema
    const rules = (json: string): unknown =>
      JSON.parse(json, (key, value) => (key === 'description' ? undefined : value));
    expect(rules(syncedValuesSchema(text))).toEqual(rules(text));
    const values = parseYaml(readText(CHART, 'values.yaml'));
    values.config.modules.tcp_connect.prober = 'telnet';
    expect(valuesSchema(values)).toBe(false);
    expect((valuesSchema.errors ?? []).map((e) => e.instancePath)).toContain('/config/modules/tcp_connect/prober');
  });

  test('every value in values.yaml has a ## comment', () => {
    const lines = readText(CHART, 'values.yaml').split('\n');
    const missing: string[] = [];
    lines.forEach((line, i) => {
      if (!/^\s*(- )?[A-Za-z_][\w.-]*:/.test(line) || /^\s*#/.test(line)) return;
      let j = i - 1;
      while (j >= 0 && lines[j].trim() === '') j--;
      const prev = j >= 0 ? lines[j] : '';
      if (!/^\s*(- )?## /.test(prev)) missing.push(`${i + 1}: ${line.trim()}`);
    });
    expect(missing).toEqual([]);
  });

  test('every optional object is off by default', () => {
    const values = parseYaml(readText(CHART, 'values.yaml'));
    for (const key of Object.keys(values)) {
      const v = values[key];
      if (v && typeof v === 'object' && 'enabled' in v) expect([key, v.enabled]).toEqual([key, false]);
    }
    expect(values.networkPolicy.egress.enabled).toBe(false);
  });
});

describe('rendering', () => {
  test('default values: a Deployment, its ConfigMap, Service and ServiceAccount, nothing optional', () => {
    const r = renderer.render([]);
    checkInvariants(r);
    expect(r.objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Service', 'ServiceAccount']);
    const d = one(r, 'Deployment');
    expect(container(d).image).toBe(
      `ghcr.io/portprobe/portprobe:${parseYaml(readText(CHART, 'Chart.yaml')).appVersion}`,
    );
    expect(d.spec.template.metadata.annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
    expect(one(r, 'Service').spec.type).toBe('ClusterIP');
  });

  test.each(CI_FILES)('%s renders valid, consistent objects', (file) => {
    checkInvariants(renderCi(file));
  });

  test('every ci file has its feature assertions below', () => {
    expect(Object.keys(FEATURES).sort()).toEqual(CI_FILES);
  });

  test.each(CI_FILES)('%s: feature', (file) => {
    FEATURES[file](renderCi(file));
  });

  test('the config checksum changes with the config', () => {
    const a = one(renderer.render([]), 'Deployment').spec.template.metadata.annotations['checksum/config'];
    const b = one(renderer.render([], { setStrings: { 'config.global.interval': '1m' } }), 'Deployment').spec.template
      .metadata.annotations['checksum/config'];
    expect(a).not.toBe(b);
  });

  test('a module with the icmp prober adds NET_RAW, and only NET_RAW, to the probing pods', () => {
    // Also covered by ci/icmp-values.yaml; this case builds its values inline.
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-values-'));
    try {
      const f = path.join(dir, 'v.yaml');
      writeFileSync(
        f,
        'config: {modules: {ping: {prober: icmp}}, targets: [{name: gw, module: ping, address: 192.0.2.1}]}\n',
      );
      for (const extra of [[], [path.join(CI_DIR, 'sharding-values.yaml')]]) {
        const r = renderer.render([f, ...extra]);
        const probing = workloads(r);
        expect(probing).toHaveLength(1);
        expect(container(probing[0]).securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_RAW'] });
      }
      const withSockets = renderer.render([f, path.join(CI_DIR, 'daemonset-values.yaml')]);
      expect(container(one(withSockets, 'DaemonSet')).securityContext.capabilities).toEqual({ drop: ['ALL'] });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('fails when a probe ServiceMonitor names a target missing from config.targets', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-values-'));
    try {
      const f = path.join(dir, 'v.yaml');
      writeFileSync(f, 'probeServiceMonitors: {enabled: true, targets: [{name: nowhere}]}\n');
      expect(() => renderer.render([f])).toThrow(
        'probeServiceMonitors.targets: "nowhere" is not a target in config.targets',
      );
      writeFileSync(f, 'secretMounts: [{name: s, secretName: s, mountPath: /etc/portprobe/config/creds}]\n');
      expect(() => renderer.render([f])).toThrow('mount secrets outside /etc/portprobe/config');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('alert rules: one source for the PrometheusRule and the Grafana-managed alerts', () => {
  test('a group appended to files/portprobe-rules.yml reaches both, without touching a template', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-chartcopy-'));
    try {
      const chart = path.join(dir, 'portprobe');
      cpSync(CHART, chart, { recursive: true });
      const rules = path.join(chart, 'files', 'portprobe-rules.yml');
      const extra = [
        '  - name: portprobe.newcomer',
        '    rules:',
        '      - alert: PortprobeNewcomerBroken',
        '        expr: max by (target) (probe_newcomer_ok) == 0',
        '        for: 3m',
        '        labels: {severity: warning}',
        '        annotations: {summary: "{{ $labels.target }} is broken ({{ $value }})"}',
        '',
      ].join('\n');
      writeFileSync(rules, `${readText(rules)}\n${extra}`);
      const r = renderer.render([path.join(CI_DIR, 'grafana-alerts-values.yaml')], { chart });
      const prom = one(r, 'PrometheusRule').spec.groups.at(-1);
      expect(prom.name).toBe('portprobe.newcomer');
      const grafana = parseYaml(
        one(r, 'ConfigMap', 'portprobe-grafana-alerts').data['portprobe-alerts.yaml'],
      ).groups.at(-1);
      expect(grafana.name).toBe('portprobe.newcomer');
      expect(grafana.rules[0]).toMatchObject({
        title: 'PortprobeNewcomerBroken',
        for: '3m',
        annotations: { summary: '{{ $labels.target }} is broken ({{ $values.A.Value }})' },
      });
      expect(grafana.rules[0].data[0].model.expr).toBe(prom.rules[0].expr);
      checkInvariants(r);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('with the default rule settings every Grafana rule carries its rule of the file unchanged', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-values-'));
    try {
      const f = path.join(dir, 'v.yaml');
      writeFileSync(f, 'grafanaAlerts: {enabled: true}\n');
      const r = renderer.render([f]);
      const doc = parseYaml(one(r, 'ConfigMap', 'portprobe-grafana-alerts').data['portprobe-alerts.yaml']);
      const source = rulesFile().groups;
      expect(doc.groups.map((g: Any) => g.name)).toEqual(source.map((g: Any) => g.name));
      const grafana = doc.groups.flatMap((g: Any) => g.rules);
      const alerts = source.flatMap((g: Any) => g.rules).filter((x: Any) => x.alert);
      expect(grafana.map((x: Any) => x.title)).toEqual(alerts.map((x: Any) => x.alert));
      for (const [i, a] of alerts.entries()) {
        expect(grafana[i].data[0].model.expr.trim()).toBe(a.expr.trim());
        expect(grafana[i].for).toBe(a.for);
        expect(grafana[i].labels).toEqual(a.labels);
        expect(grafana[i].annotations.runbook_url).toBe(a.annotations.runbook_url);
        expect(grafana[i].annotations.summary).toBe(a.annotations.summary.replace(/\$value\b/g, '$values.A.Value'));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the tuned PrometheusRule (for:, threshold, own groups) is a rule file promtool accepts', () => {
    const r = renderCi('rules-tuning-values.yaml');
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-rules-'));
    try {
      const file = path.join(dir, 'rules.yml');
      writeFileSync(file, stringifyYaml({ groups: one(r, 'PrometheusRule').spec.groups }));
      const check = spawnSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      expect([check.status, check.stderr]).toEqual([0, '']);
      expect(check.stdout).toMatch(/SUCCESS: \d+ rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the same alert name twice cannot become two Grafana rules of one title', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-values-'));
    try {
      const f = path.join(dir, 'v.yaml');
      writeFileSync(
        f,
        'grafanaAlerts: {enabled: true}\nprometheusRule: {additionalRules: [{name: x, rules: [{alert: PortprobeTargetDown, expr: vector(1)}]}]}\n',
      );
      expect(() => renderer.render([f])).toThrow('grafanaAlerts: alert "PortprobeTargetDown" appears twice');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('refusals with a reason', () => {
  test.each([
    [
      'TLS without saying how Prometheus verifies it',
      'webConfig: {enabled: true, secretName: w, tls: true}\nserviceMonitor: {enabled: true}\n',
      'webConfig.scrapeTlsConfig: the agent serves TLS',
    ],
    [
      'authentication without credentials for Prometheus',
      'webConfig: {enabled: true, secretName: w, authentication: true}\nserviceMonitor: {enabled: true}\n',
      'webConfig.authentication: give Prometheus credentials',
    ],
    [
      'a web config without its Secret',
      'webConfig: {enabled: true}\n',
      'webConfig.secretName: the Secret holding web.yml',
    ],
    [
      'a NetworkPolicy with an active-mode module on a random port',
      'networkPolicy: {enabled: true}\nconfig: {modules: {a: {prober: ftp, ftp: {data_channel: [active]}}}}\n',
      'networkPolicy: module "a" tests FTP active mode on a random port; set ftp.active_listen.ports',
    ],
  ])('%s', (_what, values, message) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-values-'));
    try {
      const f = path.join(dir, 'v.yaml');
      writeFileSync(f, values);
      expect(() => renderer.render([f])).toThrow(message);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const rulesFile = (): Any => parseYaml(readText(CHART, 'files', 'portprobe-rules.yml'));

const FEATURES: Record<string, (r: Rendered) => void> = {
  'targets-values.yaml': (r) => {
    const d = one(r, 'Deployment');
    const c = container(d);
    expect(c.volumeMounts).toContainEqual({
      name: 'ftp-credentials',
      mountPath: '/etc/portprobe/secrets/ftp',
      readOnly: true,
    });
    const vol = d.spec.template.spec.volumes.find((v: Any) => v.name === 'ftp-credentials');
    expect(vol.secret).toEqual({ secretName: 'ftp-monitor', defaultMode: 0o440 });
    expect(c.env).toContainEqual({
      name: 'MSSQL_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'mssql-monitor', key: 'password' } },
    });
    const cfg = parseYaml(one(r, 'ConfigMap').data['portprobe.yml']);
    expect(cfg.targets.map((t: Any) => t.name)).toEqual(['files-primary', 'sql-primary', 'gateway-ssh']);
    expect(loadRenderedConfigs(r)).toBe(1);
  },
  'servicemonitor-values.yaml': (r) => {
    const sm = one(r, 'ServiceMonitor');
    expect(sm.metadata.labels?.release).toBe('kube-prometheus-stack');
    const ep = sm.spec.endpoints[0];
    expect(ep).toMatchObject({
      port: 'http',
      path: '/metrics',
      interval: '15s',
      scrapeTimeout: '10s',
      honorLabels: true,
    });
    expect(ep.metricRelabelings).toEqual([{ sourceLabels: ['__name__'], regex: 'nodejs_.*', action: 'drop' }]);
    expect(ep.relabelings[0]).toEqual({ sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node' });
  },
  'probe-servicemonitors-values.yaml': (r) => {
    const sms = ofKind(r, 'ServiceMonitor');
    expect(sms.map((s) => s.metadata.name).sort()).toEqual([
      'portprobe-probe-mail-relay',
      'portprobe-probe-web-frontend',
    ]);
    const web = sms.find((s) => s.metadata.name.endsWith('web-frontend')) as Obj;
    expect(web.spec.endpoints[0]).toMatchObject({
      path: '/probe',
      params: { target: ['web-frontend'], module: ['tcp_tls'] },
      interval: '60s',
      scrapeTimeout: '30s',
    });
    const mail = sms.find((s) => s.metadata.name.endsWith('mail-relay')) as Obj;
    expect(mail.spec.endpoints[0]).toMatchObject({
      params: { target: ['Mail_Relay'], module: ['tcp_connect'] },
      interval: '2m',
      scrapeTimeout: '20s',
    });
    // /probe output carries no target labels; the ServiceMonitor adds them as /metrics has them.
    expect(web.spec.endpoints[0].relabelings).toEqual([
      { targetLabel: 'target', replacement: 'web-frontend' },
      { targetLabel: 'module', replacement: 'tcp_tls' },
      { targetLabel: 'site', replacement: 'eu-1' },
    ]);
    expect(mail.spec.endpoints[0].relabelings).toEqual([
      { targetLabel: 'target', replacement: 'Mail_Relay' },
      { targetLabel: 'module', replacement: 'tcp_connect' },
    ]);
  },
  'prometheusrule-values.yaml': (r) => {
    const pr = one(r, 'PrometheusRule');
    const source = rulesFile();
    const rendered = pr.spec.groups.flatMap((g: Any) => g.rules);
    const expected = source.groups
      .flatMap((g: Any) => g.rules)
      .filter((rule: Any) => rule.alert !== 'PortprobeUnexpectedDynamicListener');
    expect(rendered.map((x: Any) => x.alert)).toEqual(expected.map((x: Any) => x.alert));
    for (const [i, rule] of rendered.entries()) {
      expect(rule.expr).toBe(expected[i].expr);
      expect(rule.for).toBe(expected[i].for);
      expect(rule.labels).toEqual({ ...expected[i].labels, team: 'network' });
      const anchor = expected[i].annotations.runbook_url.split('#')[1];
      expect(rule.annotations.runbook_url).toBe(`https://wiki.example.net/runbooks/portprobe#${anchor}`);
      expect(rule.annotations.summary).toBe(expected[i].annotations.summary);
    }
  },
  'dashboard-values.yaml': (r) => {
    const cm = one(r, 'ConfigMap', 'portprobe-dashboard');
    expect(cm.metadata.namespace).toBe('grafana');
    expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
    expect(cm.metadata.annotations).toEqual({ grafana_folder: 'Network' });
    expect(JSON.parse(cm.data['portprobe.json'])).toEqual(
      JSON.parse(readText(CHART, 'files', 'portprobe-dashboard.json')),
    );
  },
  'daemonset-values.yaml': (r) => {
    const ds = one(r, 'DaemonSet');
    expect(ds.spec.template.spec.hostPID).toBe(false);
    expect(ds.spec.template.spec.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(container(ds).args).toContain('--web.listen-address=:9822');
    const cfg = parseYaml(one(r, 'ConfigMap', 'portprobe-sockets').data['portprobe.yml']);
    expect(cfg.sockets).toMatchObject({
      enabled: true,
      procfs: '/host/proc',
      include_process: false,
      max_unexpected_series: 50,
    });
    expect(cfg.targets).toBeUndefined();
    expect(one(r, 'Service', 'portprobe-sockets').spec.clusterIP).toBe('None');
    expect(loadRenderedConfigs(r)).toBe(2);
  },
  'daemonset-processes-values.yaml': (r) => {
    const ds = one(r, 'DaemonSet');
    const pod = ds.spec.template.spec;
    expect(pod.hostPID).toBe(true);
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: false, runAsUser: 0 });
    expect(pod.tolerations).toBeUndefined();
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(parseYaml(one(r, 'ConfigMap', 'portprobe-sockets').data['portprobe.yml']).sockets.include_process).toBe(
      true,
    );
    // The remote-probe Deployment stays unprivileged.
    const d = one(r, 'Deployment');
    expect(d.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
  },
  'networkpolicy-values.yaml': (r) => {
    const np = one(r, 'NetworkPolicy');
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(np.spec.ingress[0].from[0].namespaceSelector.matchLabels).toEqual({
      'kubernetes.io/metadata.name': 'monitoring',
    });
    expect(np.spec.egress[0].ports.map((p: Any) => p.port)).toEqual([53, 53]);
    expect(np.spec.egress[1]).toEqual({
      to: [{ ipBlock: { cidr: '10.0.0.0/8' } }],
      ports: [
        { port: 21, protocol: 'TCP' },
        { port: 1433, protocol: 'TCP' },
      ],
    });
  },
  'icmp-values.yaml': (r) => {
    const probing = workloads(r);
    expect(probing).toHaveLength(1);
    expect(container(probing[0]).securityContext.capabilities).toEqual({ drop: ['ALL'], add: ['NET_RAW'] });
  },
  'pdb-values.yaml': (r) => {
    const pdb = one(r, 'PodDisruptionBudget');
    expect(pdb.spec.maxUnavailable).toBe(1);
    expect(pdb.spec.minAvailable).toBeUndefined();
    expect(one(r, 'Deployment').spec.replicas).toBe(2);
  },
  'sharding-values.yaml': (r) => {
    expect(ofKind(r, 'Deployment')).toHaveLength(0);
    const sts = one(r, 'StatefulSet');
    expect(sts.spec.replicas).toBe(3);
    expect(sts.spec.podManagementPolicy).toBe('Parallel');
    const svc = one(r, 'Service');
    expect(svc.spec.clusterIP).toBe('None');
    expect(sts.spec.serviceName).toBe(svc.metadata.name);
    const env = container(sts).env;
    expect(env).toContainEqual({ name: 'PORTPROBE_SHARD_COUNT', value: '3' });
    expect(env).toContainEqual({ name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
    expect(ofKind(r, 'ServiceMonitor')).toHaveLength(1);
  },
  'sharding-replicas-values.yaml': (r) => {
    const sets = ofKind(r, 'StatefulSet');
    expect(sets.map((s) => s.metadata.name)).toEqual(['portprobe-r0', 'portprobe-r1']);
    for (const s of sets) expect(s.spec.replicas).toBe(2);
    // Pod names end in the ordinal, which the agent reads as its shard index.
    for (const s of sets) expect(`${s.metadata.name}-1`).toMatch(/-([0-9]+)$/);
    const copies = sets.map((s) => s.spec.selector.matchLabels['portprobe.dev/shard-copy']);
    expect(copies).toEqual(['0', '1']);
    expect(one(r, 'PodDisruptionBudget').spec.minAvailable).toBe(2);
    expect(ofKind(r, 'ServiceMonitor')).toHaveLength(1);
  },
  'webconfig-tls-values.yaml': (r) => {
    const c = container(one(r, 'Deployment'));
    expect(c.readinessProbe.httpGet).toEqual({ path: '/-/ready', port: 'http', scheme: 'HTTPS' });
    expect(c.volumeMounts).toContainEqual({ name: 'web-tls', mountPath: '/etc/portprobe/web/tls', readOnly: true });
    const pod = one(r, 'Deployment').spec.template.spec;
    expect(pod.volumes.find((v: Any) => v.name === 'web-tls').secret.secretName).toBe('portprobe-web-tls');
    expect(pod.volumes.find((v: Any) => v.name === 'web-config').secret.items).toEqual([
      { key: 'web.yml', path: 'web.yml' },
    ]);
    const sms = ofKind(r, 'ServiceMonitor');
    expect(sms).toHaveLength(2); // /metrics and the /probe monitor of "gateway"
    for (const sm of sms) {
      expect(sm.spec.endpoints[0]).toMatchObject({
        scheme: 'https',
        tlsConfig: {
          ca: { secret: { name: 'portprobe-web-tls', key: 'ca.crt' } },
          serverName: 'portprobe.monitoring.svc',
        },
      });
    }
  },
  'webconfig-basicauth-values.yaml': (r) => {
    expect(r.notes).toContain("curl -sk -u USER 'https://127.0.0.1:9821/probe?target=NAME&debug=true'");
    expect(
      workloads(r)
        .map((w) => w.kind)
        .sort(),
    ).toEqual(['DaemonSet', 'Deployment']);
    for (const w of workloads(r)) {
      expect(container(w).livenessProbe.tcpSocket).toEqual({ port: 'http' });
      expect(container(w).args).toContain('--web.config.file=/etc/portprobe/web/config/web.yml');
    }
    expect(one(r, 'ServiceMonitor').spec.endpoints[0].basicAuth).toEqual({
      username: { name: 'portprobe-scrape', key: 'username' },
      password: { name: 'portprobe-scrape', key: 'password' },
    });
  },
  'daemonset-secretmounts-values.yaml': (r) => {
    const ds = one(r, 'DaemonSet');
    expect(container(ds).volumeMounts).toContainEqual({
      name: 'shared-ca',
      mountPath: '/etc/portprobe/secrets/ca',
      readOnly: true,
    });
    expect(ds.spec.template.spec.volumes.find((v: Any) => v.name === 'shared-ca').secret).toEqual({
      secretName: 'internal-ca',
      defaultMode: 0o440,
    });
    // The host's /proc is still there, read-only.
    expect(container(ds).volumeMounts).toContainEqual({ name: 'host-proc', mountPath: '/host/proc', readOnly: true });
  },
  'networkpolicy-activemode-values.yaml': (r) => {
    const np = one(r, 'NetworkPolicy');
    expect(np.spec.ingress).toHaveLength(2);
    expect(np.spec.ingress[1]).toEqual({
      ports: [
        { port: 30000, endPort: 30009, protocol: 'TCP' },
        { port: 31000, protocol: 'TCP' },
      ],
      from: [{ ipBlock: { cidr: '10.40.0.0/16' } }],
    });
    // The agent waits on exactly these ports: they come from the modules' own settings.
    const cfg = parseConfig(one(r, 'ConfigMap').data['portprobe.yml'], 'portprobe.yml');
    expect((cfg.modules.get('ftp_active')?.settings as Any).active_listen.ports).toBe('30000-30009');
  },
  'rules-tuning-values.yaml': (r) => {
    const rules = one(r, 'PrometheusRule').spec.groups.flatMap((g: Any) => g.rules);
    const byName = (n: string): Any => rules.find((x: Any) => x.alert === n);
    expect(byName('PortprobeTargetDown').for).toBe('10m');
    const cert = byName('PortprobeTlsCertificateExpiringSoon');
    expect(cert.expr).toMatch(/\) \/ 86400 < 30$/);
    expect(cert.annotations.description).toContain('under the 30-day threshold');
    const shipped = rulesFile().groups.flatMap((g: Any) => g.rules);
    expect(cert.expr).toBe(
      shipped
        .find((x: Any) => x.alert === cert.alert)
        .expr.trim()
        .replace(/< 14$/, '< 30'),
    );
    const own = one(r, 'PrometheusRule').spec.groups.at(-1);
    expect(own.name).toBe('site.portprobe');
    expect(own.rules[0]).toMatchObject({ alert: 'MssqlReplicaLagging', for: '2m' });
    expect(own.rules[1]).toEqual({ record: 'portprobe:probe_success:ratio', expr: 'avg by (module) (probe_success)' });
    // Rules not overridden keep the file's for:.
    expect(byName('PortprobeFtpPasvAddressMismatch').for).toBe(
      shipped.find((x: Any) => x.alert === 'PortprobeFtpPasvAddressMismatch').for,
    );
  },
  'grafana-alerts-values.yaml': (r) => {
    expect(r.notes).toContain(
      'Grafana alerting: ConfigMap portprobe-grafana-alerts (sidecar label grafana_alert), folder Network, data source prom-main.',
    );
    const cm = one(r, 'ConfigMap', 'portprobe-grafana-alerts');
    expect(cm.metadata.namespace).toBe('grafana');
    expect(cm.metadata.labels?.grafana_alert).toBe('1');
    const doc = parseYaml(cm.data['portprobe-alerts.yaml']);
    const prom = one(r, 'PrometheusRule').spec.groups;
    // Same groups, same alerts, in the same order: both come from files/portprobe-rules.yml.
    expect(doc.groups.map((g: Any) => g.name)).toEqual(prom.map((g: Any) => g.name));
    for (const [gi, g] of doc.groups.entries()) {
      expect(g).toMatchObject({ orgId: 1, folder: 'Network', interval: '1m' });
      const alerts = prom[gi].rules.filter((x: Any) => x.alert);
      expect(g.rules.map((x: Any) => x.title)).toEqual(alerts.map((x: Any) => x.alert));
      for (const [i, rule] of g.rules.entries()) {
        const p = alerts[i];
        const [query, condition] = rule.data;
        expect(rule.condition).toBe(condition.refId);
        expect(query).toMatchObject({ refId: 'A', datasourceUid: 'prom-main', model: { expr: p.expr, instant: true } });
        expect(condition.model).toMatchObject({
          type: 'math',
          expression: 'is_number($A) || is_nan($A) || is_inf($A)',
        });
        expect(rule.for).toBe(p.for);
        expect(rule.labels).toEqual(p.labels);
        expect(rule.labels.team).toBe('network');
        expect(Object.keys(rule.annotations)).toEqual(Object.keys(p.annotations));
        for (const k of Object.keys(p.annotations)) {
          expect(rule.annotations[k]).toBe(p.annotations[k].replace(/\$value\b/g, '$values.A.Value'));
        }
        expect(rule).toMatchObject({ noDataState: 'OK', execErrState: 'Error', isPaused: false });
      }
    }
    const uids = doc.groups.flatMap((g: Any) => g.rules.map((x: Any) => x.uid));
    expect(new Set(uids).size).toBe(uids.length);
    const cert = doc.groups
      .flatMap((g: Any) => g.rules)
      .find((x: Any) => x.title === 'PortprobeTlsCertificateExpiringSoon');
    expect(cert.data[0].model.expr).toMatch(/< 21$/);
    expect(cert.annotations.summary).toContain('{{ $values.A.Value | printf "%.1f" }}');
  },
  'image-registry-values.yaml': (r) => {
    expect(container(one(r, 'Deployment')).image).toBe(
      'registry.example.net/mirror/portprobe/portprobe@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    );
    // A repository without a registry part keeps all of its path under the mirror.
    const dir = mkdtempSync(path.join(tmpdir(), 'portprobe-values-'));
    try {
      const f = path.join(dir, 'v.yaml');
      writeFileSync(
        f,
        'global: {imageRegistry: mirror.local:5000/}\nimage: {repository: team/portprobe, tag: "1.2"}\n',
      );
      expect(container(one(renderer.render([f]), 'Deployment')).image).toBe('mirror.local:5000/team/portprobe:1.2');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  'extra-volumes-values.yaml': (r) => {
    expect(workloads(r)).toHaveLength(2);
    for (const w of workloads(r)) {
      const c = container(w);
      expect(c.image).toBe(`ghcr.io/portprobe/portprobe:${parseYaml(readText(CHART, 'Chart.yaml')).appVersion}`);
      expect(c.envFrom).toEqual([{ secretRef: { name: 'probe-credentials' } }]);
      expect(c.volumeMounts).toContainEqual({ name: 'internal-ca', mountPath: '/etc/portprobe/ca', readOnly: true });
      expect(w.spec.template.spec.volumes).toContainEqual({
        name: 'internal-ca',
        configMap: { name: 'internal-ca-bundle' },
      });
    }
  },
  'existing-configmap-values.yaml': (r) => {
    expect(ofKind(r, 'ConfigMap')).toHaveLength(0);
    const d = one(r, 'Deployment');
    expect(d.spec.template.spec.volumes[0].configMap.name).toBe('portprobe-config-managed-elsewhere');
    expect(container(d).image).toBe(
      'ghcr.io/portprobe/portprobe@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    );
    expect(d.spec.template.spec.imagePullSecrets).toEqual([{ name: 'registry-credentials' }]);
  },
};

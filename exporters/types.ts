// The one shape every prober has. Probers return data; the store keeps it and the
// exposition turns it into series. A prober never throws for a failing target.
import type { ProbeSignal } from './signal';

/** The closed set of reasons a probe can fail for. Each names the rung that broke. */
export const FAILURE_REASONS = [
  // generic network rungs
  'dns_error',
  'refused',
  'timeout',
  // Silence after a completed TCP handshake, told apart from a dropped SYN (`timeout` at connect):
  // no_greeting: a service that should speak first (FTP banner, TCP expect_banner) sent nothing;
  // no_response: the first request of the dialogue (e.g. PRELOGIN) got no answer at all;
  // stalled: the service answered earlier in this dialogue, then stopped (hung or overloaded);
  // tls_expected: the port answered with TLS while the module speaks clear text (implicit TLS).
  'no_greeting',
  'no_response',
  'stalled',
  'tls_expected',
  'reset',
  'unreachable',
  'tls_error',
  'tls_required',
  'protocol_error',
  'auth_failed',
  'banner_unexpected',
  // FTP
  'too_many_connections',
  'pasv_unreachable',
  'pasv_address_mismatch',
  'active_refused',
  'active_disabled',
  'data_timeout',
  'data_error',
  // SQL Server
  'browser_no_answer',
  'instance_not_found',
  'not_tds',
  'encryption_mismatch',
  'query_error',
  'version_refuses_remote',
  // ICMP
  'icmp_unavailable',
  'packet_loss',
  // agent side
  'aborted',
  'internal_error',
] as const;

export type FailureReason = (typeof FAILURE_REASONS)[number];

export function isFailureReason(s: string): s is FailureReason {
  return (FAILURE_REASONS as readonly string[]).includes(s);
}

export interface PhaseTiming {
  /** Phase name from the prober's `phases` list, e.g. resolve, connect, tls, banner, login. */
  phase: string;
  seconds: number;
}

export type FindingSeverity = 'info' | 'warning' | 'critical';

/**
 * Something a person should know that is not a failure of the probe (an old build, a hidden
 * instance, a followed PASV mismatch, a certificate near expiry). Findings are data: diagnose,
 * the status page and /probe?debug=true render this one list; they are never series.
 */
export interface Finding {
  /** Stable key, prober-prefixed: mssql_patch_advisory, ftp_pasv_mismatch_followed, tls_cert_expiry ... */
  code: string;
  severity: FindingSeverity;
  /** One line for people: what was found. */
  message: string;
  /** What to do about it, when anything. */
  advice?: string;
}

export interface ProbeFailure {
  /** The phase (rung) that failed. */
  phase: string;
  reason: FailureReason;
  /** One line for people: what happened, never containing secrets. */
  message: string;
  /** Optional: what the operator should check next, in their terms. */
  advice?: string;
}

/** One sample of a metric family the prober declared in `metrics`. */
export interface Fact {
  metric: string;
  labels?: Readonly<Record<string, string>>;
  value: number;
}

export interface ProbeResult {
  success: boolean;
  /** Wall time of the whole probe. */
  durationSeconds: number;
  /** Phases in the order they ran. Phases not reached are simply absent. */
  phases: PhaseTiming[];
  failure?: ProbeFailure;
  /**
   * Later rungs that failed too, in the order they failed, for probers that report a rung and
   * carry on (each FTP data mode is judged on its own). The first failure stays in `failure`.
   */
  laterFailures?: ProbeFailure[];
  /** 4 or 6 once an address was chosen. */
  ipProtocol?: 4 | 6;
  /** Samples of the prober's own metric families (probe_ftp_..., probe_tls_..., ...). */
  facts: Fact[];
  /** Structured details for people (diagnose, status page); never rendered as series. */
  details?: Record<string, unknown>;
  /** Non-fatal findings, in the order they were made (see Finding). */
  findings?: Finding[];
  /** Debug lines collected during the probe (for /probe?debug=true). */
  log?: string[];
}

export type MetricType = 'gauge' | 'counter';

export interface MetricDef {
  name: string;
  help: string;
  type: MetricType;
  /** The fixed label names of this family (beyond the agent's target/module/target-labels). */
  labelNames: readonly string[];
}

export interface ProbeLogger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface TargetSpec {
  name: string;
  /** As written in config: host:port, [v6]:port, a URL, or a bare host, depending on the prober. */
  address: string;
  labels: Readonly<Record<string, string>>;
}

export interface ModuleSpec<M> {
  name: string;
  prober: string;
  timeoutSeconds: number;
  /**
   * Optional ICMP rung before the prober's own ladder (the checklist's "ping the host" step).
   * Not required: a failed ping is reported and the ladder goes on, since many hosts drop ICMP.
   */
  ping?: { required: boolean; packets: number };
  /** The prober's own settings, defaults merged, secrets resolved. */
  settings: M;
}

export interface ProbeContext<M> {
  target: TargetSpec;
  module: ModuleSpec<M>;
  /** Aborts at the probe's deadline or when the agent shuts down. Every wait honours it. */
  signal: ProbeSignal;
  /** Absolute deadline, ms since the epoch (Date.now() based). */
  deadline: number;
  logger: ProbeLogger;
}

export type Prober<M> = (ctx: ProbeContext<M>) => Promise<ProbeResult>;

/** JSON Schema fragment (draft 2020-12 subset that ajv understands). */
export type JsonSchema = Record<string, unknown>;

/** What `portprobe diagnose` read from a URL, for the prober of its scheme to make a target of. */
export interface ProbeUrl {
  /** The URL as given, for messages. */
  raw: string;
  /** The scheme without its colon: one of the prober's `urls.schemes`. */
  scheme: string;
  host: string;
  /** The URL's port, else the prober's defaultPort; undefined when neither is there. */
  port?: number;
  /** Whether the URL itself names the port. */
  portGiven: boolean;
  /** The user name, decoded; '' when the URL names none. */
  user: string;
  /** The path, decoded: '' or '/' when the URL has none. */
  path: string;
  /** The password setting when one was given (--password-file, PORTPROBE_PASSWORD); else empty. */
  secret: { password?: unknown };
  /** --insecure: accept any server certificate. */
  insecure: boolean;
}

/** The URLs `portprobe diagnose` takes for a prober. */
export interface ProbeUrls {
  schemes: readonly string[];
  /** How they look, for the help text: "ftp://[user@]host[:port][/path]". */
  usage: string;
  /** The target address and module settings a URL stands for; throws an Error with a one-line reason. */
  fromUrl(u: ProbeUrl): { address: string; settings: Record<string, unknown> };
}

export interface ProberDef<M> {
  name: string;
  /** The service's well-known port, for an address or URL that names none; absent: a port is required. */
  defaultPort?: number;
  /** The URLs `portprobe diagnose` takes for this prober; absent: none. */
  urls?: ProbeUrls;
  /**
   * What to check next, in this prober's terms, for a failure that carries no advice of its own;
   * `generic` is the advice for the rung and reason whatever the prober. Undefined: the generic advice.
   */
  advice?(failure: ProbeFailure, generic: string | undefined): string | undefined;
  /** Every phase this prober can report, in ladder order; all are exported (0 when not reached). */
  phases: readonly string[];
  /** Families beyond the common probe_* ones. */
  metrics: readonly MetricDef[];
  /** JSON Schema of `modules.<name>.<prober>` (additionalProperties: false). */
  schema: JsonSchema;
  /** Defaults merged under the user's settings before validation of semantics. */
  defaults: M;
  /**
   * Semantic checks the schema cannot express. Returns human error strings, each starting
   * with the field path relative to the settings object (e.g. "data_channel[1]: ...").
   */
  validate?(settings: M): string[];
  /** Check the target address for this prober; returns an error message or undefined. */
  validateAddress?(address: string, settings: M): string | undefined;
  run: Prober<M>;
}

// ---------------------------------------------------------------------------------------------
// Local collectors (the sockets prober): not per target, one instance per agent, scheduled on
// the `sockets.interval`. They keep state between scans (for example an inode -> process cache).

export interface CollectorResult {
  success: boolean;
  durationSeconds: number;
  /** Samples of the collector's declared families (portprobe_listener_up, ...). No target labels. */
  facts: Fact[];
  /** One line for people when the scan failed (e.g. /proc unreadable). */
  error?: string;
  /** Structured details for the status page (listener table ...). */
  details?: Record<string, unknown>;
}

export interface Collector {
  scan(signal: AbortSignal): Promise<CollectorResult>;
  close(): void;
}

export interface CollectorDef<S> {
  name: string;
  metrics: readonly MetricDef[];
  /** JSON Schema of the config section (additionalProperties: false). */
  schema: JsonSchema;
  defaults: S;
  validate?(settings: S): string[];
  create(settings: S, logger: ProbeLogger): Collector;
}

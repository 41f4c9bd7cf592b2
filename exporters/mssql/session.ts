// The login and query rungs on tedious: one login connection per probe, on which @@VERSION and
// every configured query run; tedious's errors mapped to the rung's reason.
import net from 'node:net';
import { readFileSync } from 'node:fs';
import type { Connection, ConnectionConfiguration } from 'tedious';
import { Ladder, ProbeError, classifyError, isShutdown, oneLine } from '../ladder';
import { parseDuration } from '../duration';
import type { ProbeSignal } from '../signal';
import type { Advisory } from './versions';
import { TokenStreamError, containTokenErrors, isTokenStreamError } from './contain';
import {
  PROTOCOL_ADVICE,
  RESET_ADVICE,
  STALLED_LOGIN_ADVICE,
  STALLED_QUERY_ADVICE,
  TIMEOUT_ADVICE,
  TLS_ADVICE,
  loginAdvice,
  refusedAdvice,
  stalledStep,
} from './advice';
import { cellText, rowsToFacts, type QueryRows, type RowSpec } from './rows';
import { QueryResultCache, queryResults } from './cache';
import { packAdvice, packQueries, type PackQuery } from './pack';
import type { Fact, Finding } from '../types';
import type { MssqlSettings } from './settings';

/**
 * tedious, loaded on the first login: it is the agent's largest dependency (its Azure and date
 * libraries alone are megabytes of code), and an agent with no mssql login module never needs it.
 */
function tedious(): typeof import('tedious') {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('tedious') as typeof import('tedious');
}

/** Most bytes one login connection may read (login, @@VERSION and every configured query). */
export const MAX_ANSWER_BYTES = 32 * (1 << 20);
const ANSWER_CAP_CHECK_MS = 20;

const MAX_ROWS = 1000;
const DEFAULT_QUERY_TIMEOUT = '5s';

/** One SQL batch the query rung runs, with the metrics its rows feed. */
export interface PlannedQuery {
  /** The `query` label: the metric name of a configured query, or a pack query's id. */
  id: string;
  sql: string;
  timeoutMs: number;
  /** 0: every probe. */
  minIntervalMs: number;
  metrics: RowSpec[];
  /** Set for pack queries, whose failures are findings rather than the probe's failure. */
  pack?: PackQuery;
}

/** The pack queries, then the configured ones, all on the probe's one login. */
export function planQueries(s: MssqlSettings): PlannedQuery[] {
  const defaultTimeout = parseDuration(DEFAULT_QUERY_TIMEOUT);
  return [
    ...packQueries(s.query_packs ?? []).map((p) => ({
      id: p.id,
      sql: p.sql,
      timeoutMs: defaultTimeout,
      minIntervalMs: 0,
      metrics: p.metrics,
      pack: p,
    })),
    ...s.queries.map((q) => ({
      id: q.name,
      sql: q.query,
      timeoutMs: parseDuration(q.timeout ?? DEFAULT_QUERY_TIMEOUT),
      minIntervalMs: q.min_interval ? parseDuration(q.min_interval) : 0,
      metrics: [q],
    })),
  ];
}

/** The families a module's queries declare at run time (see registerDynamicFamilies). */
export function queryFamilies(s: MssqlSettings): { name: string; help: string; type: string }[] {
  const seen = new Set<string>();
  const out: { name: string; help: string; type: string }[] = [];
  for (const p of packQueries(s.query_packs ?? [])) {
    for (const m of p.metrics) {
      if (!seen.has(m.name)) out.push({ name: m.name, help: m.help, type: m.type });
      seen.add(m.name);
    }
  }
  for (const q of s.queries) out.push({ name: q.name, help: q.help, type: q.type ?? 'gauge' });
  return out;
}

export interface PackFailure {
  query: string;
  /** The server's error number, when it sent one (the first of the request). */
  error?: number;
  message: string;
  advice: string;
}

/** One finding for all failed pack queries of a probe (a finding code is reported once). */
export function packFinding(failures: readonly PackFailure[], total: number): Finding {
  const list = failures.map((f) => `${f.query}${f.error !== undefined ? ` (error ${f.error})` : ''}`).join(', ');
  const first = failures[0];
  return {
    code: 'mssql_pack_query_failed',
    severity: 'warning',
    message: `${failures.length} of ${total} pack queries failed, their series are missing: ${list}; ${first.query}: ${first.message}`,
    advice: [...new Set(failures.map((f) => f.advice))].join(' '),
  };
}

export interface ServerError {
  number: number;
  state: number;
  class: number;
  message: string;
}

/** tedious's connection error codes, mapped to the rung's reason. */
export function mapTediousError(
  err: unknown,
  phase: 'login' | 'query',
  ctx: {
    port: number;
    instance?: string;
    advisory?: Advisory;
    serverError?: ServerError;
    /** A token stream tedious could not parse on this connection (see contain.ts): the real cause. */
    tokenError?: TokenStreamError;
    /** tedious's state when the deadline fired (login), e.g. SentLogin7WithStandardLogin. */
    tediousState?: string;
    /** The query running, for messages. */
    query?: string;
    signal: ProbeSignal;
  },
): ProbeError {
  if (err instanceof AggregateError && err.errors.length > 0) {
    // Several server errors for one request (300 then 297 for a missing permission): the first
    // is the cause, and every message is kept.
    const first = err.errors[0] as { code?: string };
    const text = err.errors.map((x: unknown) => oneLine((x as Error)?.message ?? String(x), 200)).join('; ');
    return mapTediousError(Object.assign(new Error(text), { code: first?.code }), phase, ctx);
  }
  const e = err as { code?: string; message?: string; cause?: unknown; errors?: unknown[] };
  const code = e?.code ?? '';
  const msg = oneLine(e?.message ?? String(err));
  if (ctx.tokenError || isTokenStreamError(err)) {
    const te = ctx.tokenError ?? (err as TokenStreamError);
    return new ProbeError('protocol_error', `${phase}: ${te.message}`, PROTOCOL_ADVICE);
  }
  if (ctx.signal.aborted) {
    if (isShutdown(ctx.signal)) return new ProbeError('aborted', 'probe aborted: agent shutting down');
    // Our own PRELOGIN was answered moments ago: silence now is the service's, not the network's.
    if (phase === 'login') {
      return new ProbeError('stalled', `${stalledStep(ctx.tediousState)} before the deadline`, STALLED_LOGIN_ADVICE);
    }
    return new ProbeError(
      'stalled',
      `no answer to ${ctx.query ?? 'the query'} before the deadline`,
      STALLED_QUERY_ADVICE,
    );
  }
  if (code === 'ELOGIN' && phase === 'login' && !ctx.serverError) {
    // tedious says "Login failed." when the answer ends without LOGINACK; a server that
    // refuses a login always says why in an ERROR token.
    return new ProbeError(
      'protocol_error',
      'the answer to LOGIN7 ended with neither a LOGINACK nor an error message',
      PROTOCOL_ADVICE,
    );
  }
  switch (code) {
    case 'ELOGIN':
    case 'EFEDAUTH': {
      const n = ctx.serverError ? ` (server error ${ctx.serverError.number}, state ${ctx.serverError.state})` : '';
      return new ProbeError('auth_failed', `${msg}${n}`, loginAdvice(ctx.serverError?.number));
    }
    case 'EENCRYPT':
      return new ProbeError('encryption_mismatch', msg, 'Set encrypt: true (the server forces encryption).');
    case 'ETIMEOUT':
      return phase === 'query'
        ? new ProbeError(
            'query_error',
            msg,
            'The query ran past its timeout: raise queries[].timeout or make it cheaper.',
          )
        : new ProbeError('timeout', msg, TIMEOUT_ADVICE);
    case 'EINSTLOOKUP':
      return new ProbeError('instance_not_found', msg);
    case 'ETDS':
    case 'EINTERFACENOTSUPP':
      return new ProbeError('protocol_error', msg);
    case 'EREQUEST': {
      return new ProbeError(
        'query_error',
        msg,
        'Run the query by hand with the same login (permissions, object names).',
      );
    }
    case 'ECANCEL':
      return new ProbeError(phase === 'query' ? 'query_error' : 'timeout', msg);
    case 'ECLOSE':
    case 'ESOCKET': {
      const c = classifyError(e.cause ?? err, ctx.signal);
      if (ctx.advisory?.refusesRemote) {
        return new ProbeError('version_refuses_remote', msg, ctx.advisory.message);
      }
      if (c.reason === 'refused') return new ProbeError('refused', msg, refusedAdvice(ctx.port, ctx.instance));
      if (c.reason === 'timeout') return new ProbeError('timeout', msg, TIMEOUT_ADVICE);
      if (c.reason === 'tls_error' || /certificate|ssl|tls/i.test(msg)) {
        return new ProbeError('tls_error', msg, TLS_ADVICE);
      }
      if (c.reason === 'dns_error' || c.reason === 'unreachable') return new ProbeError(c.reason, msg);
      return new ProbeError('reset', msg, RESET_ADVICE);
    }
    case 'EALREADYCONNECTED':
    case 'EINVALIDSTATE':
    case 'EPARAM':
      return new ProbeError('internal_error', msg);
    default: {
      const c = classifyError(err, ctx.signal);
      if (c.reason === 'tls_error') return new ProbeError('tls_error', c.message, TLS_ADVICE);
      if (c.reason === 'reset') return new ProbeError('reset', c.message, RESET_ADVICE);
      return new ProbeError(
        c.reason === 'internal_error' && phase === 'query' ? 'query_error' : c.reason,
        c.message,
        c.advice,
      );
    }
  }
}

/** tedious's connection settings from the module's. Reads ca_file. */
function tediousConfig(
  s: MssqlSettings,
  address: string,
  host: string,
  port: number,
  remainingMs: number,
): ConnectionConfiguration {
  const password = s.password?.reveal() ?? '';
  const authentication: ConnectionConfiguration['authentication'] = s.domain
    ? { type: 'ntlm', options: { userName: s.username as string, password, domain: s.domain } }
    : { type: 'default', options: { userName: s.username as string, password } };
  const serverName = s.server_name ?? (net.isIP(host) ? undefined : host);
  return {
    server: address,
    authentication,
    options: {
      port,
      encrypt: s.encrypt,
      trustServerCertificate: s.trust_server_certificate,
      // Past the probe's deadline: the deadline (an abort that records tedious's state) ends a
      // login first, so a stalled step is named rather than reported as tedious's timeout.
      connectTimeout: Math.max(100, remainingMs) + 1000,
      requestTimeout: 0,
      cancelTimeout: 1000,
      appName: 'portprobe',
      ...(serverName ? { serverName } : {}),
      ...(s.database ? { database: s.database } : {}),
      ...(s.ca_file ? { cryptoCredentialsDetails: { ca: readFileSync(s.ca_file) } } : {}),
    },
  };
}

export async function loginAndQuery(
  l: Ladder,
  signal: ProbeSignal,
  s: MssqlSettings,
  address: string,
  host: string,
  port: number,
  advisory: Advisory,
  /** Target and module names: the scope of min_interval results. */
  scope: { target: string; module: string },
): Promise<void> {
  let serverError: ServerError | undefined;
  let tokenError: TokenStreamError | undefined;
  let tediousState: string | undefined;
  let query: string | undefined;
  /** The server's error messages for the running query, first first (the cause; later ones follow from it). */
  let queryErrors: ServerError[] = [];
  const mapCtx = (): Parameters<typeof mapTediousError>[2] => ({
    port,
    instance: s.instance,
    advisory,
    serverError,
    tokenError,
    tediousState,
    query,
    signal,
  });
  let connection: Connection | undefined;
  const onAbort = (): void => {
    // Which step the deadline stopped (tedious keeps it as state.name): the stalled rung's message names it.
    tediousState = (connection as unknown as { state?: { name?: string } } | undefined)?.state?.name;
    connection?.close();
  };
  signal.addEventListener('abort', onAbort, { once: true });
  // tedious parses answers as they stream in, but keeps a PLP value (nvarchar(max) and the like)
  // whole until its last chunk: a server that never ends one would grow the heap until the
  // deadline. The bytes read on tedious's socket are capped instead; past the cap the connection
  // is ended as a protocol error.
  const cap = setInterval(() => {
    const sock = (connection as unknown as { socket?: net.Socket } | undefined)?.socket;
    if (sock && sock.bytesRead > MAX_ANSWER_BYTES && !tokenError) {
      tokenError = new TokenStreamError(
        `the server sent more than ${MAX_ANSWER_BYTES / (1 << 20)} MiB on one connection`,
      );
      l.debug(tokenError.message);
      sock.destroy(tokenError);
      connection?.close();
    }
  }, ANSWER_CAP_CHECK_MS);
  try {
    const conn = await l.phase('login', () => {
      // Built inside the rung so that a bad ca_file or a rejected option fails the login rung.
      const c = new (tedious().Connection)(tediousConfig(s, address, host, port, l.remainingMs()));
      connection = c;
      const contained = containTokenErrors(c, (err) => {
        tokenError ??= err;
        l.debug(`token stream error: ${oneLine(err.parserMessage)}`);
      });
      if (!contained) {
        throw new ProbeError(
          'internal_error',
          'this tedious version has no Connection#createTokenStreamParser: a malformed server answer could end the agent, so no login is attempted',
          'Install the tedious version this portprobe release was built with.',
        );
      }
      c.on('errorMessage', (m: ServerError) => {
        serverError = { number: m.number, state: m.state, class: m.class, message: oneLine(m.message) };
        if (queryErrors.length < 10) queryErrors.push(serverError);
        l.debug(`server error ${m.number} state ${m.state} class ${m.class}: ${oneLine(m.message)}`);
        l.details.serverError = serverError;
      });
      // Late socket errors after a failure must not become unhandled events.
      c.on('error', (err: Error) => l.debug(`connection error: ${oneLine(err.message)}`));
      return new Promise<Connection>((resolve, reject) => {
        c.once('connect', (err?: Error) => (err ? reject(mapTediousError(err, 'login', mapCtx())) : resolve(c)));
        c.once('end', () =>
          reject(mapTediousError(Object.assign(new Error('connection closed'), { code: 'ECLOSE' }), 'login', mapCtx())),
        );
        c.connect();
      });
    });
    conn.removeAllListeners('end');
    serverError = undefined;
    await l.phase('query', async () => {
      query = 'SELECT @@VERSION';
      // No timeout of its own: the probe's deadline ends it, and silence then is "stalled".
      const rows = await runQuery(conn, query, 0, l, 'version', mapCtx).catch((err: unknown) => {
        l.fact('probe_mssql_query_success', 0, { query: 'version' });
        throw err;
      });
      l.fact('probe_mssql_query_success', 1, { query: 'version' });
      const text = cellText(rows.rows[0]?.[0]);
      l.details.versionString = oneLine(text.split('\n')[0] ?? '', 200);
      const packFailures: PackFailure[] = [];
      const plan = planQueries(s);
      for (const q of plan) {
        serverError = undefined;
        queryErrors = [];
        query = `query ${q.id}`;
        const key = QueryResultCache.key(scope.target, scope.module, q.id, q.sql);
        const cached = q.minIntervalMs > 0 ? queryResults.fresh(key, q.minIntervalMs) : undefined;
        if (cached) {
          // Within min_interval: the last result again, with its age, and no round trip.
          l.fact('probe_mssql_query_success', 1, { query: q.id });
          l.fact('probe_mssql_query_rows_skipped', cached.skipped, { query: q.id });
          l.fact('probe_mssql_query_result_age_seconds', (queryResults.clock() - cached.at) / 1000, { query: q.id });
          for (const f of cached.facts) l.facts.push(f);
          l.debug(`query ${q.id}: result from ${(queryResults.clock() - cached.at) / 1000}s ago (min_interval)`);
          continue;
        }
        const timeoutMs = Math.max(1, Math.min(q.timeoutMs, l.remainingMs()));
        try {
          const r = await runQuery(conn, q.sql, timeoutMs, l, q.id, mapCtx);
          // Converted before anything is recorded: a query either succeeds with its samples or fails.
          const facts: Fact[] = [];
          let skipped = 0;
          for (const m of q.metrics) {
            const out = rowsToFacts(m, r);
            for (const f of out.facts) facts.push(f);
            skipped += out.skipped;
          }
          l.fact('probe_mssql_query_success', 1, { query: q.id });
          l.fact('probe_mssql_query_rows_skipped', skipped, { query: q.id });
          for (const f of facts) l.facts.push(f);
          if (q.minIntervalMs > 0) {
            queryResults.store(key, facts, skipped);
            l.fact('probe_mssql_query_result_age_seconds', 0, { query: q.id });
          }
        } catch (err) {
          l.fact('probe_mssql_query_success', 0, { query: q.id });
          const pe = err instanceof ProbeError ? err : mapTediousError(err, 'query', mapCtx());
          l.debug(`query ${q.id} failed: ${pe.message}`);
          if (signal.aborted) throw pe;
          // The connection is gone after a stream that cannot be parsed: that is the verdict.
          if (pe.reason === 'protocol_error') throw pe;
          if (q.pack) {
            // A pack query fails alone: it joins the finding, and the probe and the other queries go on.
            packFailures.push({
              query: q.id,
              error: queryErrors[0]?.number,
              message: pe.message,
              advice: packAdvice(q.pack, queryErrors[0]?.number),
            });
            continue;
          }
          l.fail('query', 'query_error', `query ${q.id}: ${pe.message}`, pe.advice);
        }
      }
      if (packFailures.length > 0) {
        l.details.packFailures = packFailures;
        l.finding(packFinding(packFailures, plan.filter((q) => q.pack).length));
      }
    });
  } finally {
    clearInterval(cap);
    signal.removeEventListener('abort', onAbort);
    connection?.close();
  }
}

function runQuery(
  connection: Connection,
  sql: string,
  timeoutMs: number,
  l: Ladder,
  name: string,
  mapCtx: () => Parameters<typeof mapTediousError>[2],
): Promise<QueryRows> {
  const t0 = performance.now();
  return new Promise<QueryRows>((resolve, reject) => {
    const out: QueryRows = { columns: [], rows: [] };
    let tooMany = false;
    const request = new (tedious().Request)(sql, (err) => {
      l.fact('probe_mssql_query_duration_seconds', (performance.now() - t0) / 1000, { query: name });
      if (err) reject(mapTediousError(err, 'query', mapCtx()));
      else if (tooMany)
        reject(
          new ProbeError('query_error', `more than ${MAX_ROWS} rows`, 'Aggregate the query so it returns fewer rows.'),
        );
      else resolve(out);
    });
    request.setTimeout(timeoutMs);
    request.on('columnMetadata', (cols: { colName: string }[] | Record<string, { colName: string }>) => {
      out.columns = (Array.isArray(cols) ? cols : Object.values(cols)).map((c) => c.colName);
    });
    request.on('row', (cols: { value: unknown }[]) => {
      if (out.rows.length >= MAX_ROWS) {
        tooMany = true;
        return;
      }
      out.rows.push(cols.map((c) => c.value));
    });
    connection.execSqlBatch(request);
  });
}

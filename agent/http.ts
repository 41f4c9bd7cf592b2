// HTTP endpoints: /metrics (cached results), /probe (one configured target now), health,
// readiness, reload. Handlers never probe inline for /metrics and never throw at the client.
import type { Express, NextFunction, Request, Response } from 'express';
import Module from 'node:module';
import path from 'node:path';
import type { Agent } from './agent';
import type { AgentLogger } from './logger';
import { renderStatusPage } from './status/page';
import { findingLines, findingsSummary, infoFacts } from './status/findings';
import { adviceFor } from '../exporters/advice';
import type { ProbeResult } from '../exporters/types';
import type { BasicAuth } from './web-config';
import { sanAllowed } from './san';
import type { TLSSocket } from 'node:tls';
import { quoteInput } from './quote';

/**
 * express, with its `qs` dependency loaded on first use. express (and body-parser, which
 * `express()` loads for express.urlencoded) require qs at start, but call it only for the
 * "extended" query parser and urlencoded bodies, neither of which the agent uses ('query parser'
 * is 'simple', no route reads a body); qs and what it requires in turn are some 30 ms of CPU at
 * start, about 40 % of express's own cost (BENCHMARKS.md, "Performance, second round"). Until
 * something asks qs for anything, a stand-in sits in the module cache under qs's own path; the
 * first property read loads the real qs and answers from it.
 */
function loadExpress(): typeof import('express') {
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded once, after the stand-in */
  const file = require.resolve('qs', { paths: [path.dirname(require.resolve('express'))] });
  if (!require.cache[file]) {
    let real: Record<string | symbol, unknown> | undefined;
    const load = (): Record<string | symbol, unknown> => {
      if (!real) {
        delete require.cache[file];
        real = require(file) as Record<string | symbol, unknown>;
      }
      return real;
    };
    const standIn = new Module(file);
    standIn.filename = file;
    standIn.loaded = true;
    standIn.exports = new Proxy({}, { get: (_t, key) => load()[key], has: (_t, key) => key in load() });
    require.cache[file] = standIn;
  }
  return require('express') as typeof import('express');
  /* eslint-enable @typescript-eslint/no-require-imports */
}
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface HttpOptions {
  agent: Agent;
  logger: AgentLogger;
  /** Called by POST /-/reload; returns the reload outcome (or a promise of it). */
  reload: () => { ok: boolean; errors: string[] } | Promise<{ ok: boolean; errors: string[] }>;
  /** Most /probe requests running at once; more get 503 so the scheduler keeps its slots. */
  maxConcurrentProbes?: number;
  /** Subtracted from Prometheus' scrape timeout, as blackbox_exporter does. */
  scrapeTimeoutOffsetSeconds?: number;
  /** Shown on the status page. */
  version?: string;
  /** Extra routes mounted before the 404 handler. */
  extraRoutes?: (app: Express) => void;
  /** From --web.config.file: basic auth, response headers, client certificate rules. */
  web?: {
    auth?: BasicAuth;
    headers?: Record<string, string>;
    /** Whether the server asked for client certificates (verify when one is given). */
    verifyClientCerts?: boolean;
    clientAllowedSans?: readonly string[];
  };
}

/** The deadline for a /probe request in ms, or an error message. Pure. */
export function probeTimeoutMs(header: string | undefined, offsetSeconds: number): number | undefined | string {
  if (header === undefined || header === '') return undefined;
  const secs = Number(header);
  if (!Number.isFinite(secs) || secs <= 0) {
    return `X-Prometheus-Scrape-Timeout-Seconds: ${quoteInput(header, 40)} is not a positive number`;
  }
  const usable = secs - offsetSeconds > 0 ? secs - offsetSeconds : secs;
  return Math.round(usable * 1000);
}

function oneParam(req: Request, name: string): string | undefined | { error: string } {
  const v = req.query[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') return { error: `parameter "${name}" must be given once` };
  return v;
}

function badRequest(res: Response, msg: string, status = 400): void {
  // Whatever was echoed is quoted already; a control character left over still cannot split the line.
  const flat = msg.replace(/[\x00-\x1f\x7f]/g, ' ');
  res.status(status).type('text/plain; charset=utf-8').send(`${flat}\n`);
}

export function createApp(opts: HttpOptions): Express {
  const { agent, logger } = opts;
  const app = loadExpress()();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');
  const offset = opts.scrapeTimeoutOffsetSeconds ?? 0.5;
  let probesRunning = 0;

  // Every answer is plain text or a page with its own policy: no browser may guess otherwise.
  app.use((_req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    next();
  });

  // Every request passes the web config's checks first; nothing is served to the unauthorised.
  const web = opts.web;
  if (web) {
    app.use(async (req, res, next) => {
      for (const [k, v] of Object.entries(web.headers ?? {})) res.setHeader(k, v);
      const sock = req.socket as TLSSocket;
      if (web.verifyClientCerts && typeof sock.getPeerCertificate === 'function') {
        const cert = sock.getPeerCertificate();
        const presented = cert && Object.keys(cert).length > 0;
        if (presented && !sock.authorized) return badRequest(res, 'client certificate not trusted', 403);
        if (presented && !sanAllowed(cert.subjectaltname, web.clientAllowedSans ?? [])) {
          return badRequest(res, 'client certificate not allowed', 403);
        }
      }
      if (web.auth?.enabled) {
        const outcome = await web.auth.check(req.get('authorization'), req.socket.remoteAddress ?? '');
        if (outcome === 'busy') {
          // Too many password checks waiting (a flood of bad passwords): no bcrypt work for this
          // one. Credentials already found good never get here.
          res.setHeader('Retry-After', '1');
          return badRequest(res, 'too many authentication attempts in progress; try again', 503);
        }
        if (outcome !== 'ok') {
          res.setHeader('WWW-Authenticate', 'Basic realm="portprobe"');
          return badRequest(res, 'Unauthorized', 401);
        }
      }
      next();
      return undefined;
    });
  }

  app.get('/metrics', async (req, res) => {
    if (/\bgzip\b/.test(req.get('accept-encoding') ?? '')) {
      const body = await agent.metricsGzip();
      res.setHeader('Content-Type', EXPOSITION_CONTENT_TYPE);
      res.setHeader('Content-Encoding', 'gzip');
      res.setHeader('Vary', 'Accept-Encoding');
      res.end(body);
    } else {
      const { body: text, release } = await agent.metricsBody();
      res.setHeader('Content-Type', EXPOSITION_CONTENT_TYPE);
      // The socket may still hold the buffer after end(): give it back when the response is done.
      res.once('close', release);
      res.end(text);
    }
  });

  // Express answers HEAD with the GET handler; for /probe that would run a probe whose result
  // nobody can read. HEAD gets 405 before any probe starts.
  app.head('/probe', (_req, res) => {
    res.status(405).setHeader('Allow', 'GET').type('text/plain').send('method not allowed\n');
  });
  app.get('/probe', async (req, res) => {
    const target = oneParam(req, 'target');
    const module = oneParam(req, 'module');
    const debug = oneParam(req, 'debug');
    for (const v of [target, module, debug]) {
      if (typeof v === 'object') return badRequest(res, v.error);
    }
    if (typeof target !== 'string' || target === '') return badRequest(res, 'parameter "target" is required');
    const timeout = probeTimeoutMs(req.get('x-prometheus-scrape-timeout-seconds'), offset);
    if (typeof timeout === 'string') return badRequest(res, timeout);
    if (debug !== undefined && debug !== 'true' && debug !== 'false') {
      return badRequest(res, 'parameter "debug" must be true or false');
    }
    const maxProbes = opts.maxConcurrentProbes ?? agent.maxConcurrentProbes;
    if (probesRunning >= maxProbes) {
      return badRequest(res, `too many /probe requests in flight (limit ${maxProbes}); try again`, 503);
    }
    probesRunning++;
    try {
      const out = await agent.probeNow(target, module as string | undefined, timeout);
      if ('error' in out) return badRequest(res, out.error, out.status);
      if (debug === 'true') {
        // The prober names the advice; the module is the one probeNow ran (asked for, or the target's).
        const cfg = agent.config;
        const moduleName = (module as string | undefined) ?? cfg?.targets.find((t) => t.name === target)?.module;
        const prober = moduleName === undefined ? undefined : cfg?.modules.get(moduleName)?.prober;
        res.type('text/plain; charset=utf-8').send(debugText(out.result, out.text, prober));
      } else {
        res.setHeader('Content-Type', EXPOSITION_CONTENT_TYPE);
        res.end(out.text);
      }
      return undefined;
    } finally {
      probesRunning--;
    }
  });

  app.get('/-/healthy', (_req, res) => {
    res.type('text/plain').send('portprobe is healthy.\n');
  });
  app.get('/-/ready', (_req, res) => {
    if (agent.ready) res.type('text/plain').send('portprobe is ready.\n');
    else res.status(503).type('text/plain').send('portprobe is not ready.\n');
  });
  app.post('/-/reload', async (_req, res) => {
    const out = await opts.reload();
    if (out.ok) res.type('text/plain').send('config reloaded\n');
    else
      res
        .status(400)
        .type('text/plain')
        .send(`config rejected; the previous config keeps running:\n${out.errors.join('\n')}\n`);
  });
  for (const path of ['/-/reload']) {
    app.all(path, (_req, res) => {
      res.status(405).setHeader('Allow', 'POST').type('text/plain').send('use POST\n');
    });
  }
  for (const path of ['/metrics', '/probe', '/-/healthy', '/-/ready']) {
    const allow = path === '/probe' ? 'GET' : 'GET, HEAD';
    app.all(path, (_req, res) => {
      res.status(405).setHeader('Allow', allow).type('text/plain').send('method not allowed\n');
    });
  }

  app.get('/', (_req, res) => {
    // The page has no script of its own; the policy makes sure nothing a peer sent can run.
    res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
    res.type('html').send(renderStatusPage(agent, opts.version ?? ''));
  });
  if (opts.extraRoutes) opts.extraRoutes(app);

  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found\n');
  });
  // Express 5 forwards rejected promises here; answer 500 without details and keep running.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: number }).status;
    if (status && status >= 400 && status < 500) {
      badRequest(res, 'bad request', status);
      return;
    }
    logger.error('HTTP handler failed', { path: req.path, err: err instanceof Error ? err.message : String(err) });
    if (!res.headersSent) res.status(500).type('text/plain').send('internal error\n');
    else res.end();
  });
  return app;
}

/**
 * The /probe?debug=true page: the probe's log, its verdict with what to check, its findings and
 * `_info` facts (rendered as diagnose and the status page render them), then the series. Pure.
 */
export function debugText(result: ProbeResult, series: string, prober: string | undefined): string {
  const lines: string[] = [];
  lines.push('Logs for the probe:');
  for (const l of result.log ?? []) lines.push(l);
  lines.push('');
  if (result.failure) {
    const f = result.failure;
    lines.push(`Result: failed at phase ${f.phase}: ${f.reason}: ${f.message}`);
    const advice = prober ? adviceFor(prober, f) : f.advice;
    if (advice) lines.push(`What to check: ${advice}`);
    for (const later of result.laterFailures ?? []) {
      lines.push(`Also failed at phase ${later.phase}: ${later.reason}: ${later.message}`);
      const a = prober ? adviceFor(prober, later) : later.advice;
      if (a) lines.push(`  What to check: ${a}`);
    }
  } else lines.push('Result: probe succeeded');
  const facts = infoFacts(result.facts);
  if (facts.length > 0) {
    lines.push('', 'Found on the way:');
    for (const i of facts) lines.push(`  ${i.name}: ${i.value}`);
  }
  const findings = findingLines(result, '  ');
  lines.push('', findings.length > 0 ? `Findings (${findingsSummary(result)}):` : 'Findings: none');
  lines.push(...findings);
  lines.push('', 'Metrics that would have been returned:', series);
  return `${lines.join('\n')}\n`;
}

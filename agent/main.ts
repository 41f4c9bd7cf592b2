#!/usr/bin/env -S node --max-semi-space-size=4 --heap-growing-percent=50
// Wiring only: flags, logger, first config load, HTTP, signals.
import http from 'node:http';
import net from 'node:net';
import type { WebConfig } from './web-config';
import type { BuildInfo } from './agent';
import { FlagError, helpText, parseFlags, parseListenAddress, type Flags } from './flags';
import { lastResort } from './last-resort';
import { createLogger, type AgentLogger } from './logger';
import { ConfigError, loadConfigFile } from '../config/load';
import { packageVersion } from '../exporters/package-root';

// What a run does not use is not loaded: the web config (its parser and bcrypt worker) only with
// --web.config.file, TLS only with a TLS web config, the CLI commands only when asked for, the
// agent, its HTTP layer (express) and its probers not for --config.check or diagnose.
// Start-up time is module loading first of all (BENCHMARKS.md, "Performance, second round").
/* eslint-disable @typescript-eslint/no-require-imports -- loaded on first use, see above */
const webConfig = (): typeof import('./web-config') => require('./web-config') as typeof import('./web-config');
const https = (): typeof import('node:https') => require('node:https') as typeof import('node:https');
const once = (): typeof import('./cli/once') => require('./cli/once') as typeof import('./cli/once');
const diagnose = (): typeof import('./cli/diagnose') => require('./cli/diagnose') as typeof import('./cli/diagnose');
const agentModule = (): typeof import('./agent') => require('./agent') as typeof import('./agent');
const httpModule = (): typeof import('./http') => require('./http') as typeof import('./http');
const connections = (): typeof import('./connections') => require('./connections') as typeof import('./connections');
/* eslint-enable @typescript-eslint/no-require-imports */

export const BUILD: BuildInfo = {
  version: packageVersion(),
  revision: process.env.PORTPROBE_REVISION ?? 'unknown',
};

/** Connections held at once; at the cap the longest-idle one is closed for a newcomer. */
export const MAX_CONNECTIONS = 512;
/** A TLS client has this long from its TCP connect to finish the handshake. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;
/** On SIGTERM, responses in flight get this long to be written (slow readers included). */
export const SHUTDOWN_GRACE_MS = 25_000;

/** Exit codes: 0 ok, 1 runtime failure, 2 bad flags or config. */
export async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === 'diagnose') return diagnose().runDiagnose(argv.slice(1));
  let flags: Flags;
  try {
    flags = parseFlags(argv);
  } catch (e) {
    if (e instanceof FlagError) {
      process.stderr.write(`portprobe: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (flags.help) {
    process.stdout.write(helpText());
    return 0;
  }
  if (flags.version) {
    process.stdout.write(`portprobe ${BUILD.version} (revision ${BUILD.revision}, node ${process.version})\n`);
    return 0;
  }
  if (flags.configCheck) {
    try {
      const cfg = loadConfigFile(flags.configFile);
      process.stdout.write(`${flags.configFile}: OK (${cfg.modules.size} modules, ${cfg.targets.length} targets)\n`);
      return 0;
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${e.errors.join('\n')}\n`);
        return 2;
      }
      throw e;
    }
  }
  let web: WebConfig | undefined;
  if (flags.webConfigFile !== undefined) {
    try {
      web = webConfig().loadWebConfig(flags.webConfigFile);
    } catch (e) {
      if (e instanceof ConfigError) {
        process.stderr.write(`${e.errors.join('\n')}\n`);
        return 2;
      }
      throw e;
    }
  }

  const logger = createLogger(flags.logLevel, flags.logFormat);
  if (flags.once) return once().runOnce(flags, logger, BUILD);
  return serve(flags, logger, web);
}

async function serve(flags: Flags, logger: AgentLogger, web: WebConfig | undefined): Promise<number> {
  // Last-resort guards, before the first probe: an error no handler caught (an 'error' event of a
  // library's socket nobody listened to, a rejection nobody awaited) is counted and logged once per
  // stack, and the agent keeps serving the other targets instead of dying with one hostile peer.
  process.on('uncaughtException', (err) => lastResort('uncaught_exception', err, logger));
  process.on('unhandledRejection', (reason) => lastResort('unhandled_rejection', reason, logger));
  const agent = new (agentModule().Agent)({
    configFile: flags.configFile,
    logger,
    build: BUILD,
    shard: { index: flags.shardIndex, count: flags.shardCount },
  });
  // The socket scan's first run waits until the server listens (Scheduler.holdCollectors).
  agent.scheduler.holdCollectors();
  const first = agent.reload();
  if (!first.ok) {
    process.stderr.write(`${first.errors.join('\n')}\n`);
    await agent.stop();
    return 2;
  }
  for (const what of web?.ignored ?? []) logger.warn('web config setting accepted but not applied', { setting: what });
  const app = httpModule().createApp({
    agent,
    logger,
    reload: () => agent.reloadAsync(),
    version: BUILD.version,
    web: web && {
      auth: new (webConfig().BasicAuth)(web.users),
      headers: web.headers,
      verifyClientCerts: web.tls?.requestCert ?? false,
      clientAllowedSans: web.clientAllowedSans,
    },
  });
  const listen = parseListenAddress(flags.listenAddress) as { host?: string; port: number };
  // Limits so a scraper storm or a slow client cannot starve the scheduler.
  const serverOptions = {
    maxHeaderSize: 16384,
    requestTimeout: 60_000,
    headersTimeout: 10_000,
    connectionsCheckingInterval: 1000,
  };
  const server = web?.tls
    ? https().createServer({ ...serverOptions, ...web.tls, handshakeTimeout: TLS_HANDSHAKE_TIMEOUT_MS }, app)
    : http.createServer(serverOptions, app);
  // At most MAX_CONNECTIONS; at the cap the longest-idle connection makes room (connections.ts),
  // so idle, slow and silent clients cannot keep a scrape out.
  const guard = new (connections().ConnectionGuard)(MAX_CONNECTIONS);
  guard.attach(server);
  server.keepAliveTimeout = 65_000;
  server.maxRequestsPerSocket = 1000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  }).catch((e: NodeJS.ErrnoException) => {
    logger.error('cannot listen', { address: flags.listenAddress, err: e.code ?? e.message });
    throw e;
  });
  agent.scheduler.releaseCollectors();
  const addr = server.address();
  logger.info('listening', {
    address: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : flags.listenAddress,
    tls: web?.tls !== undefined,
    version: BUILD.version,
  });

  process.on('SIGHUP', () => {
    logger.info('SIGHUP: reloading config');
    void agent.reloadAsync();
  });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info('shutting down', { signal, ...guard.stats });
      const hard = setTimeout(() => {
        logger.warn('shutdown took too long; exiting');
        resolve(1);
      }, SHUTDOWN_GRACE_MS + 2000);
      hard.unref();
      // Stop accepting. Probes in flight are aborted (their /probe responses answer at once);
      // every response in flight is written and read to the end, however slowly its client reads,
      // within SHUTDOWN_GRACE_MS (connections.ts drain). Exit as soon as the last client is gone.
      // net.Server's close only stops listening: http.Server's own also destroys every connection
      // whose request has been read, including those whose response is still being written.
      net.Server.prototype.close.call(server);
      const drained = guard.drain(SHUTDOWN_GRACE_MS);
      void Promise.all([agent.stop(), drained]).then(([, how]) => {
        if (how === 'grace_expired')
          logger.warn('responses still being written when the shutdown grace ran out; closed', {
            grace_seconds: SHUTDOWN_GRACE_MS / 1000,
          });
        clearTimeout(hard);
        resolve(0);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`portprobe: fatal: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

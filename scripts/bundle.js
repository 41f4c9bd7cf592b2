// Writes the agent's entry as one file, dist/agent/bundle.js: agent/main.ts and every module it
// loads, ours and our dependencies', except the ones it loads only for some configurations or
// commands (below); then dist/agent/main.js, which starts it with V8's code cache of it
// (dist/agent/bundle.cache, written by running the agent once, see train()). Run by `npm run build`
// after tsc, which writes the rest of dist/ (the socket scan's worker, the config loader's child
// process and the generated config validator are started or loaded by path from there:
// exporters/package-root.ts, ownModule).
//
// Why: at start-up node resolves, reads and compiles some 370 modules one by one; one file is
// read once, and its code comes from the cache (BENCHMARKS.md, "Start-up, bundled").
//
// Two dependencies of express are replaced, inside the bundle only, by stand-ins that load the real
// module from express's folder on first use: body-parser (express reads its parsers at load time;
// the agent parses no request body) and mime-types (its 200 kB database is read at load time;
// /metrics sets its Content-Type itself, the other routes load it when they first answer); qs is
// taken from there too, where agent/http.ts defers it the same way.
'use strict';
const { spawn } = require('node:child_process');
const { chmodSync, existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const esbuild = require('esbuild');

const root = path.join(__dirname, '..');

/**
 * Loaded from node_modules at run time, not bundled: what a run uses only for some modules or
 * commands (tedious for mssql login, systeminformation where no socket table is readable,
 * node-cron for cron schedules, bcryptjs for basic auth, ajv when the generated validator is
 * stale).
 */
const EXTERNAL = ['tedious', 'systeminformation', 'node-cron', 'bcryptjs', 'ajv'];

/** Stand-in sources; `load` is the expression that loads the real module, evaluated on first use. */
const standIn = {
  /** A function module. */
  call: (load) => `let real;\nmodule.exports = (...args) => (real || (real = ${load}))(...args);`,
  /** A module of functions `names`. */
  callEach: (load, names) =>
    `let real;\nconst load = () => real || (real = ${load});\n` +
    `for (const name of ${JSON.stringify(names)}) exports[name] = (...args) => load()[name](...args);`,
  /** A class `name`, constructed with new. */
  construct: (name, load) =>
    `let Real;\nmodule.exports = function ${name}(...args) {\n  return new (Real || (Real = ${load}))(...args);\n};`,
};

/** A dependency of express, loaded as express would load it: from express's installed folder. */
const OF_EXPRESS = `const { dirname } = require('node:path');
const ofExpress = (name) => require(require.resolve(name, { paths: [dirname(require.resolve('express'))] }));
`;

/**
 * Modules of express's that the bundle takes from node_modules at run time, by name -> the source
 * that stands in for them inside the bundle.
 */
const FROM_EXPRESS = {
  // express copies json, raw, text and urlencoded at load time: functions that load on call.
  'body-parser': OF_EXPRESS + standIn.callEach("ofExpress('body-parser')", ['json', 'raw', 'text', 'urlencoded']),
  // Read only inside functions by express, send, type-is and accepts.
  'mime-types': `${OF_EXPRESS}let real;
const load = () => real || (real = ofExpress('mime-types'));
module.exports = new Proxy({}, { get: (_t, key) => load()[key], has: (_t, key) => key in load() });`,
  // Loaded when express is, from the module cache, where agent/http.ts has put its own stand-in.
  qs: `${OF_EXPRESS}module.exports = ofExpress('qs');`,
};

/**
 * Bundled, but run only when first used: modules that load node's TLS, crypto or assert at start
 * for something the agent does not do at start. By who requires them (a pattern on the importer's
 * path) and what -> the stand-in's source; `real:` names the module itself.
 */
const DEFERRED = [
  {
    // prom-client's Pushgateway loads node:https (and with it node:tls); the agent never pushes.
    importer: /node_modules\/prom-client\/index\.js$/,
    spec: './lib/pushgateway',
    source: standIn.construct('Pushgateway', "require('real:prom-client/lib/pushgateway')"),
  },
  {
    // express and send compute ETags with node:crypto; /metrics sends none.
    importer: /node_modules\/(express\/lib\/utils|send\/index)\.js$/,
    spec: 'etag',
    source: standIn.call("require('real:etag')"),
  },
  {
    // express signs cookies with node:crypto; the agent sets none.
    importer: /node_modules\/express\/lib\/response\.js$/,
    spec: 'cookie-signature',
    source: standIn.callEach("require('real:cookie-signature')", ['sign', 'unsign']),
  },
  {
    // pino's destination checks one argument with node:assert, at open.
    importer: /node_modules\/sonic-boom\/index\.js$/,
    spec: 'assert',
    source: standIn.call("require('real:assert')"),
  },
  {
    // pino's transports (log shipping in a worker thread, with node:assert); the agent logs to stderr.
    importer: /node_modules\/pino\/lib\/transport\.js$/,
    spec: 'thread-stream',
    source: standIn.construct('ThreadStream', "require('real:thread-stream')"),
  },
];

/** Puts FROM_EXPRESS's and DEFERRED's stand-ins in the bundle in place of those modules. */
const standIns = {
  name: 'stand-ins',
  setup(build) {
    const filter = new RegExp(`^(${Object.keys(FROM_EXPRESS).join('|')})$`);
    build.onResolve({ filter }, (args) => ({ path: args.path, namespace: 'stand-in' }));
    for (const [i, d] of DEFERRED.entries()) {
      const spec = new RegExp(`^${d.spec.replace(/[./]/g, '\\$&')}$`);
      build.onResolve({ filter: spec }, (args) =>
        d.importer.test(args.importer) ? { path: String(i), namespace: 'deferred' } : undefined,
      );
    }
    // config/validator.ts's generated validator, written to dist/config/ before this step.
    build.onResolve({ filter: /^\.\/validator\.generated$/ }, (args) =>
      /config[/\\]validator\.ts$/.test(args.importer)
        ? { path: path.join(root, 'dist', 'config', 'validator.generated.js') }
        : undefined,
    );
    build.onResolve({ filter: /^real:/ }, (args) =>
      build.resolve(args.path.slice('real:'.length), { kind: args.kind, resolveDir: root }),
    );
    build.onLoad({ filter: /.*/, namespace: 'stand-in' }, (args) => ({
      contents: FROM_EXPRESS[args.path],
      loader: 'js',
    }));
    build.onLoad({ filter: /.*/, namespace: 'deferred' }, (args) => ({
      contents: DEFERRED[Number(args.path)].source,
      loader: 'js',
      resolveDir: root,
    }));
  },
};

const dir = path.join(root, 'dist', 'agent');
const BUNDLE = path.join(dir, 'bundle.js');
const CACHE = path.join(dir, 'bundle.cache');
const MAIN = path.join(dir, 'main.js');

/** The launcher line of agent/main.ts (node flags included): main.js keeps it. */
function launcherLine() {
  const first = readFileSync(path.join(root, 'agent', 'main.ts'), 'utf8').split('\n', 1)[0];
  if (!first.startsWith('#!')) throw new Error('agent/main.ts has no #! line');
  return first;
}

/**
 * main.js: compiles bundle.js as node would a CommonJS module (same wrapper, its own require
 * rooted at bundle.js, this module as its `module`, so `require.main === module` holds when
 * main.js is run), with the code cache when it was made from this very bundle.js (its length and
 * CRC-32 in the cache's first 8 bytes) by this node with these flags (V8 checks that and rejects
 * it otherwise, and the bundle is then compiled from source). PORTPROBE_CODE_CACHE=0 turns the
 * cache off; PORTPROBE_CODE_CACHE_WRITE=<file> writes one on SIGUSR2 (the build's training run);
 * PORTPROBE_CODE_CACHE_REPORT=1 says on stderr whether it was used, rejected (another node or other
 * flags), stale (another bundle.js), absent or off.
 */
const LOADER = `
// Generated by scripts/bundle.js; starts the bundled agent, bundle.js.
'use strict';
const { readFileSync, renameSync, writeFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const path = require('node:path');
const { Script } = require('node:vm');
const { crc32 } = require('node:zlib');

const file = path.join(__dirname, 'bundle.js');

/** Compiles bundle.js; the file's bytes and the cache are garbage once this returns. */
function compile() {
  const text = readFileSync(file);
  const stamp = Buffer.alloc(8);
  stamp.writeUInt32LE(text.length, 0);
  stamp.writeUInt32LE(crc32(text), 4);
  let cachedData;
  let cache = 'off';
  if (process.env.PORTPROBE_CODE_CACHE !== '0') {
    try {
      const bytes = readFileSync(path.join(__dirname, 'bundle.cache'));
      if (bytes.length > 8 && bytes.subarray(0, 8).equals(stamp)) cachedData = bytes.subarray(8);
      cache = cachedData ? 'used' : 'stale';
    } catch {
      cache = 'absent';
    }
  }
  const source = \`(function (exports, require, module, __filename, __dirname) {\${text.toString('utf8')}\\n})\`;
  const script = new Script(source, { filename: file, cachedData });
  if (cachedData && script.cachedDataRejected) cache = 'rejected';
  if (process.env.PORTPROBE_CODE_CACHE_REPORT === '1') process.stderr.write(\`code cache: \${cache}\\n\`);
  const out = process.env.PORTPROBE_CODE_CACHE_WRITE;
  if (out) {
    process.once('SIGUSR2', () => {
      writeFileSync(\`\${out}.part\`, Buffer.concat([stamp, script.createCachedData()]));
      renameSync(\`\${out}.part\`, out);
    });
  }
  return script;
}

compile().runInThisContext()(module.exports, createRequire(file), module, file, __dirname);
`;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * The training run: the agent, with main.js's node flags, serves the built-in config until it has
 * answered GET /metrics; then, on SIGUSR2, it writes the code cache of what it has compiled up to
 * there (start-up and a scrape, not the rest of its life), and stops on SIGTERM.
 */
async function train() {
  const flags = launcherLine()
    .replace(/^#!\/usr\/bin\/env -S node/, '')
    .trim()
    .split(/\s+/)
    .filter(Boolean);
  const port = await freePort();
  const tmp = `${CACHE}.tmp`;
  const proc = spawn(
    process.execPath,
    [
      ...flags,
      MAIN,
      `--web.listen-address=127.0.0.1:${port}`,
      `--config.file=${path.join(root, 'config', 'default.yml')}`,
      '--log.level=error',
    ],
    {
      env: { ...process.env, PORTPROBE_CODE_CACHE: '0', PORTPROBE_CODE_CACHE_WRITE: tmp },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const exited = new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`training run: exit ${code ?? signal}`)),
    );
  });
  const deadline = Date.now() + 20000;
  let answered = 0;
  while (answered < 1) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      await res.text();
      if (res.status === 200) answered++;
    } catch {
      if (Date.now() > deadline || proc.exitCode !== null) {
        proc.kill('SIGKILL');
        throw new Error('training run: the agent did not answer /metrics within 20 s');
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  proc.kill('SIGUSR2');
  while (!existsSync(tmp)) {
    if (Date.now() > deadline || proc.exitCode !== null) {
      proc.kill('SIGKILL');
      throw new Error('training run: no code cache written within 20 s');
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  // (Renamed into place once written.)
  proc.kill('SIGTERM');
  const killer = setTimeout(() => proc.kill('SIGKILL'), 20000);
  await exited.finally(() => clearTimeout(killer));
  renameSync(tmp, CACHE);
}

async function main() {
  rmSync(CACHE, { force: true });
  const result = await esbuild.build({
    entryPoints: [path.join(root, 'agent', 'main.ts')],
    outfile: BUNDLE,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    tsconfig: path.join(root, 'tsconfig.json'),
    external: EXTERNAL,
    plugins: [standIns],
    // Whitespace only: stack traces keep their function names.
    minifyWhitespace: true,
    legalComments: 'eof',
    logLevel: 'warning',
    // agent/http.ts asks where express is installed to find its qs: the installed copy answers.
    logOverride: { 'require-resolve-not-external': 'silent' },
    metafile: true,
    write: false,
  });
  // The #! line is main.js's; inside the loader's function wrapper it would not parse.
  const code = result.outputFiles[0].text.replace(/^#![^\n]*\n/, '');
  writeFileSync(BUNDLE, code);
  writeFileSync(MAIN, `${launcherLine()}${LOADER}`, { mode: 0o755 });
  chmodSync(MAIN, 0o755);
  const kB = (Buffer.byteLength(code) / 1024).toFixed(0);
  process.stdout.write(
    `wrote ${path.relative(root, BUNDLE)} (${kB} kB, ${Object.keys(result.metafile.inputs).length} modules)\n`,
  );
  if (process.env.PORTPROBE_CODE_CACHE === '0') return;
  try {
    await train();
  } catch (e) {
    // The cache only makes the start faster: the build stands without it (the image build and the
    // tests insist on it).
    process.stderr.write(`warning: no code cache written (${e.message}); the agent will start without one\n`);
    return;
  }
  process.stdout.write(`wrote ${path.relative(root, CACHE)} (${(statSync(CACHE).size / 1024).toFixed(0)} kB)\n`);
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`);
  process.exit(1);
});

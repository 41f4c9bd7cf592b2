#!/usr/bin/env node
// @ts-check
// The package's install step: builds the native addons of binding.gyp where that can work and
// never fails the install. The addons are optimisations: without arrival.node (arrival stamps,
// exporters/net/arrival.ts) every probe phase is timed on the event loop and
// portprobe_arrival_stamps_enabled is 0; without sockdiag.node (the netlink socket scan,
// exporters/sockets/netlink.ts) the sockets are read from /proc, without the listeners'
// backlogs. So on an OS other than Linux, without a C compiler, g++, make or Python, or when
// the build itself fails, this prints one line saying so and why, and exits 0.
//
// Plain JavaScript because it runs at install time, before (and without) any TypeScript build.
'use strict';

const { spawnSync } = require('node:child_process');
const { accessSync, constants, existsSync, readFileSync, realpathSync, rmSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const FALLBACK =
  'probes are timed on the event loop (portprobe_arrival_stamps_enabled 0) and sockets are read from /proc';

/** @param {string} line */
function say(line) {
  process.stderr.write(`portprobe: ${line}\n`);
}

/**
 * The first word of a command line such as CC="ccache gcc", looked up on PATH as the shell does.
 * @param {string} command
 * @returns {string | undefined} the file that would run, or undefined when there is none
 */
function which(command) {
  const file = command.trim().split(/\s+/)[0];
  if (!file) return undefined;
  const candidates = file.includes('/')
    ? [file]
    : (process.env.PATH ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((d) => path.join(d, file));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not there or not executable: the next one
    }
  }
  return undefined;
}

/** What is missing for node-gyp's make build, as a short phrase, or undefined when nothing is. */
function missingTool() {
  const cc = process.env.CC || 'cc';
  if (!which(cc)) return `no C compiler (${cc} not found)`;
  // node-gyp's makefiles link with the C++ driver, even for C sources.
  const cxx = process.env.CXX || 'g++';
  if (!which(cxx)) return `no C++ compiler to link with (${cxx} not found)`;
  if (!which('make')) return 'no make';
  if (!process.env.PYTHON && !which('python3')) return 'no python3 (node-gyp needs it)';
  return undefined;
}

/**
 * The line of node-gyp's output that says what went wrong: the compiler's or make's first error,
 * else node-gyp's own.
 * @param {string} output
 */
function firstError(output) {
  const lines = output.split('\n').map((l) => l.trim());
  const found =
    lines.find((l) => /\berror\b/i.test(l) && !/^gyp (ERR|info)/.test(l)) ??
    lines.find((l) => /^gyp ERR! stack Error: /.test(l)) ??
    lines.find((l) => /^gyp ERR!/.test(l));
  return (found ?? 'no output').replace(/^gyp ERR! (stack )?/, '').slice(0, 200);
}

/**
 * The install prefix of the running Node when it carries its own headers for this very version
 * (include/node, as Node's release tarballs, Debian-style packages and the official images have
 * them), so that node-gyp compiles against them instead of downloading them. Undefined when npm
 * was told a nodedir already, or there are no matching headers.
 */
function localNodedir() {
  if (process.env.npm_config_nodedir) return undefined;
  const prefix = path.dirname(path.dirname(realpathSync(process.execPath)));
  const include = path.join(prefix, 'include', 'node');
  try {
    const h = readFileSync(path.join(include, 'node_version.h'), 'utf8');
    const part = (/** @type {string} */ name) => new RegExp(`#define NODE_${name}_VERSION (\\d+)`).exec(h)?.[1];
    const version = `${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
    return version === process.versions.node && existsSync(path.join(include, 'common.gypi')) ? prefix : undefined;
  } catch {
    return undefined;
  }
}

function main() {
  if (process.platform !== 'linux') {
    say(`native addon not built: it is Linux-only and this is ${process.platform}; ${FALLBACK}`);
    return;
  }
  const missing = missingTool();
  if (missing) {
    say(
      `native addon not built: ${missing}; ${FALLBACK}. Install gcc, g++, make and python3, then reinstall portprobe to build it.`,
    );
    return;
  }
  // The node-gyp npm ships (npm sets npm_config_node_gyp for scripts), else one on PATH.
  const gyp = process.env.npm_config_node_gyp;
  const nodedir = localNodedir();
  const rebuild = ['rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
  const [cmd, args] = gyp ? [process.execPath, [gyp, ...rebuild]] : ['node-gyp', rebuild];
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status === 0) {
    rmSync(path.join(__dirname, 'build.log'), { force: true });
    say('native addon built (arrival stamps on)');
    return;
  }
  // The build's own output goes to a file beside this script, for whoever wants the details.
  const log = path.join(__dirname, 'build.log');
  writeFileSync(log, `${r.error ? `${cmd}: ${r.error.message}\n` : ''}${r.stdout ?? ''}${r.stderr ?? ''}`);
  // Nothing half-built stays behind for the agent to try to load.
  rmSync(path.join(root, 'build'), { recursive: true, force: true });
  const why = r.error ? `${cmd}: ${r.error.message}` : firstError(`${r.stdout}\n${r.stderr}`);
  say(`native addon not built: the build failed (${why}); ${FALLBACK}. The build's output is in ${log}.`);
}

main();

// Three jest projects; `npm test` runs them all, `npm run test:unit`, `test:peers` and `test:e2e`
// one each (or `npx jest --selectProjects unit`).
//   unit   pure code, and sockets the test opens itself on 127.0.0.1: seconds, nothing installed.
//   e2e    whole systems: Prometheus and promtool, headless Chromium, the Helm chart, the image.
//   peers  real servers (vsftpd, proftpd, pure-ftpd, pyftpdlib, ftp-srv, the TDS peer), the agent as
//          a process, network namespaces: everything the other two do not name. A new test file
//          lands here unless its folder or name matches a glob below (*.unit.test.ts, *.e2e.test.ts).
const UNIT = [
  'test/config/**/*.test.ts',
  'test/shard/**/*.test.ts',
  'test/**/*.unit.test.ts',
  'test/agent/{auth,shutdown,signal,scheduler,reload-inflight}.test.ts',
  'test/ftp/{advice,passive,reply,settings}.test.ts',
  'test/fuzz/{config,ftp-passive,ftp-reply,mssql-parsers,procnet}.test.ts',
  'test/mssql/{parsers,units}.test.ts',
  'test/sockets/{collector,procnet,rules}.test.ts',
  'test/tcp/{arrival,connect-only}.test.ts',
];
const E2E = [
  'test/e2e/**/*.test.ts',
  'test/helm/**/*.test.ts',
  'test/alerts/**/*.test.ts',
  'test/status/*-page.test.ts',
  'test/**/*.e2e.test.ts',
];

const at = (globs) => globs.map((g) => `<rootDir>/${g}`);
const not = (globs) => globs.map((g) => `!**/${g}`);

const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { isolatedModules: true, tsconfig: 'tsconfig.json' }] },
  setupFilesAfterEnv: ['<rootDir>/test/setup.ts'],
};

module.exports = {
  testTimeout: 30000,
  projects: [
    { ...common, displayName: 'unit', testMatch: at(UNIT) },
    { ...common, displayName: 'peers', testMatch: [...at(['test/**/*.test.ts']), ...not(UNIT), ...not(E2E)] },
    { ...common, displayName: 'e2e', testMatch: at(E2E) },
  ],
};

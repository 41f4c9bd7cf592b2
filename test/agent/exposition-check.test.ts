// The strict exposition checker the test setup runs on every exposition: it must catch what
// promtool lets through (a duplicate series), and the HTTP tap must see what a server sends.
import http from 'node:http';
import zlib from 'node:zlib';
import { execFileSync } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { expositionProblems, installExpositionTap } from '../helpers/exposition-check';

const GOOD = [
  '# HELP probe_success Whether the probe succeeded.',
  '# TYPE probe_success gauge',
  'probe_success{target="a"} 1',
  'probe_success{target="b"} 0',
  '# HELP portprobe_probes_total Probes.',
  '# TYPE portprobe_probes_total counter',
  'portprobe_probes_total{module="m",result="success"} 3',
  '# HELP h A histogram.',
  '# TYPE h histogram',
  'h_bucket{le="+Inf"} 2',
  'h_sum 0.5',
  'h_count 2',
  '',
].join('\n');

describe('expositionProblems', () => {
  it('accepts a clean exposition', () => {
    expect(expositionProblems(GOOD)).toEqual([]);
  });

  it('finds a duplicate series that promtool accepts (label order does not hide it)', () => {
    const text = [
      '# HELP probe_mssql_query_success Whether the query succeeded.',
      '# TYPE probe_mssql_query_success gauge',
      'probe_mssql_query_success{query="q",target="t"} 1',
      'probe_mssql_query_success{target="t",query="q"} 0',
      '',
    ].join('\n');
    // promtool's own check passes it: the reason this checker exists.
    expect(() => execFileSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })).not.toThrow();
    expect(expositionProblems(text)).toEqual([
      expect.stringMatching(
        /^line 4: duplicate series probe_mssql_query_success\{query="q",target="t"\} \(first on line 3\)$/,
      ),
    ]);
  });

  it.each([
    ['a split family', 'a{x="1"} 1\nb 1\na{x="2"} 1\n', /family a appears again/],
    ['HELP after samples', '# TYPE a gauge\na 1\n# HELP a late\n', /HELP a after its samples/],
    ['a second TYPE', '# TYPE a gauge\n# TYPE a gauge\na 1\n', /second # TYPE/],
    ['a counter without _total', '# TYPE c counter\nc 1\n', /does not end in _total/],
    ['a label given twice', '# TYPE a gauge\na{x="1",x="2"} 1\n', /label x given twice/],
    ['a bad escape', '# TYPE a gauge\na{x="\\q"} 1\n', /bad escape/],
    ['a bad value', '# TYPE a gauge\na one\n', /bad value one/],
    ['no TYPE', 'a 1\n', /no # TYPE/],
    ['no final newline', '# TYPE a gauge\na 1', /does not end with a newline/],
    ['a reserved label name', '# TYPE a gauge\na{__x="1"} 1\n', /bad label name __x/],
  ])('finds %s', (_what, text, problem) => {
    expect(expositionProblems(text).join('\n')).toMatch(problem);
  });
});

describe('the HTTP tap', () => {
  let server: http.Server;
  let base: string;
  const reported: string[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const bad = '# TYPE a gauge\na 1\na 2\n';
      const body = req.url === '/good' ? GOOD : bad;
      res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
      if (req.url === '/gzip') {
        res.setHeader('content-encoding', 'gzip');
        res.end(zlib.gzipSync(body));
      } else {
        res.end(body);
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.close();
    // Hand the tap back to the setup file's collector, which fails a file on any bad exposition.
    installExpositionTap(() => undefined);
  });

  const get = (p: string): Promise<string> =>
    new Promise((resolve, reject) => {
      http
        .get(`${base}${p}`, (res) => {
          let s = '';
          res.setEncoding('latin1');
          res.on('data', (d: string) => (s += d));
          res.on('end', () => resolve(s));
        })
        .on('error', reject);
    });

  it('reports a duplicate series received through http.get, plain and gzip, and nothing for a clean one', async () => {
    installExpositionTap((p) => reported.push(p));
    await get('/good');
    expect(reported).toEqual([]);
    await get('/bad');
    await get('/gzip');
    expect(reported).toHaveLength(2);
    expect(reported[0]).toMatch(/line 3: duplicate series a\{\}/);
    expect(reported[1]).toMatch(/line 3: duplicate series a\{\}/);
  });

  it('reports through fetch too', async () => {
    reported.length = 0;
    installExpositionTap((p) => reported.push(p));
    const body = await (await fetch(`${base}/bad`)).text();
    expect(body).toContain('a 2');
    for (let i = 0; i < 50 && reported.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reported).toHaveLength(1);
  });
});

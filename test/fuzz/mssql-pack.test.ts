// The health pack against random answers, through real sockets: for every pack query the TDS peer
// answers with a random result (the documented columns or others, every column type the peer
// has, NULLs, extreme numbers, NaN and infinities, label text with quotes, backslashes, newlines
// and non-ASCII, duplicate keys, too many rows) or a random server error. Whatever comes back, the
// probe succeeds (a pack query fails alone), says once per pack query whether it succeeded, never
// reports internal_error, and its exposition passes the strict checker. Cases: FUZZ_RUNS / 20
// (500 by default; npm run fuzz:long: 50,000). A failing case replays from its number.
import { COMMON_METRICS, FamilyRegistry, joinRendered, renderResult } from '../../agent/exposition';
import { mssqlProber } from '../../exporters/mssql';
import { packQueries } from '../../exporters/mssql/pack';
import { Secret } from '../../exporters/secret';
import { expositionProblems } from '../helpers/exposition-check';
import { runProber } from '../helpers/context';
import { prng } from '../helpers/prng';
import { HEALTH_ANSWERS, healthSql } from '../peers/tds/health';
import { startTdsPeer, type QueryAnswer, type TdsPeer } from '../peers/tds/server';
import type { Cell, Column, ColumnType } from '../peers/tds/tokens';

const RUNS = Math.max(1, Math.floor(Number(process.env.FUZZ_RUNS ?? 10_000) / 20));
const WORKERS = 4;
const PROBE_MS = 4000;
const creds = { username: 'monitor', password: new Secret('s3cr3t-pw') };
const PACK = packQueries(['health']);

const TEXTS = [
  '',
  'erp',
  'a"b',
  'back\\slash',
  'line\nbreak',
  'tab\tand spaces  ',
  'Ünïcødé ✓',
  '😀',
  'x'.repeat(300),
  '_Total',
  '0',
];
const INT_RANGE: Record<string, [number, number]> = {
  tinyint: [0, 255],
  smallint: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  int: [-(2 ** 53), 2 ** 53],
};
const TYPES: ColumnType[] = ['int', 'tinyint', 'smallint', 'int32', 'float', 'nvarchar'];
const ERRORS = [
  { number: 300, class: 14, message: "VIEW SERVER STATE permission was denied on object 'server', database 'master'." },
  { number: 208, class: 16, message: "Invalid object name 'sys.dm_hadr_availability_replica_states'." },
  {
    number: 916,
    class: 14,
    message:
      'The server principal "monitor" is not able to access the database "msdb" under the current security context.',
  },
  {
    number: 1205,
    class: 13,
    message:
      'Transaction (Process ID 57) was deadlocked on lock resources with another process and has been chosen as the deadlock victim.',
  },
  { number: 50000, class: 16, message: 'VIEW SERVER STATE permission is needed' },
];

function randomAnswer(rand: () => number, id: string): QueryAnswer {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];
  const roll = rand();
  if (roll < 0.1) return { error: pick(ERRORS) };
  if (roll < 0.15)
    return {
      errors: [
        ERRORS[0],
        { number: 297, class: 16, message: 'The user does not have permission to perform this action.' },
      ],
    };
  const base = HEALTH_ANSWERS[id] as { columns: Column[]; rows: Cell[][] };
  // Mostly the documented column names, sometimes retyped, renamed or dropped.
  const columns: Column[] = base.columns
    .filter(() => rand() > 0.05)
    .map((c) => ({
      name: rand() < 0.05 ? pick(TEXTS).slice(0, 30) || 'x' : c.name,
      type: rand() < 0.2 ? pick(TYPES) : c.type,
    }));
  if (rand() < 0.1) columns.push({ name: 'extra', type: pick(TYPES) });
  const rowCount = rand() < 0.02 ? 1001 : Math.floor(rand() * 8);
  const rows: Cell[][] = [];
  for (let r = 0; r < rowCount; r++) {
    rows.push(
      columns.map((c) => {
        if (rand() < 0.15) return null;
        if (c.type === 'nvarchar') return rand() < 0.3 ? String(Math.floor(rand() * 1000)) : pick(TEXTS);
        if (c.type === 'float') return pick([rand() * 1e6, -rand(), 0, NaN, Infinity, -Infinity, 1e308, 5e-324]);
        const [lo, hi] = INT_RANGE[c.type];
        return pick([lo, hi, 0, 1, Math.floor(lo + rand() * (hi - lo))]);
      }),
    );
  }
  return { columns, rows };
}

test(`${RUNS} random answers to the health pack: the probe succeeds, each pack query is judged once, the exposition stays clean`, async () => {
  const current = new Map<TdsPeer, Record<string, QueryAnswer>>();
  const peers = await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      const answers: Record<string, QueryAnswer> = {};
      const p = await startTdsPeer({
        users: { monitor: 's3cr3t-pw' },
        // The peer looks answers up by normalised SQL in this object, refilled for each case.
        queries: answers,
      });
      current.set(p, answers);
      return p;
    }),
  );
  const wrong: string[] = [];
  const outcomes = new Map<string, number>();
  let next = 0;
  try {
    await Promise.all(
      peers.map(async (p) => {
        const answers = current.get(p) as Record<string, QueryAnswer>;
        for (let n = next++; n < RUNS; n = next++) {
          const rand = prng(n + 1);
          for (const q of PACK) answers[healthSql(q.id)] = randomAnswer(rand, q.id);
          const r = await runProber(
            mssqlProber,
            `127.0.0.1:${p.port}`,
            { ...creds, query_packs: ['health'] },
            PROBE_MS,
          );
          const families = new FamilyRegistry([...COMMON_METRICS, ...mssqlProber.metrics]);
          const text = joinRendered(families, [
            renderResult(families, '', mssqlProber.phases, r, Date.now()),
          ]).toString();
          const problems = expositionProblems(text);
          const judged = PACK.map(
            (q) => r.facts.filter((f) => f.metric === 'probe_mssql_query_success' && f.labels?.query === q.id).length,
          );
          for (const q of PACK) {
            const ok = r.facts.find((f) => f.metric === 'probe_mssql_query_success' && f.labels?.query === q.id)?.value;
            outcomes.set(`${q.id}=${ok}`, (outcomes.get(`${q.id}=${ok}`) ?? 0) + 1);
          }
          if ((!r.success || problems.length > 0 || judged.some((j) => j !== 1)) && wrong.length < 10) {
            wrong.push(
              `case ${n}: success ${r.success} ${JSON.stringify(r.failure)} judged ${judged.join(',')} ${problems.slice(0, 3).join('; ')}`,
            );
          }
        }
      }),
    );
  } finally {
    await Promise.all(peers.map((p) => p.close()));
  }
  expect(wrong).toEqual([]);
  // The cases reach both outcomes of every query (the fuzzer is not stuck on one path).
  for (const q of PACK) {
    expect([q.id, (outcomes.get(`${q.id}=1`) ?? 0) > 0, (outcomes.get(`${q.id}=0`) ?? 0) > 0]).toEqual([
      q.id,
      true,
      true,
    ]);
  }
}, 600_000);

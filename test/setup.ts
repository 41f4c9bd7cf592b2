import { installExpositionTap } from './helpers/exposition-check';

// Unhandled rejections are bugs: fail the test file that produced one.
const seen: unknown[] = [];
const onRejection = (reason: unknown): void => {
  seen.push(reason);
};
process.on('unhandledRejection', onRejection);

// Every exposition a test receives over HTTP is checked strictly (duplicate series, split
// families, HELP/TYPE order, escaping): the test that received a bad one fails.
const badExpositions: string[] = [];
installExpositionTap((problem) => badExpositions.push(problem));

afterEach(() => {
  if (badExpositions.length > 0) {
    const all = badExpositions.splice(0);
    throw new Error(`bad exposition(s) received during this test:\n${all.join('\n\n')}`);
  }
});

afterAll(() => {
  process.off('unhandledRejection', onRejection);
  if (seen.length > 0) {
    throw new Error(`unhandled promise rejection(s) during this file: ${seen.map(String).join('; ')}`);
  }
  if (badExpositions.length > 0) {
    throw new Error(`bad exposition(s) received during this file:\n${badExpositions.join('\n\n')}`);
  }
});

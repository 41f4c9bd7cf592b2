// Unhandled rejections are bugs: fail the test file that produced one.
const seen: unknown[] = [];
const onRejection = (reason: unknown): void => {
  seen.push(reason);
};
process.on('unhandledRejection', onRejection);

afterAll(() => {
  process.off('unhandledRejection', onRejection);
  if (seen.length > 0) {
    throw new Error(`unhandled promise rejection(s) during this file: ${seen.map(String).join('; ')}`);
  }
});

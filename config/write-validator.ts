// Writes the standalone config validator next to config/validator's compiled file (npm run build).
// A command of its own: config/validator.ts is also part of the bundled agent (scripts/bundle.js),
// where a `require.main === module` test would be true for the agent's own start.
import path from 'node:path';
import { writeStandalone } from './validator';

process.stdout.write(`wrote ${path.relative(process.cwd(), writeStandalone(process.argv[2] ?? __dirname))}\n`);

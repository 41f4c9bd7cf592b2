// Writes config/portprobe.schema.json from the probers' schema fragments (npm run schema).
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchema } from './schema';

export function schemaText(): string {
  return `${JSON.stringify(buildSchema(), null, 2)}\n`;
}

if (require.main === module) {
  const out = path.join(__dirname, 'portprobe.schema.json');
  writeFileSync(out, schemaText());
  process.stdout.write(`wrote ${out}\n`);
}

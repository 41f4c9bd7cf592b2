// Code blocks of a Markdown file marked for the tests with `<!-- readme-test: ... -->` (see test/readme.test.ts).

export interface MarkedBlock {
  /** 1-based line of the block's opening fence. */
  line: number;
  kind: 'file' | 'run';
  args: Record<string, string>;
  /** The word after `file`. */
  name?: string;
  lang: string;
  body: string;
}

/** Every code block of a Markdown text preceded by a `<!-- readme-test: ... -->` comment. */
export function markedBlocks(text: string): MarkedBlock[] {
  const out: MarkedBlock[] = [];
  const re = /<!-- readme-test: (file|run)([^>]*?) -->\n+```([\w-]*)\n([\s\S]*?)\n```/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const words = m[2].trim().split(/\s+/).filter(Boolean);
    const args: Record<string, string> = {};
    let name: string | undefined;
    for (const w of words) {
      const kv = /^(\w+)=(.*)$/.exec(w);
      if (kv) args[kv[1]] = kv[2];
      else name = w;
    }
    const fenceAt = m.index + m[0].indexOf('```');
    out.push({
      line: text.slice(0, fenceAt).split('\n').length,
      kind: m[1] as 'file' | 'run',
      args,
      name,
      lang: m[3],
      body: m[4],
    });
  }
  return out;
}

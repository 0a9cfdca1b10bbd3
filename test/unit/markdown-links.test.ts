// Every relative link in our Markdown files leads somewhere: the file exists and, for an #anchor, so
// does the heading it names (GitHub's slugs). A moved file or a renamed heading fails here, not later
// in a reader's browser. The documents that code comments cite (docs/decisions/0001-….md) exist too.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const root = path.join(__dirname, '..', '..');

/** README.md, BENCHMARKS.md and the like at the top, and every .md under docs/ and ops/. */
function markdownFiles(): string[] {
  const top = readdirSync(root).filter((name) => name.endsWith('.md'));
  const under = (dir: string): string[] =>
    existsSync(path.join(root, dir))
      ? readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
          const relative = path.posix.join(dir, entry.name);
          if (entry.isDirectory()) return under(relative);
          return entry.name.endsWith('.md') ? [relative] : [];
        })
      : [];
  return [...top, ...under('docs'), ...under('ops')].sort();
}

/** The text outside fenced code blocks and inline code, where a link is a link. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
function slugsOf(markdown: string): Set<string> {
  const slugs = new Set<string>();
  const seen = new Map<string, number>();
  const withoutFences = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const line of withoutFences.split('\n')) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const text = heading[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}_\- ]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    slugs.add(count === 0 ? base : `${base}-${count}`);
  }
  return slugs;
}

/** Inline links and images `[text](target "title")`, and reference definitions `[name]: target`. */
function linkTargets(markdown: string): string[] {
  const text = prose(markdown);
  const inline = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
  const references = [...text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)].map((m) => m[1]);
  return [...inline, ...references];
}

const isExternal = (target: string) => /^[a-z][a-z0-9+.-]*:/i.test(target);

function brokenLinks(file: string): string[] {
  const problems: string[] = [];
  for (const target of linkTargets(readFileSync(path.join(root, file), 'utf8'))) {
    if (isExternal(target)) continue;
    const [rawPath, anchor] = target.split('#', 2);
    const linkPath = decodeURIComponent(rawPath);
    const resolved = linkPath === '' ? path.join(root, file) : path.resolve(path.dirname(path.join(root, file)), linkPath);
    if (!resolved.startsWith(root)) {
      problems.push(`${file}: ${target} leaves the repository`);
      continue;
    }
    if (!existsSync(resolved)) {
      problems.push(`${file}: ${target}: no such file`);
      continue;
    }
    if (anchor === undefined) continue;
    if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) {
      problems.push(`${file}: ${target}: an anchor into something that is not a Markdown file`);
      continue;
    }
    if (!slugsOf(readFileSync(resolved, 'utf8')).has(anchor)) problems.push(`${file}: ${target}: no such heading`);
  }
  return problems;
}

/** Every file under `dir` (recursively) whose name ends in one of `extensions`. */
function sourceFiles(dir: string, extensions: string[]): string[] {
  if (!existsSync(path.join(root, dir))) return [];
  return readdirSync(path.join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const relative = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(relative, extensions);
    return extensions.some((ext) => entry.name.endsWith(ext)) ? [relative] : [];
  });
}

describe('slugsOf', () => {
  it('makes the anchors GitHub makes', () => {
    const doc =
      '# Redis Cluster and Sentinel\n## `requeue` and resend\n## Retries\n### Retries\n```\n# not a heading\n```\n## 5 → 6, once (really)!\n';
    expect([...slugsOf(doc)]).toEqual(['redis-cluster-and-sentinel', 'requeue-and-resend', 'retries', 'retries-1', '5--6-once-really']);
  });
});

describe('Markdown links', () => {
  const files = markdownFiles();

  it('finds the documents', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'BENCHMARKS.md', 'docs/partners.md']));
  });

  it.each(files)('every relative link and anchor in %s resolves', (file) => {
    expect(brokenLinks(file)).toEqual([]);
  });
});

describe('documents cited in code', () => {
  const code = ['src', 'bench', 'scripts', 'test', 'migrations'].flatMap((dir) => sourceFiles(dir, ['.ts', '.js']));

  it('every docs/….md path named in src, bench, scripts, test and migrations exists', () => {
    const cited = code.flatMap((file) =>
      [...readFileSync(path.join(root, file), 'utf8').matchAll(/\bdocs\/[\w./-]+\.md\b/g)].map((m) => `${file}: ${m[0]}`),
    );
    expect(cited.length).toBeGreaterThan(0);
    expect(cited.filter((entry) => !existsSync(path.join(root, entry.split(': ')[1])))).toEqual([]);
  });
});

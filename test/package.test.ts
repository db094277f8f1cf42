// What `npm pack` puts in the published package: the built server, SDK and web app with their
// entry points, and none of the tests, benchmarks, sources or build leftovers.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

interface Packed {
  files: Array<{ path: string }>;
}

describe('the published package', () => {
  it('holds every entry point and the web app, and no tests, benchmarks or sources', () => {
    const root = new URL('..', import.meta.url);
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const files = (JSON.parse(out) as Packed[])[0]!.files.map((f) => f.path);
    const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as {
      main: string;
      types: string;
      bin: Record<string, string>;
      exports: Record<string, string>;
    };
    const entries = [pkg.main, pkg.types, ...Object.values(pkg.bin), ...Object.values(pkg.exports)].map((p) => p.replace(/^\.\//, ''));
    for (const f of [...entries, 'dist/web/index.html', 'README.md', 'LICENSE', 'CHANGELOG.md']) expect(files, f).toContain(f);
    expect(files.filter((f) => f.startsWith('dist/web/assets/')).length).toBeGreaterThan(0);
    const stray = files.filter((f) => !/^dist\/(src|web)\//.test(f) && !['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md'].includes(f));
    expect(stray).toEqual([]);
    expect(files.filter((f) => f.endsWith('.tsbuildinfo') || f.startsWith('dist/test/') || f.startsWith('dist/bench/'))).toEqual([]);
  });
});

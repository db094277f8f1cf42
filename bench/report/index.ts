// Writes a run's JSON result and HTML report next to each other in the results folder.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchResult } from '../run.js';
import { htmlReport } from './html.js';

export { summaryTable } from './table.js';

export function writeReports(r: BenchResult, dir: string, name = `bench-${r.startedAt.replace(/[:.]/g, '-')}`): { json: string; html: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, `${name}.json`);
  const html = join(dir, `${name}.html`);
  writeFileSync(json, JSON.stringify(r, null, 2));
  writeFileSync(html, htmlReport(r));
  return { json, html };
}

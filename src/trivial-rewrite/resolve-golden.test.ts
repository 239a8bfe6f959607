/**
 * Golden tests for CONTRACT 3 (resolve): each testdata/<case>.tsv lists addresses and the reply
 * Postfix's trivial-rewrite(8) gives for them under testdata/<case>.cf (a main.cf fragment over
 * the defaults of test/harness/trivial-rewrite-params.ts; tables are real texthash:/inline:
 * tables opened through src/global/maps.ts, relative to testdata/).
 *
 * Columns: address, sender, class, transport, nexthop, recipient, flags, comment.
 *   address  `<>` is the empty address; `\t`, `\r`, `\n`, `\0`, `\\` escapes are decoded
 *   sender   `-` for none
 *   flags    routed / error / fail, relocated=X, warn=TEXT, separated by "; " (`-` for none)
 *   comment  why the row is what it is (kept when the table is regenerated)
 * The expected values were written from Postfix's resolve.c/rewrite.c/transport.c and the docs;
 * UPDATE_GOLDEN=1 rewrites the computed columns (review the diff before committing it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolve } from './resolve.ts';
import type { ResolveReply } from '../global/resolve-client.ts';
import { buildResolveContext } from './resolve-context.ts';
import { mapsTableOpener } from './resolve-context-open.ts';
import { paramSource, parseParams } from '../../test/harness/trivial-rewrite-params.ts';

const DIR = join(import.meta.dirname, 'testdata');
const UPDATE = process.env.UPDATE_GOLDEN === '1';

function decode(s: string): string {
  if (s === '<>') return '';
  return s.replace(/\\([trn0\\])/g, (_m, c: string) => ({ t: '\t', r: '\r', n: '\n', '0': '\0', '\\': '\\' })[c]!);
}
function encode(s: string): string {
  return s.replace(/[\\\t\r\n\0]/g, (c) => ({ '\t': '\\t', '\r': '\\r', '\n': '\\n', '\0': '\\0', '\\': '\\\\' })[c]!);
}

function flagsText(r: ResolveReply): string {
  const f: string[] = [];
  if (r.flags.routed) f.push('routed');
  if (r.flags.error) f.push('error');
  if (r.flags.fail) f.push('fail');
  if (r.relocated !== undefined) f.push(`relocated=${r.relocated}`);
  for (const w of r.warnings) f.push(`warn=${w}`);
  return f.length ? f.join('; ') : '-';
}

const HEADER = '# address\tsender\tclass\ttransport\tnexthop\trecipient\tflags\tcomment';

for (const file of readdirSync(DIR).filter((f) => f.endsWith('.tsv')).sort()) {
  const name = file.slice(0, -4);
  test(`golden resolve: ${name}`, async () => {
    const cf = parseParams(readFileSync(join(DIR, `${name}.cf`), 'utf8'));
    const ctx = await buildResolveContext(paramSource(cf), mapsTableOpener(DIR, () => {}), '/etc/postern');
    const lines = readFileSync(join(DIR, file), 'utf8').split('\n');
    const out: string[] = [];
    const diffs: string[] = [];
    let rows = 0;
    for (const [i, line] of lines.entries()) {
      if (line === '' || line.startsWith('#')) { if (line !== HEADER) out.push(line); continue; }
      const col = line.split('\t');
      const [addr = '', sender = '-', , , , , , comment = ''] = col;
      const r = await resolve(ctx, decode(addr), sender === '-' ? '' : decode(sender));
      const got = [r.class, encode(r.transport), encode(r.nexthop), encode(r.recipient), flagsText(r)];
      const want = col.slice(2, 7);
      rows++;
      if (got.join('\t') !== want.join('\t')) {
        diffs.push(`${file}:${i + 1}: <${addr}>\n    want ${want.join(' | ')}\n    got  ${got.join(' | ')}`);
      }
      out.push([addr, sender, ...got, comment].join('\t'));
    }
    if (UPDATE) {
      writeFileSync(join(DIR, file), [HEADER, ...out.filter((l, j) => !(j === out.length - 1 && l === ''))].join('\n') + '\n');
      return;
    }
    assert.ok(rows > 0, `${file} has no rows`);
    assert.deepEqual(diffs, [], `${diffs.length} of ${rows} rows differ (UPDATE_GOLDEN=1 regenerates):\n${diffs.join('\n')}`);
  });
}

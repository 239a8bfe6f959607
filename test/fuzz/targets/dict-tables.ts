/**
 * Fuzz targets: lookup-table source files (Postfix's texthash/postmap input via
 * src/util/dict-source.ts, regexp_table(5)/pcre_table(5) via src/util/dict-regexp*.ts,
 * cidr_table(5) via src/util/dict-cidr.ts). Each input is written to a temp file, opened with
 * dictOpen like a daemon does, and looked up with keys taken from the input and a few fixed
 * ones. Opening and lookups may only throw ConfigError or DictError; bad lines are warnings.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dictOpen } from '../../../src/util/dict-registry.ts';
import { DictError } from '../../../src/util/dict.ts';
import { ConfigError } from '../../../src/global/config-error.ts';
import type { FuzzTarget } from '../fuzz-engine.ts';
import { literalsFrom } from '../fuzz-seeds.ts';

const KEYS = ['joe@example.com', 'list-dev@lists.example.org', 'Bob@x', '', 'a', '1.2.3.4', '10.1.2.3', '::1', '2001:db8::1',
  '192.168.1.7', '[1.2.3.4]', 'user+ext@example.com', '@example.com', 'x'.repeat(300)];

function tableTarget(name: string, types: string[], coverage: string[], dictionary: string[], seedFiles: string[], keep: RegExp): FuzzTarget {
  let dir = '';
  let n = 0;
  return {
    name,
    coverage: ['src/util/dict-source.ts', ...coverage],
    maxLen: 16 * 1024,
    dictionary,
    seeds: () => literalsFrom(seedFiles, keep),
    setup() { dir = mkdtempSync(join(tmpdir(), `postern-fuzz-${name}-`)); },
    teardown() { if (dir) rmSync(dir, { recursive: true, force: true }); },
    async run(data) {
      const type = types[(data[0] ?? 0) % types.length]!;
      const file = join(dir, `t${n++ % 4}`);
      writeFileSync(file, data);
      const d = await dictOpen(`${type}:${file}`, { configDir: dir, warn: () => {}, foldCase: type !== 'regexp' && type !== 'pcre' });
      try {
        const words = data.subarray(0, 4096).toString('latin1').split(/[\s/]+/).filter((w) => w.length > 0).slice(0, 12);
        for (const k of [...KEYS, ...words]) await d.lookup(k);
        if (d.entries) { let i = 0; for await (const _ of d.entries()) if (++i > 1000) break; }
      } finally { await d.close(); }
    },
    expected: (e) => e instanceof ConfigError || e instanceof DictError,
  };
}

export const texthash = tableTarget('dict-texthash', ['texthash'], ['src/util/dict-texthash.ts'],
  ['\n', ' ', '\t', '#', '\n ', '\\', '\0', '@example.com', 'user@', 'OK', 'REJECT', 'relay:[mx]:25', ':', '\r\n'],
  ['src/util/dict-texthash.test.ts', 'src/util/dict-source.test.ts', 'src/util/dict-hash.test.ts'], /\S\s+\S/);

export const regexp = tableTarget('dict-regexp', ['regexp', 'pcre'], ['src/util/dict-regexp.ts', 'src/util/dict-regexp-syntax.ts'],
  ['/', '/^', '$/', '/i', '/x', '!/', 'if ', 'endif', '$1', '${1}', '$$', '(', ')', '(.*)', '[[:alnum:]]', '[^', ']', '\\', '\\.',
    '{1,3}', '*', '+', '?', '|', '(?i)', '(?:', '\\d', '\\b', '\n', ' REJECT ', ' OK', '\n ', '#'],
  ['src/util/dict-regexp.test.ts'], /\/.*\//);

export const cidr = tableTarget('dict-cidr', ['cidr'], ['src/util/dict-cidr.ts'],
  ['/', '.', ':', '::', '[', ']', '/24', '/0', '/32', '/128', '/33', '!', 'if ', 'endif', ' OK', ' REJECT', '\n', '255', '0',
    '::ffff:', '1.2.3.4', '2001:db8::', '\n ', '#'],
  ['src/util/dict-cidr.test.ts'], /[.:]\d/);

export const target = texthash;

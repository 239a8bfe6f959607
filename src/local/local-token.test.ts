import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAliasesSource, parseTarget, parseTargetFile, splitTargets } from './local-token.ts';
import { buildAliases, main } from '../cli/newaliases.ts';
import { openHashDict } from '../util/dict-hash.ts';

test('alias values: quoting, commands with commas, files, :include:, \\user', () => {
  assert.deepEqual(splitTargets('a, b@x.test,"|cmd -a, b", /var/f , :include:/etc/l'), ['a', 'b@x.test', '|cmd -a, b', '/var/f', ':include:/etc/l']);
  assert.deepEqual(parseTarget('|cmd -a, b'), { kind: 'command', command: 'cmd -a, b' });
  assert.deepEqual(parseTarget('/var/mail/x/'), { kind: 'file', path: '/var/mail/x/' });
  assert.deepEqual(parseTarget(':INCLUDE:/etc/list'), { kind: 'include', path: '/etc/list' });
  assert.deepEqual(parseTarget('\\bob'), { kind: 'address', address: 'bob', noExpand: true });
  assert.deepEqual(parseTarget('<a@b>'), { kind: 'address', address: 'a@b', noExpand: false });
  assert.throws(() => parseTarget(':include:relative'), /absolute file name/);
  assert.throws(() => parseTarget('two words'), /bad address syntax/);
  assert.throws(() => parseTarget('a\0b'), /NUL/);
  assert.throws(() => splitTargets('"unbalanced'), /unbalanced double quote/);
  assert.deepEqual(parseTargetFile('# comment, with comma\nalice\n\n  bob@x, "|cmd"\n').map((t) => t.kind), ['address', 'address', 'command']);
});

test('aliases(5) source: continuation lines, comments, CRLF, errors with file and line', () => {
  const { entries, errors } = parseAliasesSource([
    '# comment', 'Root: alice,', '  bob,', '\tcarol', 'x: y\r', '"quoted": z', 'noColon', '  orphan?', 'empty:', 'nul: a\0b', 'bad: "oops', `long: ${'a'.repeat(200000)}`,
  ].join('\n'), '/etc/aliases');
  assert.deepEqual(entries.map((e) => [e.name, e.value.slice(0, 20), e.line]), [['root', 'alice, bob, carol', 2], ['x', 'y', 5], ['quoted', 'z', 6], ['long', 'a'.repeat(20), 12]]);
  assert.deepEqual(errors, [
    '/etc/aliases:7: need "name: value" format (no \':\' found)',
    '/etc/aliases:9: alias "empty" has an empty value',
    '/etc/aliases:10: NUL byte in line',
    '/etc/aliases:11: unbalanced double quote in ""oops"',
  ]);
});

test('postern newaliases / postern alias build the index alias_maps reads, and -q queries it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-newaliases-'));
  const errs: string[] = [];
  const origErr = process.stderr.write.bind(process.stderr);
  const origOut = process.stdout.write.bind(process.stdout);
  let out = '';
  try {
    writeFileSync(join(dir, 'aliases'), 'postmaster: root\nRoot: alice, "|/usr/bin/x -y"\nroot: dup\n');
    writeFileSync(join(dir, 'main.cf'), `alias_database = hash:${dir}/aliases\nalias_maps = hash:${dir}/aliases\n`);
    process.stderr.write = ((s: string) => { errs.push(String(s)); return true; }) as typeof process.stderr.write;
    process.stdout.write = ((s: string) => { out += String(s); return true; }) as typeof process.stdout.write;
    assert.equal(await main([], { configDir: dir, configDirExplicit: true, command: 'newaliases' }), 0);
    assert.match(errs.join(''), /aliases:3: duplicate entry: "root"/);
    const d = await openHashDict('hash', join(dir, 'aliases'));
    assert.equal(await d.lookup('root'), 'alice, "|/usr/bin/x -y"');
    assert.equal(await main(['-q', 'POSTMASTER'], { configDir: dir, configDirExplicit: true, command: 'alias' }), 0);
    assert.equal(out, 'root\n');
    assert.equal(await main(['-q', 'nobody'], { configDir: dir, configDirExplicit: true, command: 'alias' }), 1);
    assert.equal(buildAliases(join(dir, 'missing')), false);
    assert.match(errs.join(''), /fatal: open .*missing: No such file or directory/);
    assert.ok(!existsSync(join(dir, 'missing.pdb')));
    assert.ok(readFileSync(join(dir, 'aliases.pdb')).length > 0);
  } finally {
    process.stderr.write = origErr;
    process.stdout.write = origOut;
    rmSync(dir, { recursive: true, force: true });
  }
});

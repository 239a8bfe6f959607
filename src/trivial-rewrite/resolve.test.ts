/**
 * Tests for resolve.ts, domain-list.ts, transport.ts, address-class.ts and resolve-context.ts
 * that do not fit the golden tables: hostile input, table failures, list syntax, recipient
 * validation replies. Tables are real (inline:, texthash:, regexp: through src/global/maps.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DictError } from '../util/dict.ts';
import { resolve, domainClass, MAX_ADDRESS_LENGTH } from './resolve.ts';
import { buildResolveContext, interfaceAddresses, type TableOpener } from './resolve-context.ts';
import { mapsTableOpener } from './resolve-context-open.ts';
import { DomainList, splitList } from './domain-list.ts';
import { checkRecipient, recipientTableFor } from './address-class.ts';
import { paramSource } from '../../test/harness/trivial-rewrite-params.ts';

const quiet = () => {};
const ctxOf = (o: Record<string, string> = {}, dir?: string) =>
  buildResolveContext(paramSource(o), mapsTableOpener(dir, quiet), '/etc/postern');

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = mkdtempSync(join(tmpdir(), 'postern-tr-'));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('hostile addresses: NUL, CR, LF and over-long addresses are bad syntax, not crashes', async () => {
  const ctx = await ctxOf();
  for (const a of ['jo\0e@mx.example.net', 'joe@mx.example.net\r\nRCPT TO:<x@evil>', 'joe\n@example.com']) {
    const r = await resolve(ctx, a);
    assert.equal(r.flags.error, true, JSON.stringify(a));
    assert.equal(r.transport, 'error');
    assert.equal(r.nexthop, '5.1.3 bad address syntax');
  }
  const t0 = Date.now();
  const big = await resolve(ctx, 'a'.repeat(1 << 20) + '@mx.example.net');
  assert.equal(big.flags.error, true);
  assert.ok(big.recipient.length <= 256, 'the reply does not echo a megabyte');
  const justFits = await resolve(ctx, 'a'.repeat(MAX_ADDRESS_LENGTH - '@mx.example.net'.length) + '@mx.example.net');
  assert.equal(justFits.class, 'local');
  assert.ok(Date.now() - t0 < 2000);
});

test('hostile routing chains terminate quickly', async () => {
  const ctx = await ctxOf();
  const t0 = Date.now();
  // user%ours%ours%...@ours: every iteration strips one local domain (Postfix's loop).
  const chain = 'joe' + '%mx.example.net'.repeat(250) + '@mx.example.net';
  const r = await resolve(ctx, chain);
  assert.equal(r.class, 'local');
  assert.equal(r.recipient, 'joe@mx.example.net');
  const bangs = await resolve(ctx, 'mx.example.net!'.repeat(250) + 'joe');
  assert.equal(bangs.recipient, 'joe@mx.example.net');
  const quoted = await resolve(ctx, 'a@'.repeat(1000) + 'example.com@mx.example.net');
  assert.equal(quoted.class, 'default');
  assert.equal(quoted.flags.routed, true);
  assert.ok(Date.now() - t0 < 2000, `took ${Date.now() - t0} ms`);
});

test('a percent-hack relay attempt through us is resolved to the remote domain (no open relay)', async () => {
  const ctx = await ctxOf();
  for (const a of ['victim%example.com@mx.example.net', 'victim@example.com@mx.example.net',
                   'example.com!victim@mx.example.net', '@mx.example.net:victim@example.com']) {
    const r = await resolve(ctx, a);
    assert.equal(r.class, 'default', a);
    assert.equal(r.nexthop, 'example.com', a);
  }
});

test('a failing table gives flags.fail (defer), never a bounce or "not found"', async () => {
  const failing: TableOpener = {
    async openMaps(spec) {
      if (spec === '') return undefined;
      return { find: async () => { throw new DictError('retry', `${spec}: server unavailable`); } };
    },
    async addrFind(m, a) { return m.find(a); },
  };
  for (const param of ['virtual_mailbox_domains', 'transport_maps', 'relocated_maps', 'mydestination']) {
    const ctx = await buildResolveContext(paramSource({ [param]: 'pgsql:/etc/postern/broken.cf' }), failing);
    const r = await resolve(ctx, 'joe@example.com');
    assert.equal(r.flags.fail, true, param);
    assert.equal(r.transport, 'retry', param);
    assert.match(r.nexthop, /^4\.3\.0 /);
    assert.match(r.warnings.join('\n'), /server unavailable/);
  }
});

test('a table that cannot be opened defers its lookups (Maps surrogate)', async () => {
  const ctx = await ctxOf({ transport_maps: 'texthash:/nonexistent/postern/transport' });
  const r = await resolve(ctx, 'joe@example.com');
  assert.equal(r.flags.fail, true);
  assert.match(r.warnings[0]!, /nonexistent/);
});

test('an empty transport parameter is a configuration error naming main.cf and the parameter', async () => {
  const ctx = await ctxOf({ default_transport: '' });
  const r = await resolve(ctx, 'joe@example.com');
  assert.equal(r.flags.fail, true);
  assert.deepEqual(r.warnings, ['file /etc/postern/main.cf: parameter default_transport: null transport is not allowed']);
});

test('domain lists: tables, /file/name patterns, negation, parent styles', async (t) => {
  const d = tmp(t);
  writeFileSync(join(d, 'domains'), '# hosted domains\nfile1.example, file2.example\n  file3.example # trailing comment\n');
  const open = mapsTableOpener(d, quiet);
  const o = async (spec: string, p: string) => (await open.openMaps(spec, p))!;
  const l = await DomainList.create('virtual_mailbox_domains',
    `!bad.example, ${join(d, 'domains')}, inline:{ {t.example=x} }, bad.example, Plain.Example`, 'string', false, o);
  for (const [n, want] of [['file1.example', true], ['FILE3.example', true], ['t.example', true],
    ['plain.example', true], ['bad.example', false], ['sub.plain.example', false], ['x', false]] as const) {
    assert.equal(await l.match(n), want, n);
  }
  assert.deepEqual(l.literals(), ['file1.example', 'file2.example', 'file3.example', 'bad.example', 'plain.example']);

  const dot = await DomainList.create('relay_domains', '.sub.example, inline:{ {.tbl.example=1} }', 'hostname', false, o);
  assert.equal(await dot.match('a.sub.example'), true);
  assert.equal(await dot.match('sub.example'), false, '.domain matches only below the domain');
  assert.equal(await dot.match('x.y.tbl.example'), true, 'table: parent lookups .y.tbl.example, .tbl.example');
  const parent = await DomainList.create('relay_domains', 'example.org, inline:{ {tbl.example=1} }', 'hostname', true, o);
  assert.equal(await parent.match('a.b.example.org'), true);
  assert.equal(await parent.match('badexample.org'), false);
  assert.equal(await parent.match('x.tbl.example'), true, 'parent style table lookups drop the dot');

  await assert.rejects(DomainList.create('mydestination', join(d, 'missing'), 'string', false, o),
    (e: Error) => e.name === 'ConfigError' && e.message.includes(join(d, 'missing')) && e.message.includes('mydestination'));
  writeFileSync(join(d, 'nul'), 'a.example\0b.example\n');
  await assert.rejects(DomainList.create('mydestination', join(d, 'nul'), 'string', false, o), /line 1: NUL byte/);
  assert.deepEqual(splitList('a, b\tc ,, inline:{ {k = v w}, x=y }'), ['a', 'b', 'c', 'inline:{ {k = v w}, x=y }']);
});

test('regexp tables see only full addresses in transport_maps (DICT_FLAG_FIXED)', async (t) => {
  const d = tmp(t);
  writeFileSync(join(d, 'transport.re'), '/^joe@/ smtp:[joe-gw.example]\n/example\\.org$/ relay:[org-gw.example]\n');
  const ctx = await ctxOf({ transport_maps: `regexp:${join(d, 'transport.re')}` }, d);
  assert.equal((await resolve(ctx, 'joe@example.com')).nexthop, '[joe-gw.example]');
  assert.equal((await resolve(ctx, 'ann@example.org')).nexthop, '[org-gw.example]', 'the full address matches');
  assert.equal((await resolve(ctx, 'ann@example.net')).nexthop, 'example.net');
});

test('inet_interfaces: all, loopback-only, literals, /etc/hosts names, no DNS', (t) => {
  const w: string[] = [];
  assert.ok(interfaceAddresses('all', '', w).has('127.0.0.1'));
  assert.deepEqual([...interfaceAddresses('loopback-only', '', w)].sort(), ['127.0.0.1', '::1']);
  assert.deepEqual([...interfaceAddresses('192.0.2.1, [2001:db8::0:1]', '', w)], ['192.0.2.1', '2001:db8::1']);
  const d = tmp(t);
  writeFileSync(join(d, 'hosts'), '192.0.2.7 mail.example.com mail # us\n');
  assert.deepEqual([...interfaceAddresses('mail.example.com', 'mail', w, join(d, 'hosts'))], ['192.0.2.7']);
  assert.deepEqual(w, []);
  interfaceAddresses('nowhere.example', '', w, join(d, 'hosts'));
  assert.match(w[0]!, /inet_interfaces: cannot find the address of "nowhere.example"/);
});

test('domainClass: the five classes of the seed Table 1', async () => {
  const ctx = await ctxOf({ virtual_alias_domains: 'a.example', virtual_mailbox_domains: 'v.example', relay_domains: 'r.example' });
  assert.equal(await domainClass(ctx, 'mx.example.net'), 'local');
  assert.equal(await domainClass(ctx, '[127.0.0.1]'), 'local');
  assert.equal(await domainClass(ctx, 'a.example'), 'alias');
  assert.equal(await domainClass(ctx, 'v.example'), 'virtual');
  assert.equal(await domainClass(ctx, 'r.example'), 'relay');
  assert.equal(await domainClass(ctx, 'elsewhere.example'), 'default');
});

test('recipient tables per class carry Postfix\'s exact reply texts', async () => {
  const ctx = await ctxOf({
    virtual_mailbox_domains: 'v.example', virtual_mailbox_maps: 'inline:{ {info@v.example=v.example/info/} }',
    virtual_alias_domains: 'a.example', virtual_alias_maps: 'inline:{ {sales@a.example=joe}, {postmaster@v.example=root} }',
    relay_domains: 'r.example', relay_recipient_maps: 'inline:{ {known@r.example=x} }',
    local_recipient_maps: 'inline:{ {joe=x} }', recipient_delimiter: '+',
  });
  assert.equal(recipientTableFor(ctx, 'local').replyText, 'User unknown in local recipient table');
  assert.equal(recipientTableFor(ctx, 'virtual').replyText, 'User unknown in virtual mailbox table');
  assert.equal(recipientTableFor(ctx, 'alias').replyText, 'User unknown in virtual alias table');
  assert.equal(recipientTableFor(ctx, 'relay').replyText, 'User unknown in relay recipient table');
  assert.equal(recipientTableFor(ctx, 'default').replyText, 'Relay access denied');
  assert.equal(recipientTableFor(ctx, 'default').code, 554);
  assert.equal(recipientTableFor(ctx, 'virtual').paramName, 'virtual_mailbox_maps');

  const check = async (a: string) => checkRecipient(ctx, await resolve(ctx, a));
  assert.deepEqual(await check('info@v.example'), { ok: true });
  assert.deepEqual(await check('info+tag@v.example'), { ok: true }, 'extension stripped by mail_addr_find');
  assert.deepEqual(await check('nobody@v.example'),
    { ok: false, code: 550, dsn: '5.1.1', text: 'User unknown in virtual mailbox table', paramName: 'virtual_mailbox_maps' });
  assert.deepEqual(await check('postmaster@v.example'), { ok: true }, 'found in virtual_alias_maps: accepted in any class');
  assert.deepEqual(await check('sales@a.example'), { ok: true });
  assert.deepEqual(await check('nobody@a.example'),
    { ok: false, code: 550, dsn: '5.1.1', text: 'User unknown in virtual alias table', paramName: 'virtual_alias_maps' });
  assert.deepEqual(await check('known@r.example'), { ok: true });
  assert.deepEqual(await check('unknown@r.example'),
    { ok: false, code: 550, dsn: '5.1.1', text: 'User unknown in relay recipient table', paramName: 'relay_recipient_maps' });
  assert.deepEqual(await check('joe@mx.example.net'), { ok: true }, 'local: bare user key for a local domain');
  assert.deepEqual(await check('postmaster@mx.example.net'), { ok: true }, 'postmaster is always accepted');
  assert.deepEqual(await check('nobody@localhost'),
    { ok: false, code: 550, dsn: '5.1.1', text: 'User unknown in local recipient table', paramName: 'local_recipient_maps' });
  assert.deepEqual(await check('anyone@example.com'), { ok: true }, 'the default class is reject_unauth_destination\'s job');
});

test('empty recipient tables disable the check (USERS = {} in the seed)', async () => {
  const ctx = await ctxOf({ virtual_mailbox_domains: 'v.example' });
  assert.equal(recipientTableFor(ctx, 'virtual').maps, undefined);
  assert.deepEqual(await checkRecipient(ctx, await resolve(ctx, 'anyone@v.example')), { ok: true });
});

test('a recipient table that cannot be opened does not stop resolving (opened lazily)', async () => {
  const ctx = await ctxOf({ local_recipient_maps: 'nis:mail.aliases' });
  const r = await resolve(ctx, 'joe@mx.example.net');
  assert.equal(r.class, 'local');
  await assert.rejects(checkRecipient(ctx, r), DictError);
});

test('openResolveContext: built from a real main.cf (MainConfig), the seed example resolves as documented', async (t) => {
  const { MainConfig } = await import('../global/mail-conf.ts');
  const { openResolveContext } = await import('./resolve-context-open.ts');
  const d = tmp(t);
  writeFileSync(join(d, 'vmailbox'), 'info@myoffice.space myoffice.space/info\nsales@myoffice.space myoffice.space/sales/\n');
  writeFileSync(join(d, 'main.cf'), [
    'compatibility_level = 3.6', 'myhostname = mail.myoffice.ru', 'mydomain = myoffice.ru',
    'inet_interfaces = loopback-only',
    'virtual_mailbox_domains = myoffice.space ', 'virtual_mailbox_base = /var/mail/vhosts',
    `virtual_mailbox_maps = texthash:${join(d, 'vmailbox')}`, 'virtual_alias_maps = inline:{ {postmaster@myoffice.space=postmaster} }',
    'transport_maps = inline:{ {lmtp.example=lmtp:unix:private/dovecot-lmtp} }', '',
  ].join('\n'));
  const ctx = await openResolveContext(MainConfig.load(d), quiet);
  const r = await resolve(ctx, 'info@myoffice.space');
  assert.deepEqual([r.class, r.transport, r.nexthop, r.recipient], ['virtual', 'virtual', 'myoffice.space', 'info@myoffice.space']);
  const l = await resolve(ctx, 'root');
  assert.deepEqual([l.class, l.transport, l.nexthop, l.recipient], ['local', 'local', 'mail.myoffice.ru', 'root@mail.myoffice.ru']);
  assert.equal((await resolve(ctx, 'joe@[127.0.0.1]')).class, 'local', 'loopback-only interface literal');
  assert.equal((await resolve(ctx, 'x@lmtp.example')).nexthop, 'unix:private/dovecot-lmtp');
  assert.equal((await resolve(ctx, 'x@example.com')).transport, 'smtp');
  assert.deepEqual(await checkRecipient(ctx, await resolve(ctx, 'nobody@myoffice.space')),
    { ok: false, code: 550, dsn: '5.1.1', text: 'User unknown in virtual mailbox table', paramName: 'virtual_mailbox_maps' });
  assert.equal(ctx.rewrite.append_dot_mydomain, false, 'compatibility_level 3.6 default');
});

test('openResolveContext: compatibility_level 0 defaults (append_dot_mydomain = yes, relay_domains = $mydestination)', async (t) => {
  const { MainConfig } = await import('../global/mail-conf.ts');
  const { openResolveContext } = await import('./resolve-context-open.ts');
  const cf = MainConfig.parse('myhostname = mx.example.net\nmydomain = example.net\nlocal_recipient_maps =\n', join(tmp(t), 'main.cf'));
  const ctx = await openResolveContext(cf, quiet);
  assert.equal(ctx.rewrite.append_dot_mydomain, true);
  assert.equal(await ctx.relay_domains.match('mx.example.net'), true);
  assert.equal(await ctx.relay_domains.match('sub.localhost'), true, 'relay_domains is parent-matched');
});

test('TrivialRewrite: rewrite + resolve, cached replies expire, failures are not cached', async () => {
  const { TrivialRewrite } = await import('./trivial-rewrite.ts');
  let lookups = 0;
  let broken = false;
  const opener: TableOpener = {
    async openMaps(spec) {
      if (spec === '') return undefined;
      return { find: async (k: string) => { lookups++; if (broken) throw new DictError('retry', 'down'); return k === 'v.example' ? 'x' : undefined; } };
    },
    async addrFind(m, a) { return m.find(a); },
  };
  const ctx = await buildResolveContext(paramSource({ virtual_mailbox_domains: 'inline:{v.example=x}', myorigin: 'example.net' }), opener);
  let clock = 0;
  const tr = new TrivialRewrite(ctx, () => clock);
  assert.equal(tr.rewrite('joe'), 'joe@example.net');
  assert.equal((await tr.resolve('joe@v.example')).class, 'virtual');
  const n = lookups;
  const again = await tr.resolve('joe@v.example');
  assert.equal(again.class, 'virtual');
  assert.equal(lookups, n, 'served from the cache');
  again.transport = 'mutated';
  assert.equal((await tr.resolve('joe@v.example')).transport, 'virtual', 'callers get copies');
  clock += 31_000;
  broken = true;
  assert.equal((await tr.resolve('joe@v.example')).flags.fail, true, 'expired, asks the table again');
  broken = false;
  assert.equal((await tr.resolve('joe@v.example')).flags.fail, false, 'the failure was not cached');
  assert.equal(tr.recipientTableFor('relay').replyText, 'User unknown in relay recipient table');
});

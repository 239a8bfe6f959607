/**
 * Tests of main.cf parsing (mail-conf.ts), $name expansion (util/mac-expand.ts) and the
 * computed defaults of mail-params.ts. What real postconf prints for the same files is checked in
 * src/cli/postconf.test.ts; here: every syntax form, typed accessors, and hostile input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from './config-error.ts';
import { macExpand } from '../util/mac-expand.ts';
import { MainConfig, parseMainCf, splitList } from './mail-conf.ts';
import { defaultMyDomain, defaultMyHostname, defaultMyNetworks, maskIPv6 } from './mail-params-computed.ts';
import { paramSpec } from './mail-params-service.ts';
import { PARAMS } from './mail-params.ts';

const conf = (text: string): MainConfig => MainConfig.parse(text, '/etc/postern/main.cf', '/etc/postern');

test('comments, blank lines, continuation lines, later entries override earlier ones', () => {
  const c = conf([
    '# a comment',
    '',
    'myhostname = a',
    '  b',
    'mydomain = x',
    '  # an indented comment inside a continued entry is skipped',
    ' y',
    '#z',
    ' w',
    'myorigin = q  # not a comment',
    '   ',
    'relayhost=first',
    'relayhost =   second   ',
  ].join('\n'));
  assert.equal(c.raw('myhostname'), 'a  b'); // pieces joined as they are
  assert.equal(c.raw('mydomain'), 'x y w');
  assert.equal(c.raw('myorigin'), 'q  # not a comment');
  assert.equal(c.raw('relayhost'), 'second');
  assert.deepEqual(c.explicitNames(), ['myhostname', 'mydomain', 'myorigin', 'relayhost']);
  assert.equal(c.isSet('relay_domains'), false);
  assert.equal(c.raw('relay_domains'), undefined);
});

test('CRLF files read like LF files', () => {
  const c = conf('myhostname = host.example\r\nmydestination = $myhostname,\r\n  localhost\r\n');
  assert.equal(c.get('myhostname'), 'host.example');
  assert.deepEqual(c.list('mydestination'), ['host.example', 'localhost']);
});

test('syntax errors name the file and the first line of the logical line (Postfix wording)', () => {
  assert.throws(() => conf('myhostname = y\n\n\nbad\n  line\n'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(e.line, 4);
    assert.equal(e.message, `/etc/postern/main.cf, line 4: missing '=' after attribute name: "bad  line"`);
    return true;
  });
  assert.throws(() => conf('=x\n'), /line 1: missing attribute name: "=x"/);
  assert.throws(() => conf('my host = y\n'), /missing '=' after attribute name/);
});

test('a logical line starting with white space is ignored with Postfix\'s warning', () => {
  const p = parseMainCf('  indented = x\nmyhostname=y\n', 'main.cf');
  assert.deepEqual(p.entries, [{ name: 'myhostname', value: 'y', line: 2 }]);
  assert.deepEqual(p.warnings, ['main.cf: logical line must not start with whitespace: "  indented = x"']);
});

test('$name, ${name}, $(name), $$ and undefined names', () => {
  const c = conf('myhostname = host.example.com\nmydomain = $myhostname\nmyorigin = ${mydomain}\n' +
    'alias_database = $(myorigin)\nbounce_notice_recipient = a$nosuch.b\nbody_checks = $$myhostname\n');
  assert.equal(c.get('alias_database'), 'host.example.com');
  assert.equal(c.get('bounce_notice_recipient'), 'a.b');
  assert.equal(c.get('body_checks'), '$myhostname');
  assert.equal(c.expand('<$myorigin>'), '<host.example.com>');
});

test('${name?value}, ${name:value} and the {value} forms', () => {
  const c = conf('myhostname = h.example\nempty_param =\n');
  const x = (t: string): string => c.expand(t);
  assert.equal(x('${myhostname?yes}${nosuch?no}'), 'yes');
  assert.equal(x('${nosuch:def}${myhostname:nodef}'), 'def');
  assert.equal(x('${empty_param:was empty}'), 'was empty');
  assert.equal(x('${myhostname?{X $myhostname Y}:{no}}'), 'X h.example Y');
  assert.equal(x('${nosuch?{X}:{Z $myhostname}}'), 'Z h.example');
  assert.equal(x('${myhostname?{a}}'), 'a');
  assert.equal(x('${nosuch:{b}}'), 'b');
  // Postfix 2.11 compatibility: text without {} after ? is taken verbatim, ':' included.
  assert.equal(x('${myhostname??foo:{b}ar}'), '?foo:{b}ar');
});

test('logical expressions: ==, !=, numeric and compatibility-level comparisons', () => {
  const c = conf('myhostname = h.example\n');
  const x = (t: string): string => c.expand(t);
  assert.equal(x('${{$myhostname} == {h.example} ? {eq} : {ne}}'), 'eq');
  assert.equal(x('${{$myhostname} != {h.example} ? {ne} : {eq}}'), 'eq');
  assert.equal(x('${{10} < {9} ? {lt} : {ge}}'), 'ge');
  assert.equal(x('${{3.6} <level {3.10} ? {older} : {newer}}'), 'older');
  assert.equal(x('${{2} >=level {2} ? {y} : {n}}'), 'y');
  assert.throws(() => x('${{a} =~ {b}}'), /expected/);
});

test('compatibility_level selects Postfix 3.7\'s backwards-compatible defaults', () => {
  const old = conf('');
  assert.equal(old.get('compatibility_level'), '0');
  assert.equal(old.get('relay_domains'), old.get('mydestination'));
  assert.equal(old.get('mynetworks_style'), 'subnet');
  assert.equal(old.bool('smtputf8_enable'), false);
  const now = conf('compatibility_level = 3.6\n');
  assert.equal(now.get('relay_domains'), '');
  assert.equal(now.get('mynetworks_style'), 'host');
  assert.equal(now.bool('smtputf8_enable'), true);
  assert.deepEqual(now.list('smtpd_relay_restrictions'), ['permit_mynetworks', 'permit_sasl_authenticated', 'defer_unauth_destination']);
});

test('definition loops are Postfix\'s "unreasonable macro call nesting", naming file and line', () => {
  const c = conf('myhostname = $mydomain\nmydomain = $myhostname\n');
  assert.throws(() => c.get('myhostname'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /main\.cf, line 1: parameter myhostname: unreasonable macro call nesting/);
    return true;
  });
  assert.throws(() => conf('myhostname = ${myhostname}\n').get('myhostname'), /unreasonable macro call nesting/);
  // mydomain = $myhostname on a host without a dot: the computed myhostname default asks for mydomain.
  assert.throws(() => conf('mydomain = $myhostname\n').get('mydomain'), ConfigError);
  // A legitimately deep chain (50 levels) is fine.
  const chain = Array.from({ length: 50 }, (_, i) => `p${i} = $p${i + 1}`).join('\n') + '\np50 = end\n';
  assert.equal(conf(chain).get('p0'), 'end');
});

test('macro syntax errors are ConfigErrors, never crashes', () => {
  for (const bad of ['${mydomain', '${mydomain?{a}', 'a$', 'a$ b', '${my-domain}', '${{a} == {b} x}']) {
    assert.throws(() => conf(`myorigin = ${bad}\n`).get('myorigin'), ConfigError, bad);
  }
});

test('raw parameters stay unexpanded (their macros belong to the daemon)', () => {
  const c = conf('');
  assert.equal(c.get('forward_path'), '$home/.forward${recipient_delimiter}${extension}, $home/.forward');
  assert.match(c.get('default_rbl_reply'), /^\$rbl_code Service unavailable/);
});

test('typed accessors: list, bool, int, time, size', () => {
  const c = conf('smtpd_recipient_restrictions = permit_mynetworks,reject_unauth_destination\n' +
    '  check_recipient_access inline:{ a@x=OK, b@x=REJECT }\n' +
    'maximal_queue_lifetime = 2\nbounce_queue_lifetime = 1w\nsmtpd_timeout = 60\n' +
    'message_size_limit = 1000\ndisable_vrfy_command = YES\nsmtpd_helo_required = maybe\n');
  assert.deepEqual(c.list('smtpd_recipient_restrictions'),
    ['permit_mynetworks', 'reject_unauth_destination', 'check_recipient_access', 'inline:{ a@x=OK, b@x=REJECT }']);
  assert.equal(c.time('maximal_queue_lifetime'), 2 * 86400); // bare number: default unit d
  assert.equal(c.time('bounce_queue_lifetime'), 7 * 86400);
  assert.equal(c.time('smtpd_timeout'), 60);
  assert.equal(c.time('minimal_backoff_time'), 300);
  assert.equal(c.size('message_size_limit'), 1000);
  assert.equal(c.int('default_process_limit'), 100);
  assert.equal(c.bool('disable_vrfy_command'), true);
  assert.throws(() => c.bool('smtpd_helo_required'), /line 8: bad boolean configuration: smtpd_helo_required = maybe/);
  assert.deepEqual(splitList(' a, b ,, {c d} e{f, g}h '), ['a', 'b', '{c d}', 'e{f, g}h']);
});

test('unknown parameters read as empty; main.cf user-defined names expand', () => {
  const c = conf('my_classes = permit\nsmtpd_client_restrictions = $my_classes\ndefault_destination_concurrency_limit = 7\n');
  assert.equal(c.get('no_such_parameter'), '');
  assert.equal(c.int('relay_destination_concurrency_limit'), 7); // per-transport parameters of any master.cf service
  assert.equal(c.int('local_destination_concurrency_limit'), 2);
  assert.equal(c.get('smtpd_client_restrictions'), 'permit');
});

test('withOverrides: master.cf -o values win and may use $name', () => {
  const c = conf('myhostname = h.example\nsmtpd_tls_security_level = may\n');
  const o = c.withOverrides({ smtpd_tls_security_level: 'encrypt', smtpd_banner: '$myhostname submission' });
  assert.equal(o.get('smtpd_tls_security_level'), 'encrypt');
  assert.equal(o.get('smtpd_banner'), 'h.example submission');
  assert.equal(c.get('smtpd_tls_security_level'), 'may');
  assert.deepEqual(o.explicitNames(), c.explicitNames());
});

test('myhostname/mydomain defaults as the seed\'s Table 3 computes them', () => {
  assert.equal(defaultMyDomain('www.stud12.myoffice.space'), 'stud12.myoffice.space');
  assert.equal(defaultMyDomain('stud12.myoffice.space'), 'myoffice.space');
  // The seed's row 3: never a bare top-level domain (Postfix 3.7.11 says `space`; docs/main-cf.md).
  assert.equal(defaultMyDomain('myoffice.space'), 'myoffice.space');
  assert.equal(conf('myhostname = myoffice.space\n').get('mydomain'), 'myoffice.space');
  assert.equal(defaultMyDomain('vm'), 'localdomain');
  assert.equal(defaultMyDomain('vm.localdomain'), 'localdomain', 'a machine without a domain: as Postfix');
  assert.equal(defaultMyHostname('localhost', 'myoffice.space'), 'localhost.myoffice.space');
  assert.equal(defaultMyHostname('vm'), 'vm.localdomain');
  assert.equal(defaultMyHostname('mail.example.org', 'ignored.example'), 'mail.example.org');
  for (const [host, dom] of [['www.stud12.myoffice.space', 'stud12.myoffice.space'], ['stud12.myoffice.space', 'myoffice.space']]) {
    const c = conf(`myhostname = ${host}\n`);
    assert.equal(c.get('mydomain'), dom);
    assert.equal(c.get('mydestination'), `${host}, localhost.${dom}, localhost`);
    assert.equal(c.get('myorigin'), host);
  }
});

test('mynetworks for each mynetworks_style', () => {
  const addrs = [
    { address: '127.0.0.1', family: 'IPv4' as const, prefix: 8 },
    { address: '192.0.2.2', family: 'IPv4' as const, prefix: 24 },
    { address: '172.20.1.9', family: 'IPv4' as const, prefix: 20 },
    { address: '::1', family: 'IPv6' as const, prefix: 128 },
    { address: 'fe80::fc:ff:fe00:1', family: 'IPv6' as const, prefix: 64 },
  ];
  assert.equal(defaultMyNetworks('subnet', addrs), '127.0.0.0/8 192.0.2.0/24 172.20.0.0/20 [::1]/128 [fe80::]/64');
  assert.equal(defaultMyNetworks('host', addrs), '127.0.0.1/32 192.0.2.2/32 172.20.1.9/32 [::1]/128 [fe80::fc:ff:fe00:1]/128');
  assert.equal(defaultMyNetworks('class', addrs), '127.0.0.0/8 192.0.2.0/24 172.20.0.0/16 [::1]/128 [fe80::]/64');
  assert.throws(() => defaultMyNetworks('nonsense', addrs), /unknown mynetworks_style/);
  assert.equal(maskIPv6('2001:db8:1:2:3:4:5:6', 48), '2001:db8:1::');
  assert.equal(maskIPv6('2001:0:0:1:0:0:0:1', 128), '2001:0:0:1::1');
});

test('the parameter table: one entry per name, typed, documented', () => {
  const names = new Set<string>();
  for (const p of PARAMS) {
    assert.ok(!names.has(p.name), `duplicate ${p.name}`);
    names.add(p.name);
    if (p.type === 'time') assert.match(p.unit ?? '', /^[smhdw]$/, p.name);
  }
  assert.ok(PARAMS.length >= 800);
  assert.equal(paramSpec('virtual_alias_domains')?.default, '$virtual_alias_maps');
  assert.equal(paramSpec('mydestination')?.default, '$myhostname, localhost.$mydomain, localhost');
  assert.equal(paramSpec('relay_domains')?.default, '${{$compatibility_level} <level {2} ? {$mydestination} : {}}');
  assert.ok((paramSpec('virtual_mailbox_maps')?.doc.length ?? 0) > 10);
});

test('hostile input: 10 MB line, NUL bytes, unreadable and missing files', () => {
  const big = 'x'.repeat(10 * 1024 * 1024);
  const t0 = Date.now();
  const c = conf(`myhostname = ${big}\nsmtpd_banner = $myhostname\n`);
  assert.equal(c.get('smtpd_banner').length, big.length);
  assert.equal(c.list('myhostname').length, 1);
  assert.throws(() => conf(`${big}\n`), (e: unknown) => e instanceof ConfigError && e.message.length < 400);
  // Linear work: ~1 s on an idle machine; the bound leaves room for a loaded CI host.
  assert.ok(Date.now() - t0 < 30_000, 'a 10 MB line takes seconds, not minutes');
  assert.throws(() => conf('myhostname = y\0z\n'), /line 1: NUL character/);
  assert.throws(() => macExpand('$a', (n) => (n === 'a' ? '$a' : undefined)), /unreasonable macro call nesting/);

  const dir = mkdtempSync(join(tmpdir(), 'postern-maincf-'));
  try {
    assert.equal(MainConfig.load(join(dir, 'absent')).get('myorigin'), MainConfig.parse('').get('myhostname'));
    mkdirSync(join(dir, 'isdir', 'main.cf'), { recursive: true });
    assert.throws(() => MainConfig.load(join(dir, 'isdir')), (e: unknown) => e instanceof ConfigError && /isdir\/main\.cf: cannot read/.test(e.message));
    writeFileSync(join(dir, 'main.cf'), 'myhostname = ../../etc/passwd\n');
    assert.equal(MainConfig.load(dir).get('myhostname'), '../../etc/passwd'); // just text; nothing opened
    if (process.getuid?.() !== 0) {
      chmodSync(join(dir, 'main.cf'), 0);
      assert.throws(() => MainConfig.load(dir), ConfigError);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

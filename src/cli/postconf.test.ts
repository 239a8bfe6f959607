/**
 * `postern conf` against the real thing: each case writes a main.cf into a temp directory (with an
 * empty master.cf, or Debian's) and runs Debian's postconf 3.7 (`postconf -c DIR ...`) and
 * `postern -c DIR conf ...` on it, asserting identical stdout and the same set of warnings.
 * Postfix prints some warnings several times (once per pass over main.cf): stderr is compared as
 * a set of lines.
 *
 * Parameters whose value is Postern's own by design are left out, with the reason:
 *   mail_name, mail_version, milter_macro_v (when expanded): Postern's identity, not Postfix's;
 *   process_id: the process differs;  config_directory (-d): Postfix prints its compile-time
 *   /etc/postfix, Postern the directory in use.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './postconf.ts';
import { PARAMS } from '../global/mail-params.ts';

const POSTERN = join(import.meta.dirname, 'postern.ts');
const SKIP: Record<string, string> = {
  mail_name: 'Postern identity',
  mail_version: 'Postern identity',
  milter_macro_v: 'contains $mail_name $mail_version',
  process_id: 'differs per process',
  config_directory: 'Postfix -d prints its compile-time /etc/postfix',
};
const hasPostconf = spawnSync('postconf', ['-d', 'mail_version']).status === 0;

let root = '';
before(() => { root = mkdtempSync(join(tmpdir(), 'postern-postconf-')); });
after(() => { rmSync(root, { recursive: true, force: true }); });

let n = 0;
function site(mainCf: string, masterCf = ''): string {
  const dir = join(root, `c${n++}`);
  spawnSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'main.cf'), mainCf);
  writeFileSync(join(dir, 'master.cf'), masterCf);
  return dir;
}

interface Result { out: string; err: string[]; code: number }

function real(dir: string, args: string[]): Result {
  const r = spawnSync('postconf', ['-c', dir, ...args], { encoding: 'utf8' });
  return { out: r.stdout, err: lines(r.stderr), code: r.status ?? -1 };
}

function ours(dir: string, args: string[]): Result {
  const io = { out: [] as string[], err: [] as string[] };
  let code: number;
  try {
    code = run(args, { configDir: dir, configDirExplicit: true, command: 'conf' }, io);
  } catch (err) {
    io.err.push(`postconf: fatal: ${(err as Error).message}\n`);
    code = 1;
  }
  return { out: io.out.join(''), err: lines(io.err.join('')), code };
}

function lines(s: string): string[] {
  return [...new Set(s.split('\n').filter(Boolean))].sort();
}

/** Expanded, these contain $mail_name (Postern's identity): compared only unexpanded. */
const SKIP_EXPANDED = ['smtpd_banner', 'postscreen_greet_banner'];

function drop(out: string, expanded: boolean): string {
  const skip = [...Object.keys(SKIP), ...(expanded ? SKIP_EXPANDED : [])];
  // Postern's own parameters (POSTERN_PARAMS) are unknown to Postfix.
  return out.split('\n').filter((l) => !l.startsWith('postern_') && !skip.some((k) => l.startsWith(`${k} =`))).join('\n');
}

function same(dir: string, args: string[], what = args.join(' ')): void {
  const a = real(dir, args);
  const b = ours(dir, args);
  const expanded = args.some((x) => /^-[a-zA-Z#]*x/.test(x));
  assert.equal(drop(b.out, expanded), drop(a.out, expanded), `stdout of postconf ${what}`);
  assert.deepEqual(b.err, a.err, `warnings of postconf ${what}`);
  assert.equal(b.code, a.code, `exit status of postconf ${what}`);
}

const DERIVED = ['myhostname', 'mydomain', 'myorigin', 'mydestination', 'virtual_alias_domains', 'relay_domains',
  'mynetworks', 'mynetworks_style', 'inet_interfaces', 'proxy_interfaces', 'relay_transport', 'default_transport',
  'local_recipient_maps', 'virtual_mailbox_domains', 'virtual_alias_maps', 'smtpd_relay_restrictions',
  'smtputf8_enable', 'append_dot_mydomain', 'alias_database', 'relay_recipient_maps', 'virtual_transport',
  'smtpd_client_event_limit_exceptions', 'smtpd_timeout', 'syslog_name', 'postscreen_greet_wait'];

// The seed's main.cf examples (seed/000_daedb85519ab0015.txt).
const SEED_CASES: Record<string, string> = {
  'several domains in mydestination': 'myhostname = stud12.myoffice.ru\nmydomain = stud12.myoffice.ru\n' +
    'mydestination = stud12.myoffice.space $myhostname localhost.$mydomain\n',
  'virtual alias domains': 'virtual_alias_domains = stud12.myoffice.space\nvirtual_alias_maps = hash:/etc/postfix/virtual\n',
  'virtual mailboxes': 'virtual_mailbox_domains = myoffice.space\nvirtual_mailbox_base = /var/mail/vhosts\n' +
    'virtual_mailbox_maps = hash:/etc/postfix/vmailbox\nvirtual_minimum_uid = 100\nvirtual_uid_maps = static:5000\n' +
    'virtual_gid_maps = static:5000\nvirtual_alias_maps = hash:/etc/postfix/virtual\n',
  'Table 3: www.stud12.myoffice.space': 'myhostname = www.stud12.myoffice.space\n',
  'Table 3: stud12.myoffice.space': 'myhostname = stud12.myoffice.space\n',
  'Table 3: myoffice.space': 'myhostname = myoffice.space\n',
  'Table 3: mydomain only (myhostname from the machine name)': 'mydomain = myoffice.space\n',
  'relay with recipient maps': 'relay_domains = example.net, $mydomain\nrelay_recipient_maps = hash:/etc/postfix/relay_recipients\n' +
    'mynetworks = 127.0.0.0/8, [::1]/128\ninet_interfaces = loopback-only\nsmtpd_tls_security_level = encrypt\n',
};

const SYNTAX_CASES: Record<string, string> = {
  'every expansion form': [
    'myhostname = host.example.com', 'mydomain = $myhostname', 'myorigin = ${mydomain}', 'alias_database = $(myorigin)',
    'bounce_notice_recipient = a$nosuch.b', 'delay_notice_recipient = ${myhostname?yes}${nosuch?no}',
    'error_notice_recipient = ${nosuch:def}${myhostname:nodef}', '2bounce_notice_recipient = ${myhostname?{X $mydomain Y}:{no}}',
    'header_checks = ${nosuch?{X}:{Z $myhostname}}', 'body_checks = $$myhostname',
    'relay_domains = foo,  bar', '  baz', 'mynetworks_style = host',
    'empty_address_recipient = ${{$myhostname} == {host.example.com} ? {eq} : {ne}}', '',
  ].join('\n'),
  'comments, continuations, CRLF': '# c\r\nmyhostname = a\r\n\r\n  b\r\nmydomain = x\r\n  # c\r\n y\r\n#z\r\n w\r\nmyorigin = q  # x\r\n   \r\n',
  'user-defined, unused and undefined parameters': 'zz = 1\naa = 2\nmm = 3\nbb = $zz\ncc = 4\nmyhostname = $undef1 $undef2\n' +
    'mydomain = $aa\nqq = $(mm) ${undef0} ${undef3?x}\nsmtpd_restriction_classes = cls1, cls2\ncls1 = permit\nprocess_id = 7\n',
  'compatibility_level 2': 'compatibility_level = 2\n',
  'compatibility_level 3.6, class networks': 'compatibility_level = 3.6\nmynetworks_style = class\n',
  'long values': `smtpd_recipient_restrictions = ${Array.from({ length: 30 }, (_, i) => `check_recipient_access hash:/etc/postfix/r${i}`).join(', ')}\n`,
};

test('seed examples and Table 3: -n, and -x of the derived parameters, as real postconf', { skip: !hasPostconf }, () => {
  for (const [name, text] of Object.entries(SEED_CASES)) {
    const dir = site(text);
    same(dir, ['-n'], `-n (${name})`);
    if (name === 'Table 3: myoffice.space') continue;   // the one deliberate difference: below
    same(dir, ['-x', ...DERIVED], `-x derived (${name})`);
    same(dir, DERIVED, `derived (${name})`);
  }
  // Seed Table 3 row 3: mydomain is never a bare top-level domain (Postfix 3.7 answers `space`).
  const dir = site(SEED_CASES['Table 3: myoffice.space']!);
  assert.equal(real(dir, ['mydomain']).out, 'mydomain = space\n');
  assert.equal(ours(dir, ['mydomain']).out, 'mydomain = myoffice.space\n');
  assert.equal(ours(dir, ['-x', 'mydestination']).out, 'mydestination = myoffice.space, localhost.myoffice.space, localhost\n');
  assert.equal(ours(dir, ['-d', 'mydomain']).out, real(dir, ['-d', 'mydomain']).out, '-d: the machine name\'s default, as postconf');
});

test('syntax forms: -n, -x, -h, -f and the whole table, as real postconf', { skip: !hasPostconf }, () => {
  for (const [name, text] of Object.entries(SYNTAX_CASES)) {
    const dir = site(text);
    same(dir, ['-n'], `-n (${name})`);
    same(dir, ['-nx'], `-nx (${name})`);
    same(dir, ['-nf'], `-nf (${name})`);
    same(dir, ['-h', 'myhostname', 'mydomain', 'nosuch', 'cls1'], `-h (${name})`);
    same(dir, [], `all (${name})`);
    same(dir, ['-x'], `-x all (${name})`);
  }
});

test('-d: every parameter in PARAMS has Postfix 3.7\'s default text', { skip: !hasPostconf }, () => {
  const dir = site('myhostname = ignored.by.minus.d\nfoo = bar\n');
  same(dir, ['-d'], '-d');
  same(dir, ['-dx'], '-dx');
  const names = PARAMS.map((p) => p.name).filter((p) => !(p in SKIP));
  same(dir, ['-d', ...names], '-d NAME...');
});

test('per-service parameters from Debian\'s master.cf, and -M', { skip: !hasPostconf || !existsSync('/etc/postfix/master.cf') }, () => {
  const dir = site('compatibility_level = 3.6\n', readFileSync('/etc/postfix/master.cf', 'utf8'));
  same(dir, ['-d'], '-d with master.cf services');
  same(dir, [], 'all with master.cf services');
  same(dir, ['-M'], '-M');
  same(dir, ['-M', 'smtp/inet', 'relay'], '-M filters');
});

test('-e, -X and -# edit main.cf exactly as postconf does', { skip: !hasPostconf }, () => {
  const text = '# head\nmyhostname = a\n  b\n# mid\nmydomain = x\n  # inside\n  y\nrelay_domains=q\nmydomain = again\n';
  const cases: string[][] = [
    ['-e', 'myhostname = new  val', 'mydomain=y'],
    ['-e', 'relayhost = [smtp.example]:587'],
    ['-X', 'myhostname', 'nosuch'],
    ['-X', 'mydomain'],
    ['-#', 'myhostname', 'relay_domains'],
  ];
  for (const args of cases) {
    const a = site(text);
    const b = site(text);
    const ra = real(a, args);
    const rb = ours(b, args);
    assert.equal(readFileSync(join(b, 'main.cf'), 'utf8'), readFileSync(join(a, 'main.cf'), 'utf8'), args.join(' '));
    assert.deepEqual(rb.err, ra.err.map((l) => l.replace(a, b)), `warnings of ${args.join(' ')}`);
    assert.equal(rb.code, ra.code);
  }
  for (const bad of [['-e', 'x'], ['-e', '=v']]) {
    const a = site(text);
    const b = site(text);
    assert.deepEqual(ours(b, bad), real(a, bad), bad.join(' '));
  }
  // A new main.cf is created by -e; the write is atomic (no temp file left behind).
  const fresh = join(root, 'fresh');
  spawnSync('mkdir', ['-p', fresh]);
  assert.equal(ours(fresh, ['-e', 'myhostname = mail.example']).code, 0);
  assert.equal(readFileSync(join(fresh, 'main.cf'), 'utf8'), 'myhostname = mail.example\n');
  assert.deepEqual(spawnSync('ls', [fresh], { encoding: 'utf8' }).stdout.trim().split('\n'), ['main.cf']);
});

test('errors: a bad line and a definition loop are fatal with file and line', { skip: !hasPostconf }, () => {
  const dir = site('myhostname = y\nmydomain = a\n  b\nbad line\n');
  const a = real(dir, ['-n']);
  const b = ours(dir, ['-n']);
  assert.deepEqual(b, a);
  const loop = site('myhostname = $mydomain\nmydomain = $myhostname\n');
  const r = ours(loop, ['-x', 'myhostname']);
  assert.equal(r.code, 1);
  assert.match(r.err.join('\n'), /^postconf: fatal: .*main\.cf, line 1: parameter myhostname: unreasonable macro call nesting/);
  assert.equal(real(loop, ['-x', 'myhostname']).code, 1);
});

test('through the dispatcher: postern -c DIR conf, unknown names warn like postconf', { skip: !hasPostconf }, () => {
  const dir = site('myhostname = mail.example.org\nfoo = bar\n');
  const r = spawnSync(process.execPath, [POSTERN, '-c', dir, 'conf', 'mydomain', 'nosuch'], { encoding: 'utf8' });
  const p = spawnSync('postconf', ['-c', dir, 'mydomain', 'nosuch'], { encoding: 'utf8' });
  assert.equal(r.stdout, p.stdout);
  assert.equal(r.stdout, 'mydomain = example.org\n');
  assert.deepEqual(lines(r.stderr), lines(p.stderr));
  assert.equal(r.status, 0);
  const missing = spawnSync(process.execPath, [POSTERN, '-c', join(root, 'nope'), 'conf', '-n'], { encoding: 'utf8' });
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /^postconf: fatal: open .*nope\/main\.cf: No such file or directory/);
});

test('copy of real main.cf from Debian\'s package loads', { skip: !existsSync('/usr/share/postfix/main.cf.debian') || !hasPostconf }, () => {
  const dir = site('');
  copyFileSync('/usr/share/postfix/main.cf.debian', join(dir, 'main.cf'));
  same(dir, ['-n'], '-n of main.cf.debian');
});

test('a spawn service has <service>_time_limit, and nothing else per service, as postconf says', { skip: !hasPostconf }, () => {
  const dir = site('policyd-spf_time_limit = 3600\n', 'policyd-spf unix - n n - 0 spawn\n    user=policyd-spf argv=/usr/bin/policyd-spf\n');
  for (const args of [['-n'], ['-d', 'policyd-spf_time_limit'], ['policyd-spf_time_limit'], ['policyd-spf_destination_concurrency_limit']]) {
    assert.deepEqual(ours(dir, args), real(dir, args), `postconf ${args.join(' ')}`);
  }
});

/**
 * Tests for master-cf.ts: Debian's stock master.cf and the seed's examples load, and
 * formatMasterEntry() prints exactly what the real `postconf -c DIR -M` (and -Mf) prints for them;
 * field semantics; Postfix's error wording with file and line; hostile input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from './config-error.ts';
import {
  formatMasterEntry, inetEndpoint, loadMasterCf, parseMasterCf, POSTERN_SERVICES, unsupportedServices,
  type MasterEntry,
} from './master-cf.ts';

const TESTDATA = join(import.meta.dirname, 'testdata', 'postfix');
const FIXTURES = ['master.cf.debian', 'master.cf.dist', 'master.cf.seed', 'master.cf.syntax'];
const execFileP = promisify(execFile);

function withDir<T>(fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'postern-mastercf-'));
  try { return fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
}

/** Runs the real postconf on a copy of the fixture in a private config dir (postconf takes ~2 s: run them in parallel). */
async function realPostconf(fixture: string, flags: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'postern-mastercf-'));
  try {
    writeFileSync(join(dir, 'main.cf'), '');
    copyFileSync(join(TESTDATA, fixture), join(dir, 'master.cf'));
    const { stdout } = await execFileP('postconf', ['-c', dir, flags], { encoding: 'latin1' });
    return stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const postconfRuns = new Map<string, Promise<string>>();
for (const f of FIXTURES) for (const flags of ['-M', '-Mf']) {
  const p = realPostconf(f, flags);
  p.catch(() => {});
  postconfRuns.set(`${f} ${flags}`, p);
}

function parseFixture(fixture: string): MasterEntry[] {
  return parseMasterCf(readFileSync(join(TESTDATA, fixture), 'latin1'), `/etc/postfix/${fixture}`);
}

function parse(text: string): MasterEntry[] {
  return parseMasterCf(text, '/etc/postfix/master.cf');
}

function throwsConfig(text: string, line: number, re: RegExp): void {
  assert.throws(() => parse(text), (err: unknown) => {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.file, '/etc/postfix/master.cf');
    assert.equal(err.line, line);
    assert.match(err.message, new RegExp(`^/etc/postfix/master\\.cf, line ${line}: `));
    assert.match(err.message, re);
    return true;
  });
}

for (const fixture of FIXTURES) {
  test(`${fixture}: formatMasterEntry reproduces postconf -M byte for byte`, async () => {
    const ours = parseFixture(fixture).map((e) => formatMasterEntry(e) + '\n').join('');
    assert.equal(ours, await postconfRuns.get(`${fixture} -M`));
  });
  test(`${fixture}: formatMasterEntry({fold}) reproduces postconf -Mf byte for byte`, async () => {
    const ours = parseFixture(fixture).map((e) => formatMasterEntry(e, { fold: true }) + '\n').join('');
    assert.equal(ours, await postconfRuns.get(`${fixture} -Mf`));
  });
}

test('Debian stock master.cf: every active service, with resolved columns', () => {
  const entries = parseFixture('master.cf.debian');
  assert.equal(entries.length, 31);
  const by = (s: string, t: string): MasterEntry => entries.find((e) => e.service === s && e.type === t)!;

  const smtpd = by('smtp', 'inet');
  assert.deepEqual([smtpd.private, smtpd.unpriv, smtpd.chroot, smtpd.wakeup, smtpd.maxproc, smtpd.command],
    [false, true, true, 0, 100, 'smtpd']);
  assert.equal(smtpd.line, 12);
  assert.deepEqual(inetEndpoint(smtpd), { host: '', port: 25 });

  const pickup = by('pickup', 'unix');
  assert.deepEqual([pickup.private, pickup.wakeup, pickup.wakeupIfUsed, pickup.maxproc], [false, 60, false, 1]);
  const tlsmgr = by('tlsmgr', 'unix');
  assert.deepEqual([tlsmgr.private, tlsmgr.wakeup, tlsmgr.wakeupIfUsed], [true, 1000, true]);
  assert.equal(by('cleanup', 'unix').maxproc, 0);
  assert.equal(by('local', 'unix').unpriv, false);
  assert.equal(by('postlog', 'unix-dgram').command, 'postlogd');

  const relay = by('relay', 'unix');
  assert.deepEqual(relay.args, ['-o', 'syslog_name=postfix/$service_name']);
  assert.deepEqual(relay.overrides, { syslog_name: 'postfix/$service_name' });

  const maildrop = by('maildrop', 'unix');
  assert.deepEqual(maildrop.pipe, { flags: 'DRXhu', user: 'vmail', argv: ['/usr/bin/maildrop', '-d', '${recipient}'] });
  const uucp = by('uucp', 'unix');
  assert.deepEqual(uucp.pipe?.argv, ['uux', '-r', '-n', '-z', '-a$sender', '-', '$nexthop!rmail', '($recipient)']);
  assert.equal(by('scalemail-backend', 'unix').maxproc, 2);
  assert.equal(by('bsmtp', 'unix').pipe?.flags, 'Fq.');

  // Every active command of the stock file is one Postern runs (the pipe services via pipe).
  assert.deepEqual(unsupportedServices(entries), []);
});

test('seed examples: services, wakeup and the uucp pipe entry', () => {
  const entries = parseFixture('master.cf.seed');
  assert.deepEqual(entries.map((e) => `${e.service}/${e.type}`), [
    'smtp/inet', 'pickup/unix', 'cleanup/unix', 'rewrite/unix', 'qmgr/unix', 'error/unix', 'discard/unix',
    'smtp/unix', 'lmtp/unix', 'local/unix', 'virtual/unix', 'uucp/unix']);
  const qmgr = entries.find((e) => e.service === 'qmgr')!;
  assert.deepEqual([qmgr.private, qmgr.chroot, qmgr.wakeup, qmgr.maxproc], [false, false, 300, 1]);
  assert.deepEqual(entries.at(-1)!.pipe, { flags: 'Fqhu', user: 'uucp',
    argv: ['uux', '-r', '-n', '-z', '-a$sender', '-', '$nexthop!rmail', '($recipient)'] });
});

test('Postfix 3.0 syntax: -o { name = value }, -oname=value, {} args, host:port names', () => {
  const entries = parseFixture('master.cf.syntax');
  const sub = entries[0]!;
  assert.deepEqual(sub.overrides, {
    syslog_name: 'postfix/submission', smtpd_tls_security_level: 'encrypt', smtpd_sasl_auth_enable: 'yes',
    smtpd_client_restrictions: 'permit_sasl_authenticated, reject', smtpd_reject_unlisted_recipient: 'no',
  });
  assert.deepEqual(inetEndpoint(sub), { host: '', port: 587 });
  const subs = entries[1]!;
  assert.deepEqual(subs.args, ['-o', 'x=y', '-v', '-o', 'z=w', '-o', 'smtpd_tls_wrappermode=yes']);
  assert.deepEqual(inetEndpoint(subs), { host: '127.0.0.1', port: 465 });
  assert.deepEqual(inetEndpoint(entries[2]!), { host: '::1', port: 2525 });
  assert.equal(entries[2]!.maxproc, 10);
  assert.deepEqual(inetEndpoint(entries[3]!), { host: '', port: 10025 });
  const flush = entries.find((e) => e.service === 'flush')!;
  assert.deepEqual([flush.wakeup, flush.wakeupIfUsed], [0, false]);   // "0?" never wakes (master_ent.c)
  const maildrop = entries.find((e) => e.service === 'maildrop')!;
  assert.deepEqual(maildrop.pipe, {
    flags: 'DRXhu', user: 'vmail', group: 'mail', size: 10240000, nullSender: '', eol: '\r\n',
    argv: ['/usr/bin/maildrop', '-d', '${recipient}', 'a b'],
  });
  const spam = entries.find((e) => e.service === 'spamfilter')!;
  assert.deepEqual(spam.pipe?.argv, ['/usr/bin/filter', '-f', '${sender}', '--', '${recipient}']);
  assert.throws(() => inetEndpoint(maildrop), /not an inet service/);
});

test('maxproc "-" follows default_process_limit when the caller passes it', () => {
  const [e] = parseMasterCf('smtp inet n - y - - smtpd\n', 'master.cf', { defaultProcessLimit: 7 });
  assert.equal(e!.maxproc, 7);
});

test('CRLF line ends and tabs parse like LF', () => {
  const lf = readFileSync(join(TESTDATA, 'master.cf.debian'), 'latin1');
  const crlf = parse(lf.replace(/\n/g, '\r\n'));
  assert.deepEqual(crlf.map((e) => formatMasterEntry(e)), parse(lf).map((e) => formatMasterEntry(e)));
  assert.deepEqual(crlf.find((e) => e.service === 'relay')!.overrides, { syslog_name: 'postfix/$service_name' });
});

test('unsupportedServices names the commands Postern does not run', () => {
  const entries = parse('smtp inet n - y - - smtpd\nqmgr unix n - n 300 1 oqmgr\nspawn unix - n n - - spawn\nifmail unix - n n - - ifmail\n');
  assert.deepEqual(unsupportedServices(entries).map((e) => e.command), ['oqmgr', 'ifmail']);
  assert.ok(POSTERN_SERVICES.has('pipe') && POSTERN_SERVICES.has('postlogd') && POSTERN_SERVICES.has('spawn') && !POSTERN_SERVICES.has('oqmgr'));
});

test('errors carry file, line and Postfix wording', () => {
  throwsConfig('# c\nsmtp inet n - y - -\n', 2, /bad field count/);
  throwsConfig('smtp foo n - y - - smtpd\n', 1, /bad transport type: foo/);
  throwsConfig('smtp unix x - y - - smtpd\n', 1, /field "private": bad value: "x"/);
  throwsConfig('smtp unix n - maybe - - smtpd\n', 1, /field "chroot": bad value: "maybe"/);
  throwsConfig('smtp unix n - y 6x - smtpd\n', 1, /field "wakeup_time": bad value: "6x"/);
  throwsConfig('smtp unix n - y - 1x smtpd\n', 1, /field "max_proc": bad value: "1x"/);
  throwsConfig('smtp inet y - y - - smtpd\n', 1, /inet service cannot be private/);
  throwsConfig('nosuchservice inet n - y - - smtpd\n', 1, /unknown service: nosuchservice\/tcp/);
  throwsConfig('127.0.0.1: inet n - y - - smtpd\n', 1, /missing service information in "127.0.0.1:"/);
  throwsConfig('[::1 inet n - y - - smtpd\n', 1, /missing "\]"/);
  throwsConfig('99999 inet n - y - - smtpd\n', 1, /bad port number/);
  throwsConfig('  smtp inet n - y - - smtpd\n', 1, /logical line must not start with whitespace/);
  throwsConfig('smtp unix - - y - - smtp\nrelay unix - - y - - smtp\nsmtp unix - - n - - smtp\n', 3,
    /duplicate master.cf entry for service "smtp" \(unix\) -- first defined at line 1/);
  throwsConfig('smtp inet n - y - - smtpd\n  -o smtpd_banner\n', 1, /missing '=' after attribute name: "-o smtpd_banner"/);
  throwsConfig('smtp inet n - y - - smtpd\n  -o { smtpd_banner = a b\n', 1, /missing '\}' in/);
  throwsConfig('smtp inet n - y - - smtpd -o {a=b}c\n', 1, /syntax error after '\}'/);
  throwsConfig('smtp inet n - y - - smtpd -o\n', 1, /option "-o" requires a value/);
  throwsConfig('uucp unix - n n - - pipe\n  flags=F argv=/bin/true\n', 1, /pipe: missing user= command-line attribute/);
  throwsConfig('uucp unix - n n - - pipe flags=F user=uucp\n', 1, /pipe: missing argv= command-line attribute/);
  throwsConfig('uucp unix - n n - - pipe user=root argv=/bin/true\n', 1, /specifies root privileges/);
  throwsConfig('uucp unix - n n - - pipe user=u bogus=1 argv=/bin/true\n', 1, /pipe: unknown attribute name: bogus=1/);
  throwsConfig('uucp unix - n n - - pipe user=u size=1k argv=/bin/true\n', 1, /pipe: bad size= value: 1k/);
  // The seed's uucp example as it appears on the web page, without the indentation:
  throwsConfig('uucp unix - n n - - pipe\nflags=Fqhu user=uucp argv=uux -r -n -z -a$sender - $nexthop!rmail ($recipient)\n', 1,
    /pipe: missing user= command-line attribute \(attributes written on the next line must be indented/);
  throwsConfig('relay unix - - y - - smtp\nflags=Fqhu user=uucp argv=uux -r -n -z -a$sender - $nexthop!rmail ($recipient)\n', 2,
    /bad transport type: user=uucp/);
});

test('hostile input: ../ names, NUL bytes, 10 MB lines, huge continuations', () => {
  throwsConfig('../../etc/passwd unix - - y - - smtp\n', 1, /bad service name: "..\/..\/etc\/passwd"/);
  throwsConfig('smtp unix - - y - - smtp\nx\0y unix - - y - - smtp\n', 2, /NUL byte/);
  const t0 = Date.now();
  throwsConfig(`smtp unix - - y - - smtp ${'a'.repeat(10 << 20)}\n`, 1, /logical line too long/);
  throwsConfig(`smtp unix - - y - - smtp\n${' -o a=b\n'.repeat(200_000)}`, 1, /logical line too long/);
  assert.ok(Date.now() - t0 < 5000, 'hostile input is rejected quickly');
  assert.deepEqual(parse(''), []);
  assert.deepEqual(parse('\n\n# only comments\n   \n'), []);
  assert.equal(parse('smtp unix - - y - - smtp').length, 1);   // no final newline
});

test('loadMasterCf: reads CONFIG_DIR/master.cf; missing and unreadable files name the path', () => {
  withDir((dir) => {
    assert.throws(() => loadMasterCf(dir), (err: unknown) =>
      err instanceof ConfigError && err.file === join(dir, 'master.cf') && /ENOENT/.test(err.message));
    copyFileSync(join(TESTDATA, 'master.cf.debian'), join(dir, 'master.cf'));
    assert.equal(loadMasterCf(dir).length, 31);
    assert.equal(loadMasterCf(dir)[0]!.file, join(dir, 'master.cf'));
  });
});

test('loadMasterCf: an unreadable master.cf is a ConfigError', (t) => {
  if (process.getuid?.() === 0) {
    t.skip('running as root: chmod 000 does not stop root from reading the file');
    return;
  }
  withDir((dir) => {
    writeFileSync(join(dir, 'master.cf'), 'smtp inet n - y - - smtpd\n');
    chmodSync(join(dir, 'master.cf'), 0o000);
    assert.throws(() => loadMasterCf(dir), (err: unknown) => err instanceof ConfigError && /EACCES/.test(err.message));
  });
});

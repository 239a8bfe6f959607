import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { QueueFile } from '../global/queue-file-reader.ts';
import { parseMasterCf } from '../global/master-cf.ts';
import { CleanupSession } from '../cleanup/cleanup.ts';
import { setLogSink } from '../util/msg.ts';
import { SYSEXITS } from '../global/sys-exits.ts';
import { expandArgv } from './pipe-argv.ts';
import { mailCopy } from '../global/mail-copy.ts';
import { createPipeAgent } from './pipe.ts';

const warnings: string[] = [];
setLogSink((l) => { if (/warning/.test(l)) warnings.push(l); });
const isRoot = process.getuid?.() === 0;

async function queueMessage(dir: string, rcpts: string[], body: string, sender = 'a@example.org'): Promise<QueueFile> {
  const q = new MailQueue(join(dir, 'queue'));
  q.ensureDirs();
  const c = await CleanupSession.open({ myhostname: 'mx.example.test', myorigin: 'example.test', headerSizeLimit: 102400, messageSizeLimit: 0, alwaysAddMissingHeaders: false }, q, { sender, attrs: { client_address: '192.0.2.7', helo_name: 'client.example' }, addMissingHeaders: false });
  for (const r of rcpts) c.addRecipient({ address: r });
  await c.write(Buffer.from(body));
  const r = await c.finish();
  assert.ok('queueId' in r);
  return QueueFile.open(q.path('incoming', r.queueId), r.queueId);
}

function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'postern-pipe-'));
  chmodSync(d, 0o777); // the commands run as unprivileged users and write their evidence here
  return d;
}

/** A stand-in command: records argv (one per line), uid, environment and stdin, then exits $EXIT. */
function standIn(dir: string, name: string, exit = 0, extra = ''): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > ${dir}/${name}.argv\nid -u > ${dir}/${name}.uid\nenv > ${dir}/${name}.env\ncat > ${dir}/${name}.stdin\n${extra}\nexit ${exit}\n`, { mode: 0o755 });
  return p;
}

const body = 'Subject: test\n\n.leading dot\nFrom the body\nlast\n';

test('the seed\'s uucp entry runs with its macros, as the uucp user, receiving the From_ line and the message', async () => {
  const dir = tmp();
  try {
    const uux = standIn(dir, 'uux');
    const master = `uucp unix - n n - - pipe\n  flags=Fqhu user=uucp argv=${uux} -r -n -z -a$sender - $nexthop!rmail ($recipient)\n`;
    const entries = parseMasterCf(master, join(dir, 'master.cf'));
    const agent = createPipeAgent(MainConfig.parse('', 'main.cf', dir), { entries });
    const qf = await queueMessage(dir, ['Bob@Remote.Example', 'carol@remote.example'], body);
    const res = await agent.deliver({ qf, transport: 'uucp', nexthop: 'Remote.Example', recipients: qf.recipients, activeSince: Date.now() });
    assert.deepEqual(res.map((r) => [r.status, r.dsn, r.text, r.relay]), [['sent', '2.0.0', 'delivered via uucp service', 'uucp'], ['sent', '2.0.0', 'delivered via uucp service', 'uucp']]);
    assert.deepEqual(readFileSync(join(dir, 'uux.argv'), 'utf8').split('\n').slice(0, -1),
      ['-r', '-n', '-z', '-aa@example.org', '-', 'remote.example!rmail', '(bob@remote.example)', '(carol@remote.example)']);
    const stdin = readFileSync(join(dir, 'uux.stdin'), 'latin1');
    assert.match(stdin, /^From a@example\.org  \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\nSubject: test\n\n\.leading dot\nFrom the body\nlast\n$/);
    if (isRoot) assert.equal(readFileSync(join(dir, 'uux.uid'), 'utf8').trim(), '10');
    const env = readFileSync(join(dir, 'uux.env'), 'utf8');
    assert.match(env, /^PATH=\/usr\/bin:\/bin$/m);
    assert.doesNotMatch(env, /^HOME=/m, 'no environment leaks from the daemon');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a maildrop-like entry (flags=DRhu.> one recipient) gets exact bytes and every macro', async () => {
  const dir = tmp();
  try {
    const cmd = standIn(dir, 'maildrop');
    const master = `maildrop unix - n n - - pipe\n  flags=DORhu.> user=nobody argv=${cmd} -d \${user} \${extension} \${domain} \${mailbox} \${original_recipient} \${size} \${queue_id} \${client_address} \${client_helo} $$literal\n`;
    const entries = parseMasterCf(master, join(dir, 'master.cf'));
    const agent = createPipeAgent(MainConfig.parse('recipient_delimiter = +', 'main.cf', dir), { entries });
    const qf = await queueMessage(dir, ['Dave+Lists@Example.TEST'], body);
    qf.recipients[0]!.orig = 'Dave+Lists@Example.TEST';
    const [r] = await agent.deliver({ qf, transport: 'maildrop', nexthop: 'example.test', recipients: qf.recipients, activeSince: Date.now() });
    assert.equal(r!.status, 'sent');
    // ${size} is Postfix's idea of the size (pipe(8)): the queue file's content size, which counts
    // each line's record header and the pointer records too, so a little above the message's bytes.
    const size = qf.contentLength;
    assert.ok(size > body.length && size < body.length + 64, `content size ${size} for ${body.length} bytes`);
    assert.deepEqual(readFileSync(join(dir, 'maildrop.argv'), 'utf8').split('\n').slice(0, -1),
      ['-d', 'dave', 'Lists', 'example.test', 'dave+lists', 'dave+lists@example.test', String(size), qf.queueId, '192.0.2.7', 'client.example', '$literal']);
    assert.equal(readFileSync(join(dir, 'maildrop.stdin'), 'latin1'),
      'Return-Path: <a@example.org>\nX-Original-To: Dave+Lists@Example.TEST\nDelivered-To: dave+lists@example.test\nSubject: test\n\n..leading dot\n>From the body\nlast\n');
    if (isRoot) assert.equal(readFileSync(join(dir, 'maildrop.uid'), 'utf8').trim(), '65534');
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('every sysexits.h code maps to pipe(8)\'s status and enhanced code; other codes bounce; output goes in the text', async () => {
  const dir = tmp();
  try {
    const script = join(dir, 'exit.sh');
    writeFileSync(script, '#!/bin/sh\ncat >/dev/null\necho "said $1"\nexit $1\n', { mode: 0o755 });
    const codes = [...SYSEXITS.map((s) => s.code), 1, 99];
    const master = codes.map((c) => `x${c} unix - n n - - pipe\n  user=nobody argv=${script} ${c}\n`).join('');
    const agent = createPipeAgent(MainConfig.parse('', 'main.cf', dir), { entries: parseMasterCf(master, 'master.cf') });
    const qf = await queueMessage(dir, ['u@example.test'], body);
    const got: Record<number, [string, string, string]> = {};
    await Promise.all(codes.map(async (c) => {
      const [r] = await agent.deliver({ qf, transport: `x${c}`, nexthop: 'x', recipients: qf.recipients, activeSince: Date.now() });
      got[c] = [r!.status, r!.dsn, r!.text];
    }));
    assert.deepEqual(got[75], ['deferred', '4.3.0', 'temporary failure. Command output: said 75 ']);
    assert.deepEqual(got[71], ['deferred', '4.3.0', 'system resource problem. Command output: said 71 ']);
    assert.deepEqual(got[67], ['bounced', '5.1.1', 'user unknown. Command output: said 67 ']);
    assert.deepEqual(got[69], ['bounced', '5.3.0', 'service unavailable. Command output: said 69 ']);
    assert.deepEqual(got[77], ['bounced', '5.7.0', 'permission denied. Command output: said 77 ']);
    assert.deepEqual(got[78], ['bounced', '5.3.5', 'local configuration error. Command output: said 78 ']);
    assert.deepEqual(got[65], ['bounced', '5.6.0', 'data format error. Command output: said 65 ']);
    assert.deepEqual(got[68], ['bounced', '5.1.2', 'host name unknown. Command output: said 68 ']);
    assert.deepEqual(got[73], ['bounced', '5.2.0', "can't create user output file. Command output: said 73 "]);
    assert.deepEqual(got[76], ['bounced', '5.5.0', 'remote error in protocol. Command output: said 76 ']);
    for (const s of SYSEXITS) assert.equal(got[s.code]![0], s.code === 71 || s.code === 75 ? 'deferred' : 'bounced', s.name);
    assert.deepEqual(got[1], ['bounced', '5.3.0', `Command died with status 1: "${script}". Command output: said 1 `]);
    assert.deepEqual(got[99], ['bounced', '5.3.0', `Command died with status 99: "${script}". Command output: said 99 `]);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a signal defers, the time limit kills the whole process group and bounces, an RFC 3463 code in the output wins', async () => {
  const dir = tmp();
  try {
    writeFileSync(join(dir, 'sig.sh'), '#!/bin/sh\nkill -TERM $$\n', { mode: 0o755 });
    writeFileSync(join(dir, 'hang.sh'), `#!/bin/sh\n(sleep 30; touch ${dir}/child-survived) &\nsleep 30\n`, { mode: 0o755 });
    writeFileSync(join(dir, 'dsn.sh'), '#!/bin/sh\necho "4.2.2 mailbox full"\nexit 67\n', { mode: 0o755 });
    const master = ['sig', 'hang', 'dsn'].map((n) => `${n} unix - n n - - pipe\n  user=nobody argv=${dir}/${n}.sh\n`).join('');
    const agent = createPipeAgent(MainConfig.parse('hang_time_limit = 1s', 'main.cf', dir), { entries: parseMasterCf(master, 'master.cf') });
    const qf = await queueMessage(dir, ['u@example.test'], body);
    const req = (t: string) => ({ qf, transport: t, nexthop: 'x', recipients: qf.recipients, activeSince: Date.now() });
    const [s] = await agent.deliver(req('sig'));
    assert.deepEqual([s!.status, s!.dsn, s!.text], ['deferred', '4.3.0', `Command died with signal 15: "${dir}/sig.sh"`]);
    const t0 = Date.now();
    const [h] = await agent.deliver(req('hang'));
    assert.ok(Date.now() - t0 < 5000, 'time limit honoured');
    assert.deepEqual([h!.status, h!.dsn, h!.text], ['bounced', '5.3.0', `Command time limit exceeded: "${dir}/hang.sh"`]);
    const [d] = await agent.deliver(req('dsn'));
    assert.deepEqual([d!.status, d!.dsn], ['deferred', '4.2.2']);
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(!existsSync(join(dir, 'child-survived')));
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('size=, D with several recipients, unknown macros, missing commands and missing entries', async () => {
  const dir = tmp();
  try {
    const cmd = standIn(dir, 'c');
    const master = [
      `small unix - n n - - pipe\n  size=10 user=nobody argv=${cmd}`,
      `dflag unix - n n - - pipe\n  flags=D user=nobody argv=${cmd} $recipient`,
      `badmac unix - n n - - pipe\n  user=nobody argv=${cmd} \${bogus}`,
      `missing unix - n n - - pipe\n  user=nobody argv=${dir}/no-such-command`,
      `nouser unix - n n - - pipe\n  user=no-such-user-xyz argv=${cmd}`,
      `nullsender unix - n n - - pipe\n  flags=R null_sender= user=nobody argv=${cmd} <$sender>`,
    ].join('\n') + '\n';
    const agent = createPipeAgent(MainConfig.parse('', 'main.cf', dir), { entries: parseMasterCf(master, join(dir, 'master.cf')) });
    const qf = await queueMessage(dir, ['a@example.test', 'b@example.test'], body);
    const req = (t: string, n = 2) => ({ qf, transport: t, nexthop: 'x', recipients: qf.recipients.slice(0, n), activeSince: Date.now() });
    const tuple = (r: { status: string; dsn: string; text: string }) => [r.status, r.dsn, r.text];
    assert.deepEqual((await agent.deliver(req('small'))).map(tuple), [['bounced', '5.2.3', 'message too large'], ['bounced', '5.2.3', 'message too large']]);
    warnings.length = 0;
    assert.deepEqual((await agent.deliver(req('dflag'))).map(tuple)[0], ['deferred', '4.3.5', 'mail system configuration error']);
    assert.match(warnings.join('\n'), /master\.cf:3: pipe flag D requires dflag_destination_recipient_limit = 1/);
    assert.equal((await agent.deliver(req('dflag', 1)))[0]!.status, 'sent');
    assert.deepEqual((await agent.deliver(req('badmac', 1))).map(tuple)[0], ['deferred', '4.3.5', 'mail system configuration error']);
    assert.match(warnings.join('\n'), /unknown macro name "bogus"/);
    const [m] = await agent.deliver(req('missing', 1));
    assert.deepEqual([m!.status, m!.dsn], ['bounced', '5.3.0']);
    assert.match(m!.text, /^Command died with status 1: ".*no-such-command"\. Command output: pipe: fatal: execvp .*: No such file or directory$/);
    assert.equal((await agent.deliver(req('nouser', 1)))[0]!.dsn, '4.3.5');
    assert.equal((await agent.deliver(req('notthere', 1)))[0]!.status, 'deferred');
    const q0 = await queueMessage(dir, ['a@example.test'], body, '');
    await agent.deliver({ qf: q0, transport: 'nullsender', nexthop: 'x', recipients: q0.recipients, activeSince: Date.now() });
    assert.equal(readFileSync(join(dir, 'c.argv'), 'utf8'), '<>\n');
    assert.match(readFileSync(join(dir, 'c.stdin'), 'utf8'), /^Return-Path: <>\n/);
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('argv expansion: q quoting, h folding, $$ and unknown names', () => {
  const c = { sender: 's@x', nexthop: 'HOST', size: 1, queueId: 'Q', attrs: {}, recipients: [{ address: 'a b@Ex.COM' }], flags: 'qh', recipientDelimiter: '' };
  assert.deepEqual(expandArgv(['$recipient', '${nexthop}', '$(sender)', 'x$$y'], c), ['"a b"@ex.com', 'host', 's@x', 'x$y']);
  assert.throws(() => expandArgv(['$nope'], c), /unknown macro name "nope"/);
});

test('mailCopy: eol= and B', () => {
  assert.equal(mailCopy(Buffer.from('A: b\n\nx'), { sender: '', flags: 'RB', eol: '\r\n' }).toString(), 'Return-Path: <>\r\nA: b\r\n\r\nx\r\n\r\n');
});

test('a user= that resolves to uid 0 is refused; the command never runs', async () => {
  const dir = tmp();
  const { UNIX_FILES } = await import('../util/dict-unix.ts');
  const saved = UNIX_FILES.passwd;
  try {
    writeFileSync(join(dir, 'passwd'), 'toor:x:0:0::/root:/bin/sh\n');
    UNIX_FILES.passwd = join(dir, 'passwd');
    const cmd = standIn(dir, 'c');
    const agent = createPipeAgent(MainConfig.parse('', 'main.cf', dir), { entries: parseMasterCf(`r unix - n n - - pipe\n  user=toor argv=${cmd}\n`, 'master.cf') });
    const qf = await queueMessage(dir, ['a@example.test'], body);
    warnings.length = 0;
    const [r] = await agent.deliver({ qf, transport: 'r', nexthop: 'x', recipients: qf.recipients, activeSince: Date.now() });
    assert.deepEqual([r!.status, r!.dsn], ['deferred', '4.3.5']);
    assert.match(warnings.join('\n'), /master\.cf:1: pipe: user= command-line attribute specifies root privileges/);
    assert.ok(!existsSync(join(dir, 'c.argv')));
    assert.throws(() => parseMasterCf(`r unix - n n - - pipe\n  user=root argv=${cmd}\n`, 'master.cf'), /root privileges/);
  } finally { UNIX_FILES.passwd = saved; rmSync(dir, { recursive: true, force: true }); }
});

/**
 * Path traversal (issue 8 item 3) in every name a client controls today:
 *  - mailbox names reaching the store (IMAP CREATE/SELECT/APPEND, LMTP detail folders,
 *    Sieve fileinto later: all go through MailUser.create/open/deliver/rename/delete):
 *    "../x", "a/../../x", "~root", NUL, absolute names... must throw MailError PARAMS (or
 *    NOTFOUND for a valid name that does not exist) and create nothing outside the user's
 *    mail root — for Maildir++ ('.' and '/' separators) and LAYOUT=fs;
 *  - virtual_mailbox_maps results pointing outside virtual_mailbox_base ("../../escape/",
 *    "/tmp/abs/"): the running system defers with a configuration warning, writes nothing;
 *  - recipient local parts "../../x@example.test", "postmaster+../../x@example.test" (with
 *    recipient_delimiter = +), 64/300/1000-character local parts: refused or delivered to the
 *    right Maildir, never a path outside it.
 * Each case compares a listing of the whole test directory before and after.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { MaildirStore } from '../../src/lib-storage/maildir/maildir-storage.ts';
import { MailError, type MailUser } from '../../src/lib-storage/mail-storage.ts';
import { PosternSystem } from '../harness/postern-system.ts';
import { LineChat } from '../harness/line-chat.ts';
import { sleep } from '../harness/fault-kit.ts';

function tree(root: string): Set<string> {
  const out = new Set<string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d)) {
      const p = join(d, e);
      out.add(relative(root, p));
      if (lstatSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}
function added(before: Set<string>, after: Set<string>): string[] { return [...after].filter((p) => !before.has(p)); }

const HOSTILE = [
  '../x', '../../x', '..', '.', 'a/../../x', 'INBOX/../../x', '/etc/x', '~root', '~/x', 'a\0b', 'a\nb', 'a\rb',
  '.hidden/../..', '..a/../..', 'x/..', 'a//b', '', '\u{d800}', 'x'.repeat(2000), 'a/' + 'b'.repeat(300),
];

let dir = '';
before(() => { dir = mkdtempSync(join(tmpdir(), 'postern-traversal-')); });
after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

for (const [label, sep, layout] of [['Maildir++ "."', '.', ''], ['Maildir++ "/"', '/', ''], ['LAYOUT=fs', '/', ':LAYOUT=fs']] as const) {
  test(`store (${label}): hostile mailbox names throw MailError PARAMS and touch nothing outside`, async (t) => {
    const home = join(dir, `u-${label.replace(/\W/g, '')}`);
    const root = join(home, 'Maildir');
    const user: MailUser = await new MaildirStore({ separator: sep }).forUser({ user: 'u@example.test', uid: process.getuid!(), gid: process.getgid!(), home, mail: `maildir:${root}${layout}` });
    await user.deliver('INBOX', 'Subject: x\n\nx\n');
    const snap = tree(dir);
    const wrong: string[] = [];
    let calls = 0;
    for (const name of HOSTILE) {
      const ops: [string, () => Promise<unknown>][] = [
        ['create', () => user.create(name)],
        ['deliver', () => user.deliver(name, 'Subject: evil\n\nevil\n')],
        ['open', () => user.open(name)],
        ['status', () => user.status(name)],
        ['delete', () => user.delete(name)],
        ['rename to', () => user.rename('INBOX', name)],
        ['setSubscribed', () => user.setSubscribed(name, true)],
      ];
      for (const [op, f] of ops) {
        calls++;
        try {
          await f();
          wrong.push(`${op}(${JSON.stringify(name.slice(0, 40))}) succeeded`);
        } catch (e) {
          if (!(e instanceof MailError)) wrong.push(`${op}(${JSON.stringify(name.slice(0, 40))}) threw ${(e as Error).name}: ${(e as Error).message}`);
          else if (e.code !== 'PARAMS' && e.code !== 'NOTFOUND') wrong.push(`${op}(${JSON.stringify(name.slice(0, 40))}) → ${e.code} ${e.message}`);
        }
      }
    }
    await user.close();
    const outside = added(snap, tree(dir)).filter((p) => !p.startsWith(relative(dir, root) + '/'));
    const inside = added(snap, tree(dir));
    t.diagnostic(`${calls} calls with ${HOSTILE.length} hostile names: ${wrong.length} wrong answers, ${outside.length} paths created outside the mail root, ${inside.length} inside`);
    assert.deepEqual(wrong, []);
    assert.deepEqual(outside, []);
    assert.deepEqual(inside.filter((p) => !/dovecot|subscriptions|tmp|cur|new/.test(p)), [], 'no new mailbox created inside either');
  });
}

test('the running system: hostile virtual_mailbox_maps results and recipient local parts write nothing outside the Maildirs', async (t) => {
  const sys = await PosternSystem.start();
  try {
    const maps = join(sys.configDir, 'vmailbox');
    writeFileSync(maps, [
      'escape@example.test ../../escape/',
      'escape2@example.test example.test/../../../escape2/',
      'abs@example.test /tmp/postern-abs-escape/',
      'dotdot@example.test ../',
      'postmaster@example.test example.test/postmaster/',
      '',
    ].join('\n'));
    for (const kv of ['virtual_mailbox_maps=auth:userdb, texthash:' + maps, 'recipient_delimiter=+']) assert.equal((await sys.cli('conf', '-e', kv)).status, 0);
    await sys.stop();
    await PosternSystem.start(sys);
    const snap = tree(sys.dir);
    const rcpts = [
      'escape@example.test', 'escape2@example.test', 'abs@example.test', 'dotdot@example.test',
      '../../x@example.test', '"../../x"@example.test', 'postmaster+../../x@example.test', 'postmaster+..@example.test',
      'postmaster+/etc/passwd@example.test', `${'a'.repeat(64)}@example.test`, `${'a'.repeat(300)}@example.test`, `postmaster+${'b'.repeat(1000)}@example.test`,
    ];
    const replies: string[] = [];
    for (const r of rcpts) {
      const { c } = await LineChat.greet(sys.ports.smtp);
      await c.cmd('EHLO traversal.example.org');
      await c.cmd('MAIL FROM:<postmaster@example.test>');
      const rr = await c.cmd(`RCPT TO:<${r}>`);
      replies.push(`${r.slice(0, 40)} → ${rr.slice(0, 80)}`);
      if (rr.startsWith('250')) {
        await c.cmd('DATA');
        c.send(`Subject: traversal ${r.slice(0, 40)}\r\n\r\nx\r\n.\r\n`);
        await c.reply();
      }
      await c.cmd('QUIT').catch(() => '');
      c.close();
    }
    await sleep(1500);
    for (const r of replies) t.diagnostic(r);
    const vmailRel = relative(sys.dir, join(sys.configDir, 'data', 'vmail', 'example.test', 'postmaster'));
    const fresh = added(snap, tree(sys.dir)).filter((p) => !p.startsWith(vmailRel + '/') && !(vmailRel + '/').startsWith(p + '/') && !/\/data\/(queue|lib)\//.test('/' + p));
    t.diagnostic(`new paths outside postmaster's Maildir and the queue: ${JSON.stringify(fresh)}`);
    assert.deepEqual(fresh, []);
    for (const p of ['/tmp/postern-abs-escape', join(sys.dir, 'escape'), join(sys.configDir, 'escape2')]) assert.throws(() => lstatSync(p), { code: 'ENOENT' }, `${p} not created`);
    // the configuration errors are deferred (kept), with a warning naming the parameter
    const warned = (sys.log.match(/warning: .*virtual_mailbox_maps.*/g) ?? []);
    t.diagnostic(`${warned.length} warnings, e.g. ${warned[0]}`);
    assert.ok(/escape@example\.test.*status=deferred/.test(sys.log), 'the escaping recipient is deferred');
    assert.doesNotMatch(sys.log, /escape@example\.test>?, .*status=sent/);
  } finally {
    await sys.destroy();
  }
});

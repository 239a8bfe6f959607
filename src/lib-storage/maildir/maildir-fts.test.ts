/**
 * The Maildir store feeds the full-text index (lib-fts, docs/fts.md): once a mailbox has its
 * `postern-fts`, a delivery (MailUser.deliver: LMTP, APPEND) and a COPY add their messages to
 * it, so the next search reads none of them; a mailbox without one gets none at delivery (the
 * first search makes it). The file sits in the control directory, where Dovecot ignores it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setLogSink } from '../../util/msg.ts';
import { MaildirStore } from './maildir-storage.ts';
import type { Mailbox } from '../mail-storage.ts';

setLogSink(() => {});
const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

/** Bring the index up to date; returns how many messages had to be read for it. */
async function catchUp(box: Mailbox): Promise<number> {
  await box.sync();
  let reads = 0;
  await box.ftsIndex!.update(box.uidValidity, box.messages().map((m) => m.uid), (uids, each) => { reads += uids.length; return box.readMany(uids, each); });
  return reads;
}

test('delivery and COPY add to an existing index; none is made at delivery', async () => {
  const home = mkdtempSync(join(tmpdir(), 'postern-fts-store-'));
  dirs.push(home);
  const u = await new MaildirStore({ separator: '/' }).forUser({ user: 'u@example.org', uid: 0, gid: 0, home, mail: 'maildir:~/Maildir' });
  try {
    await u.deliver('INBOX', 'Subject: one\r\n\r\nfirst walrus\r\n');
    assert.ok(!existsSync(join(home, 'Maildir', 'postern-fts')), 'no index before a search');
    await u.create('Archive');
    const inbox = await u.open('INBOX');
    const arch = await u.open('Archive');
    assert.equal(await catchUp(inbox), 1);
    assert.equal(await catchUp(arch), 0);
    assert.ok(existsSync(join(home, 'Maildir', 'postern-fts')) && existsSync(join(home, 'Maildir', '.Archive', 'postern-fts')));
    for (let i = 0; i < 5; i++) await u.deliver('INBOX', `Subject: m${i}\r\n\r\nbody ${i}\r\n`);
    await inbox.append('Subject: appended\r\n\r\nan append\r\n');
    assert.equal(await catchUp(inbox), 0, 'delivered and appended messages were indexed at once');
    await inbox.copy(inbox.messages().map((m) => m.uid), 'Archive');
    assert.equal(await catchUp(arch), 0, 'copied messages were indexed by COPY');
    assert.equal(arch.messages().length, 7);
    const sig = inbox.ftsIndex!.signature(inbox.messages()[0]!.uid)!;
    assert.deepEqual(Buffer.from(arch.ftsIndex!.signature(arch.messages()[0]!.uid)!), Buffer.from(sig));
    await inbox.expunge(inbox.messages().slice(0, 3).map((m) => m.uid));
    assert.equal(await catchUp(inbox), 0);
    await inbox.close(); await arch.close();
  } finally { await u.close(); }
});

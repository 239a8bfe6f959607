/**
 * SEARCH by sequence and UID sets (RFC 3501 §6.4.4, §9 "seq-number" / "*"; RFC 5182 `$`) on a
 * real Maildir with UID gaps: the set is looked up on the view (cmd-search.ts candidates) and
 * the answers are those of testing every message: `*` is the last message, `n:*` with n past
 * the last UID still names the last one, ranges may be given high to low and out of order, UIDs
 * and sequence numbers beyond the last select nothing; sets combined with AND, OR, NOT, flags, `$`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirStore } from '../lib-storage/maildir/maildir-storage.ts';
import type { Mailbox } from '../lib-storage/mail-storage.ts';
import { parseSeqSet } from '../lib-imap/imap-seqset.ts';
import type { SearchKey } from '../lib-imap/imap-search-args.ts';
import type { ImapSession } from './imapd-session.ts';
import { searchMessages } from './cmd-search.ts';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

async function mailbox(count: number, expunge: number[]): Promise<Mailbox> {
  const home = mkdtempSync(join(tmpdir(), 'postern-search-'));
  dirs.push(home);
  const u = await new MaildirStore().forUser({ user: 'u@example.org', uid: 0, gid: 0, home, mail: 'maildir:~/Maildir' });
  for (let i = 1; i <= count; i++) await u.deliver('INBOX', `Subject: ${i}\r\n\r\nbody\r\n`, i % 2 === 1 ? { flags: ['\\Seen'] } : {});
  const box = await u.open('INBOX');
  if (expunge.length > 0) { await box.expunge(expunge); await box.sync(); }
  return box;
}

function session(searchRes: number[] = []): ImapSession {
  return { current: (m: unknown) => m, searchRes, shared: { settings: {} } } as unknown as ImapSession;
}

const uid = (set: string): SearchKey => ({ op: 'seqset', uid: true, set: parseSeqSet(set) });
const seq = (set: string): SearchKey => ({ op: 'seqset', uid: false, set: parseSeqSet(set, { allowSearchRes: true }) });
const seen: SearchKey = { op: 'flag', flag: '\\Seen', set: true };

async function uidsOf(box: Mailbox, key: SearchKey, searchRes: number[] = []): Promise<number[]> {
  const view = box.messages();
  return (await searchMessages(session(searchRes), box, key)).map((i) => view[i]!.uid);
}

test('UID and sequence sets on a mailbox with UID gaps', async () => {
  const box = await mailbox(20, [2, 3, 10, 11, 12, 20]);
  try {
    assert.deepEqual(box.messages().map((m) => m.uid), [1, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 18, 19]);
    const cases: Array<[string, SearchKey, number[], number[]?]> = [
      ['UID *', uid('*'), [19]],
      ['UID 100:* (past the last: still the last)', uid('100:*'), [19]],
      ['UID *:100', uid('*:100'), [19]],
      ['UID 100', uid('100'), []],
      ['UID 20:200', uid('20:200'), []],
      ['UID 12:3 (high to low)', uid('12:3'), [4, 5, 6, 7, 8, 9]],
      ['UID 18:*,2:1,11:13 (out of order)', uid('18:*,2:1,11:13'), [1, 13, 18, 19]],
      ['UID 2,3,10 (expunged only)', uid('2,3,10'), []],
      ['UID 1:*', uid('1:*'), [1, 4, 5, 6, 7, 8, 9, 13, 14, 15, 16, 17, 18, 19]],
      ['UID 9:9,9,8:10', uid('9:9,9,8:10'), [8, 9]],
      ['sequence 14', seq('14'), [19]],
      ['sequence *:13', seq('*:13'), [18, 19]],
      ['sequence 3:1', seq('3:1'), [1, 4, 5]],
      ['sequence 15:30 (beyond the last)', seq('15:30'), []],
      ['sequence 30:* (past the last: still the last)', seq('30:*'), [19]],
      ['UID 1:* SEEN', { op: 'and', keys: [uid('1:*'), seen] }, [1, 5, 7, 9, 13, 15, 17, 19]],
      ['SEEN UID 4:8', { op: 'and', keys: [seen, uid('4:8')] }, [5, 7]],
      ['UID 1:9 2:3', { op: 'and', keys: [uid('1:9'), seq('2:3')] }, [4, 5]],
      ['2:3 UID 5:*', { op: 'and', keys: [seq('2:3'), uid('5:*')] }, [5]],
      ['NOT UID 4:18', { op: 'not', key: uid('4:18') }, [1, 19]],
      ['OR UID 1 UID *', { op: 'or', a: uid('1'), b: uid('*') }, [1, 19]],
      ['$', seq('$'), [5, 13], [13, 5, 3]],
      ['UID 1:10 $', { op: 'and', keys: [uid('1:10'), seq('$')] }, [5], [13, 5, 3]],
    ];
    for (const [name, key, want, res] of cases) assert.deepEqual(await uidsOf(box, key, res), want, name);
  } finally { await box.close(); }
});

test('sets on an empty mailbox select nothing', async () => {
  const box = await mailbox(0, []);
  try {
    for (const key of [uid('*'), uid('1:*'), uid('1'), seq('*'), seq('1:*')]) assert.deepEqual(await uidsOf(box, key), []);
  } finally { await box.close(); }
});

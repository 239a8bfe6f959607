/**
 * THREAD (RFC 5256 §2.2, §4, Dovecot's variant): message-id extraction, the response syntax,
 * REFERENCES and ORDEREDSUBJECT on small cases, and hostile inputs — a 100,000-message chain,
 * reference loops, adversarial link patterns, 10 MB References headers — in bounded time
 * without recursion.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatThreads, messageIdNext, messageIds, threadOrderedSubject, threadReferences, MAX_REFERENCES, type Thread } from './imap-thread.ts';
import type { SortRecord } from './imap-sort.ts';

interface Spec { id?: string; refs?: string; irt?: string; subject?: string; date?: number }

function recs(specs: Spec[]): SortRecord[] {
  return specs.map((s, i) => ({
    seq: i + 1, uid: 100 + i, size: 0, internalDate: new Date(0),
    sentDate: new Date((s.date ?? i + 1) * 1000),
    subject: Buffer.from(s.subject ?? `subject ${i + 1}`),
    from: undefined, to: undefined, cc: undefined,
    messageId: s.id === undefined ? undefined : Buffer.from(`<${s.id}@x>`),
    inReplyTo: s.irt === undefined ? undefined : Buffer.from(s.irt),
    references: s.refs === undefined ? undefined : Buffer.from(s.refs),
  }));
}
const refs = (rs: SortRecord[]): string => formatThreads(threadReferences(rs), false);

test('messageIdNext follows Dovecot message_id_get_next()', () => {
  const all = (s: string): string[] => messageIds(Buffer.from(s, 'latin1'));
  assert.deepEqual(all('<a@b>'), ['a@b']);
  assert.deepEqual(all('your message of Monday <no-at-sign> <m06@x>'), ['m06@x']);
  assert.deepEqual(all('<a b @ c>'), ['ab@c']);
  assert.deepEqual(all('<"quoted local"@x.example> <a(comment)@b>'), ['quoted local@x.example', 'a@b']);
  assert.deepEqual(all('<m1@x> (c) <m2@x>\t<m3@x>'), ['m1@x', 'm2@x', 'm3@x']);
  assert.deepEqual(all('<unterminated@x'), []);
  assert.deepEqual(all('<"bad"x@y> <ok@z>'), ['ok@z']);
  assert.equal(messageIdNext('<a@b> <c@d>', 5)?.id, 'c@d');
});

test('hostile References values (10 MB) are scanned in linear time', () => {
  const mb10 = 10 * 1024 * 1024;
  const t0 = performance.now();
  assert.deepEqual(messageIds(Buffer.from('<('.repeat(mb10 / 2))), []);
  assert.deepEqual(messageIds(Buffer.from('<a'.repeat(mb10 / 2) + '(')), []);
  // Dovecot's fast path takes everything between the first "<" and the ">" as the id.
  assert.deepEqual(messageIds(Buffer.from('<'.repeat(mb10) + 'a@b>')).map((id) => id.length), [mb10 - 1 + 3]);
  assert.deepEqual(messageIds(Buffer.from('<"<"'.repeat(mb10 / 4))), []);
  const many = messageIds(Buffer.from('<a@b> '.repeat(mb10 / 6)));
  assert.equal(many.length, MAX_REFERENCES);
  const ms = performance.now() - t0;
  assert.ok(ms < 20_000, `took ${ms} ms`);
});

test('formatThreads writes RFC 5256 §4 syntax the way Dovecot does', () => {
  const n = (seq: number | null, ...children: Thread[]): Thread => ({ seq, uid: seq === null ? null : seq * 10, children });
  assert.equal(formatThreads([], false), '');
  assert.equal(formatThreads([n(1), n(2)], false), '(1)(2)');
  assert.equal(formatThreads([n(1, n(2, n(3)))], false), '(1 2 3)');
  assert.equal(formatThreads([n(3, n(4), n(5))], false), '(3 (4)(5))');
  assert.equal(formatThreads([n(null, n(4), n(5, n(6)))], false), '((4)(5 6))');
  assert.equal(formatThreads([n(1, n(2, n(3), n(4, n(5))))], true), '(10 20 (30)(40 50))');
});

test('REFERENCES: replies nest under parents, missing parents become hidden dummies', () => {
  assert.equal(refs(recs([{ id: 'a' }, { id: 'b', refs: '<a@x>' }, { id: 'c', irt: '<b@x>' }, { id: 'd', refs: '<a@x>' }])),
    '(1 (2 3)(4))');
  // Two replies to a message we do not have: a dummy parent, shown as "((..)(..))".
  assert.equal(refs(recs([{ id: 'a', refs: '<gone@x>' }, { id: 'b', refs: '<gone@x>' }])), '((1)(2))');
  // One reply to a missing message: the dummy is replaced by its only child.
  assert.equal(refs(recs([{ id: 'a', refs: '<gone@x> <gone2@x>' }, { id: 'b' }])), '(1)(2)');
  // References wins over In-Reply-To; an invalid References falls back to In-Reply-To.
  assert.equal(refs(recs([{ id: 'a' }, { id: 'b' }, { id: 'c', refs: '<b@x>', irt: '<a@x>' }, { id: 'd', refs: 'junk', irt: '<a@x>' }])),
    '(1 4)(2 3)');
});

test('REFERENCES: loops, self references and duplicate Message-IDs do not hang or lose mail', () => {
  assert.equal(refs(recs([{ id: 'a', refs: '<b@x>' }, { id: 'b', refs: '<a@x>' }])), '(2 1)');
  assert.equal(refs(recs([{ id: 'a', refs: '<a@x>' }])), '(1)');
  assert.equal(refs(recs([{ id: 'a', refs: '<c@x> <b@x>' }, { id: 'b', refs: '<a@x> <c@x>' }, { id: 'c', refs: '<b@x> <a@x>' }])), '(3 2 1)');
  // The second message with id "a" gets a fresh id; replies go to the first one.
  assert.equal(refs(recs([{ id: 'a' }, { id: 'a', subject: 'other' }, { id: 'c', refs: '<a@x>' }])), '(1 3)(2)');
});

test('REFERENCES: roots with the same base subject are merged (RFC 5256 (5))', () => {
  const rs = recs([
    { id: 'a', subject: 'Hello' }, { id: 'b', subject: 'Re: Hello' }, { id: 'c', subject: 'hello' }, { id: 'd', subject: 'Other' },
  ]);
  // 2 is a reply: child of 1; 3 is not: 1 and 3 become siblings under a dummy.
  assert.equal(refs(rs), '((1 2)(3))(4)');
  assert.equal(formatThreads(threadReferences(rs), true), '((100 101)(102))(103)');
});

test('ORDEREDSUBJECT groups by base subject, threads ordered by their first date', () => {
  const rs = recs([
    { subject: 'B', date: 50 }, { subject: 'Re: a', date: 10 }, { subject: 'A', date: 20 }, { subject: 'b', date: 60 },
    { subject: 'c', date: 5 }, { subject: 'Fwd: A', date: 30 },
  ]);
  assert.equal(formatThreads(threadOrderedSubject(rs), false), '(5)(2 (3)(6))(1 4)');
});

test('hostile: 100,000 messages in one chain, both orders, and with long References', () => {
  const N = 100_000;
  const expected = `(${Array.from({ length: N }, (_, i) => i + 1).join(' ')})`;
  let t0 = performance.now();
  const fwd = recs(Array.from({ length: N }, (_, i) => ({ id: `m${i}`, irt: i > 0 ? `<m${i - 1}@x>` : undefined, subject: 's' })));
  assert.equal(refs(fwd), expected);
  // Each message lists its last 10 ancestors.
  const ten = recs(Array.from({ length: N }, (_, i) => {
    const r: string[] = [];
    for (let k = Math.max(0, i - 10); k < i; k++) r.push(`<m${k}@x>`);
    return { id: `m${i}`, refs: r.join(' '), subject: 's' };
  }));
  assert.equal(refs(ten), expected);
  // Reverse: message i replies to message i+1 (children arrive before their parents).
  const rev = recs(Array.from({ length: N }, (_, i) => ({ id: `m${i}`, refs: i < N - 1 ? `<m${i + 1}@x>` : undefined, subject: 's' })));
  assert.equal(refs(rev), `(${Array.from({ length: N }, (_, i) => N - i).join(' ')})`);
  const ms = performance.now() - t0;
  assert.ok(ms < 20_000, `took ${ms} ms`);

  // Adversarial: a 50,000 deep chain, then pairs of messages that each make a new root with
  // children and hang it under the deepest node (every link needs the loop check).
  t0 = performance.now();
  const specs: Spec[] = Array.from({ length: 50_000 }, (_, i) => ({ id: `d${i}`, irt: i > 0 ? `<d${i - 1}@x>` : undefined, subject: 's' }));
  for (let k = 0; k < 25_000; k++) {
    specs.push({ id: `z${k}`, refs: `<y${k}@x>`, subject: 's' });
    specs.push({ id: `w${k}`, refs: `<d49999@x> <y${k}@x>`, subject: 's' });
  }
  const tree = threadReferences(recs(specs));
  assert.equal(tree.length, 1);
  assert.ok(performance.now() - t0 < 20_000);
  // ORDEREDSUBJECT of the same 100,000 messages.
  assert.equal(threadOrderedSubject(fwd).length, 1);
});

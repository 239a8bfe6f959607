/**
 * store-open - how long a 10,000-message Maildir takes to open and sync in Postern's store.
 *
 *   node bench/store-open.ts [messages]
 *
 * Builds the Maildir (files in cur/ with Dovecot-style names + a dovecot-uidlist), then
 * measures: first open (readdir + uidlist parse, no per-message stat), sync() with nothing
 * changed (3 stats), the one delayed re-read a second after a fresh mtime (Dovecot's
 * DIR_DELAYED_REFRESH), sync() after one delivery, STORE on every message (one batch of
 * renames), the sync right after it (our own renames: no readdir), and a bulk read of every
 * message (Mailbox.readMany, what SEARCH BODY uses).
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MaildirStore } from '../src/lib-storage/maildir/maildir-storage.ts';

const N = Number(process.argv[2] ?? 10000);
const home = mkdtempSync(join(tmpdir(), 'postern-bench-'));
const root = join(home, 'Maildir');
for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(root, d), { recursive: true });
const body = 'From: a@example.org\r\nSubject: bench\r\n\r\n' + 'x'.repeat(2000) + '\r\n';
let ul = `3 V1700000000 N${N + 1} G0123456789abcdef0123456789abcdef\n`;
for (let i = 1; i <= N; i++) {
  const base = `1700000000.M${i}P1Q${i}.bench,S=${body.length},W=${body.length}`;
  writeFileSync(join(root, 'cur', `${base}:2,${i % 2 ? 'S' : ''}`), body);
  ul += `${i} :${base}\n`;
}
writeFileSync(join(root, 'dovecot-uidlist'), ul);

const ms = (t: bigint) => (Number(process.hrtime.bigint() - t) / 1e6).toFixed(1);
const store = new MaildirStore({ separator: '/' });
const user = await store.forUser({ user: 'bench', uid: 0, gid: 0, home, mail: 'maildir:~/Maildir' });

let t = process.hrtime.bigint();
const box = await user.open('INBOX');
console.log(`open ${N} messages: ${ms(t)} ms (${box.messages().length} messages)`);
t = process.hrtime.bigint();
await box.sync();
console.log(`sync, nothing changed (fresh mtime, looked at less than 1 s ago: trusted): ${ms(t)} ms`);
await new Promise((r) => setTimeout(r, 1100));
t = process.hrtime.bigint();
await box.sync();
console.log(`sync, nothing changed (1 s after a look too close to the mtime: the delayed re-read): ${ms(t)} ms`);
t = process.hrtime.bigint();
await box.sync();
console.log(`sync, nothing changed, steady state (3 stat calls, no readdir): ${ms(t)} ms`);
await user.deliver('INBOX', body);
t = process.hrtime.bigint();
const ch = await box.sync();
console.log(`sync after one delivery: ${ms(t)} ms (+${ch.added.length})`);
t = process.hrtime.bigint();
await box.setFlags(box.messages().map((m) => m.uid), 'add', ['\\Flagged']);
console.log(`STORE +FLAGS \\Flagged on ${N + 1} messages: ${ms(t)} ms`);
t = process.hrtime.bigint();
await box.sync();
console.log(`sync right after that STORE (own renames: cur/ mtime adopted, no readdir): ${ms(t)} ms`);
t = process.hrtime.bigint();
let bytes = 0;
await box.readMany(box.messages().map((m) => m.uid), (_i, c) => { bytes += c.length; });
console.log(`readMany of ${N + 1} messages (${(bytes / 1e6).toFixed(1)} MB): ${ms(t)} ms`);
await box.close();
rmSync(home, { recursive: true, force: true });

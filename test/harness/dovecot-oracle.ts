/**
 * dovecot-oracle — the golden answers lib-mail is compared with, from the real Dovecot 2.3 `imap`
 * binary in PREAUTH mode on a private Maildir (test/harness/dovecot-preauth.ts runs it).
 *
 * Used by src/lib-mail/mail-dovecot-golden.test.ts: with UPDATE_GOLDEN=1 it rewrites
 * src/lib-mail/testdata/golden/, and when Dovecot is installed the test re-runs it and asserts
 * the goldens still match.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDovecotPreauth } from './dovecot-preauth.ts';

export { dovecotAvailable, splitByTag } from './dovecot-preauth.ts';

/** The FETCH every corpus message is asked for (the task's list, BODY.PEEK-free as given). */
export const GOLDEN_FETCH =
  'FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE BODY[1.MIME] BODY[HEADER.FIELDS (SUBJECT)] BINARY.SIZE[1])';

/**
 * Runs one Dovecot imap session on a fresh Maildir holding `messages` (UIDs 1..n in order) and
 * returns its raw output. `commands` are full lines without CRLF and without tags (tags t1.. are
 * added, after `t0 SELECT INBOX`); a command may be a Buffer to send literals verbatim.
 */
export function runDovecotSession(messages: Buffer[], commands: (string | Buffer)[]): Buffer {
  const input: Buffer[] = [Buffer.from('t0 SELECT INBOX\r\n')];
  commands.forEach((c, i) => {
    input.push(Buffer.from(`t${i + 1} `), typeof c === 'string' ? Buffer.from(c) : c, Buffer.from('\r\n'));
  });
  input.push(Buffer.from('tz LOGOUT\r\n'));
  return runDovecotPreauth(messages.map((data) => ({ data })), Buffer.concat(input));
}

export function readCorpus(dir: string): { name: string; data: Buffer }[] {
  return readdirSync(dir).filter((f) => f.endsWith('.eml')).sort()
    .map((name) => ({ name, data: readFileSync(join(dir, name)) }));
}

/**
 * imap-sort-oracle — runs the real Dovecot 2.3 `imap` binary in PREAUTH mode on a private
 * Maildir holding src/lib-imap/testdata/sort-corpus/, to record (and re-check) the golden
 * SORT/THREAD answers that src/lib-imap/imap-sort-golden.test.ts compares ours with
 * (test/harness/dovecot-preauth.ts runs it), with deterministic INTERNALDATEs: Dovecot's Maildir INTERNALDATE is the file mtime, so every
 * message file gets the mtime listed in sort-corpus/INTERNALDATES.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDovecotPreauth, splitByTag } from './dovecot-preauth.ts';

export { dovecotAvailable } from './dovecot-preauth.ts';
const TESTDATA = join(import.meta.dirname, '../../src/lib-imap/testdata');
export const SORT_CORPUS = join(TESTDATA, 'sort-corpus');
export const SORT_GOLDEN = join(TESTDATA, 'sort-golden');

export interface CorpusMessage {
  name: string;
  data: Buffer;
  /** INTERNALDATE, seconds since the epoch. */
  internalDate: number;
}

/** The corpus in sequence order (file name order), with INTERNALDATEs from the manifest. */
export function readSortCorpus(dir = SORT_CORPUS): CorpusMessage[] {
  const manifest = new Map<string, number>();
  const text = readFileSync(join(dir, 'INTERNALDATES'), 'utf8');
  text.split('\n').forEach((line, i) => {
    if (line === '' || line.startsWith('#')) return;
    const m = /^(\S+) (\d+)$/.exec(line);
    if (!m) throw new Error(`${join(dir, 'INTERNALDATES')}:${i + 1}: expected "<file> <seconds>"`);
    manifest.set(m[1]!, Number(m[2]));
  });
  return readdirSync(dir).filter((f) => f.endsWith('.eml')).sort().map((name) => {
    const t = manifest.get(name);
    if (t === undefined) throw new Error(`${join(dir, 'INTERNALDATES')}: no INTERNALDATE for ${name}`);
    return { name, data: readFileSync(join(dir, name)), internalDate: t };
  });
}

/**
 * Runs each of `commands` (command lines without tag) in its own session, after SELECT INBOX on
 * a fresh Maildir of `messages` (UIDs 1..n in order), and returns each command's untagged
 * response lines. One session per command: Dovecot pipelines the answers of queued commands,
 * and a fresh Maildir keeps one command's index state from influencing the next.
 */
export function runDovecotSort(messages: CorpusMessage[], commands: string[]): string[] {
  return commands.map((c) => runOne(messages, c));
}

function runOne(messages: CorpusMessage[], command: string): string {
  const input = ['t0 SELECT INBOX', `t1 ${command}`, 'tz LOGOUT', ''].join('\r\n');
  const out = runDovecotPreauth(messages.map((m) => ({ data: m.data, mtime: m.internalDate })), input);
  if (process.env.SORT_ORACLE_DEBUG) process.stderr.write(out);
  const byTag = splitByTag(out);
  const part = byTag.get('t1');
  if (!part) throw new Error(`no answer from Dovecot to "${command}": ${out.toString()}`);
  const text = part.toString('utf8');
  const tagged = text.split('\r\n').find((l) => l.startsWith('t1 ')) ?? '';
  if (!tagged.startsWith('t1 OK')) throw new Error(`Dovecot refused "${command}": ${tagged}`);
  return text.split('\r\n').filter((l) => l.startsWith('* ')).map((l) => `${l}\r\n`).join('');
}

/**
 * imap-sort-oracle — runs the real Dovecot 2.3 `imap` binary in PREAUTH mode on a private
 * Maildir holding testdata/sort-corpus/, to record (and re-check) the golden SORT/THREAD answers
 * that imap-sort-golden.test.ts compares ours with. Same mechanics as lib-mail's
 * dovecot-oracle.ts (private dovecot.conf in a temp dir, run as nobody when root, stdin a pipe,
 * stdout a file), plus deterministic INTERNALDATEs: Dovecot's Maildir INTERNALDATE is the file
 * mtime, so every message file gets the mtime listed in sort-corpus/INTERNALDATES.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { splitByTag } from '../../lib-mail/testdata/dovecot-oracle.ts';

export const DOVECOT_IMAP = '/usr/lib/dovecot/imap';
export const SORT_CORPUS = join(import.meta.dirname, 'sort-corpus');
export const SORT_GOLDEN = join(import.meta.dirname, 'sort-golden');

export interface CorpusMessage {
  name: string;
  data: Buffer;
  /** INTERNALDATE, seconds since the epoch. */
  internalDate: number;
}

export function dovecotAvailable(): boolean {
  return existsSync(DOVECOT_IMAP);
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

function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid); else chownSync(p, uid, gid);
  }
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
  const root = mkdtempSync(join(tmpdir(), 'postern-sort-'));
  try {
    const md = join(root, 'Maildir');
    for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(md, d), { recursive: true });
    messages.forEach((m, i) => {
      const f = join(md, 'cur', `${1500000000 + i}.M${i}P1.postern-test:2,S`);
      writeFileSync(f, m.data);
      utimesSync(f, m.internalDate, m.internalDate);
    });
    const isRoot = process.getuid?.() === 0;
    const uid = isRoot ? 65534 : process.getuid!();
    const gid = isRoot ? 65534 : process.getgid!();
    const conf = join(root, 'dovecot.conf');
    writeFileSync(conf, [
      `mail_location = maildir:${md}`,
      'ssl = no',
      'log_path = /dev/stderr',
      `base_dir = ${join(root, 'run')}`,
      `state_dir = ${join(root, 'state')}`,
      `mail_uid = ${uid}`,
      `mail_gid = ${gid}`,
      'first_valid_uid = 0',
      'first_valid_gid = 0',
      '',
    ].join('\n'));
    if (isRoot) chownTree(root, uid, gid);
    const input = ['t0 SELECT INBOX', `t1 ${command}`, 'tz LOGOUT', ''].join('\r\n');
    const inFile = join(root, 'input');
    const outFile = join(root, 'output');
    writeFileSync(inFile, input);
    const r = spawnSync('/bin/sh', ['-c', 'cat "$1" | "$2" -c "$3" > "$4"', 'sh', inFile, DOVECOT_IMAP, conf, outFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { USER: 'postern', HOME: root, PATH: process.env.PATH ?? '/usr/bin:/bin' },
      timeout: 20_000,
    });
    const out = readFileSync(outFile);
    if (r.status !== 0) throw new Error(`dovecot imap exited ${r.status}: ${r.stderr?.toString()} ${out.toString()}`);
    if (process.env.SORT_ORACLE_DEBUG) process.stderr.write(out);
    const byTag = splitByTag(out);
    const part = byTag.get('t1');
    if (!part) throw new Error(`no answer from Dovecot to "${command}": ${out.toString()}`);
    const text = part.toString('utf8');
    const tagged = text.split('\r\n').find((l) => l.startsWith('t1 ')) ?? '';
    if (!tagged.startsWith('t1 OK')) throw new Error(`Dovecot refused "${command}": ${tagged}`);
    return text.split('\r\n').filter((l) => l.startsWith('* ')).map((l) => `${l}\r\n`).join('');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

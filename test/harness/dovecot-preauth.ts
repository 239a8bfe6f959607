/**
 * dovecot-preauth - runs the real Dovecot 2.3 `imap` binary in PREAUTH mode over stdin/stdout on a
 * private Maildir, to produce golden answers our IMAP code is compared with (never a system
 * service: a private dovecot.conf in a temp dir, log to stderr). Used by the golden-answer oracles
 * of lib-mail (FETCH/ENVELOPE/BODYSTRUCTURE/SEARCH) and lib-imap (SORT/THREAD).
 *
 *   runDovecotPreauth(messages, input) → Dovecot's raw output
 *
 * `messages` become INBOX in this order (file names carry increasing timestamps so Dovecot
 * assigns UIDs 1..n in order); a message with `mtime` gets it as its file mtime, which is
 * Dovecot's Maildir INTERNALDATE. `input` is the whole session, tags and CRLFs included.
 * Dovecot refuses mail access as root, so as root the session runs as nobody (65534).
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dovecotClockLine } from './test-clock.ts';

export const DOVECOT_IMAP = '/usr/lib/dovecot/imap';

export function dovecotAvailable(): boolean {
  return existsSync(DOVECOT_IMAP);
}

export interface PreauthMessage {
  data: Buffer;
  /** File mtime = INTERNALDATE, seconds since the epoch. */
  mtime?: number;
}

function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid); else chownSync(p, uid, gid);
  }
}

/** One Dovecot imap session on a fresh Maildir of `messages`; returns its raw output. */
export function runDovecotPreauth(messages: PreauthMessage[], input: Buffer | string): Buffer {
  const root = mkdtempSync(join(tmpdir(), 'postern-dovecot-'));
  try {
    const md = join(root, 'Maildir');
    for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(md, d), { recursive: true });
    messages.forEach((m, i) => {
      const f = join(md, 'cur', `${1500000000 + i}.M${i}P1.postern-test:2,S`);
      writeFileSync(f, m.data);
      if (m.mtime !== undefined) utimesSync(f, m.mtime, m.mtime);
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
      dovecotClockLine(),
      `state_dir = ${join(root, 'state')}`,
      `mail_uid = ${uid}`,
      `mail_gid = ${gid}`,
      'first_valid_uid = 0',
      'first_valid_gid = 0',
      '',
    ].join('\n'));
    if (isRoot) chownTree(root, uid, gid);
    // stdin must be a pipe (epoll) but not a socket, and stdout not a socket either: on a socket
    // imap (as root) thinks it was started from inetd and refuses. So: cat FILE | imap > FILE.
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
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** Splits a session's output at each `tN OK|NO|BAD` completion: the untagged part + tagged line, per tag. */
export function splitByTag(out: Buffer): Map<string, Buffer> {
  const res = new Map<string, Buffer>();
  let start = 0;
  let pos = 0;
  while (pos < out.length) {
    const nl = out.indexOf('\r\n', pos);
    if (nl < 0) break;
    const line = out.subarray(pos, nl).toString('latin1');
    const lit = /\{(\d+)\}$/.exec(line);
    if (lit) { pos = nl + 2 + Number(lit[1]); continue; }
    const tag = /^(t\w+) (OK|NO|BAD)/.exec(line);
    pos = nl + 2;
    if (tag) { res.set(tag[1]!, out.subarray(start, pos)); start = pos; }
  }
  return res;
}

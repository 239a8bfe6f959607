/**
 * dovecot-oracle — runs the real Dovecot 2.3 `imap` binary in PREAUTH mode over stdin/stdout on a
 * private Maildir, to produce the golden answers lib-mail is compared with (never a system
 * service: a private dovecot.conf in a temp dir, log to stderr).
 *
 * Used by mail-dovecot-golden.test.ts: with UPDATE_GOLDEN=1 it rewrites testdata/golden/, and when
 * Dovecot is installed the test re-runs it and asserts the goldens still match.
 */
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DOVECOT_IMAP = '/usr/lib/dovecot/imap';

/** The FETCH every corpus message is asked for (the task's list, BODY.PEEK-free as given). */
export const GOLDEN_FETCH =
  'FETCH 1:* (ENVELOPE BODYSTRUCTURE BODY RFC822.SIZE BODY[1.MIME] BODY[HEADER.FIELDS (SUBJECT)] BINARY.SIZE[1])';

export function dovecotAvailable(): boolean {
  return existsSync(DOVECOT_IMAP);
}

function chownTree(dir: string, uid: number, gid: number): void {
  chownSync(dir, uid, gid);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) chownTree(p, uid, gid); else chownSync(p, uid, gid);
  }
}

/**
 * Runs one Dovecot imap session on a fresh Maildir holding `messages` (in this order: file names
 * carry increasing timestamps so Dovecot assigns UIDs 1..n in order) and returns its raw output.
 * `commands` are full lines without CRLF and without tags (tags t1.. are added); a command may
 * be a Buffer to send literals verbatim.
 */
export function runDovecotSession(messages: Buffer[], commands: (string | Buffer)[]): Buffer {
  const root = mkdtempSync(join(tmpdir(), 'postern-dovecot-'));
  try {
    const md = join(root, 'Maildir');
    for (const d of ['cur', 'new', 'tmp']) mkdirSync(join(md, d), { recursive: true });
    messages.forEach((m, i) => {
      writeFileSync(join(md, 'cur', `${1500000000 + i}.M${i}P1.postern-test:2,S`), m);
    });
    // Dovecot refuses to run mail access as root: run it as nobody when we are root.
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
    const input: Buffer[] = [Buffer.from('t0 SELECT INBOX\r\n')];
    commands.forEach((c, i) => {
      input.push(Buffer.from(`t${i + 1} `), typeof c === 'string' ? Buffer.from(c) : c, Buffer.from('\r\n'));
    });
    input.push(Buffer.from('tz LOGOUT\r\n'));
    // stdin must be a pipe (epoll) but not a socket, and stdout not a socket either: on a socket
    // imap (as root) thinks it was started from inetd and refuses. So: cat FILE | imap > FILE.
    const inFile = join(root, 'input');
    const outFile = join(root, 'output');
    writeFileSync(inFile, Buffer.concat(input));
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

/** Extracts the untagged responses between `tN ...` command completions: returns per tag. */
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

export function readCorpus(dir: string): { name: string; data: Buffer }[] {
  return readdirSync(dir).filter((f) => f.endsWith('.eml')).sort()
    .map((name) => ({ name, data: readFileSync(join(dir, name)) }));
}

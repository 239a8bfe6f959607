/**
 * dovecot-verify - the "no mailbox is corrupted" check of the fault suites: every Maildir under
 * a virtual_mailbox_base is opened by the real Dovecot 2.3 (`doveadm -c PRIVATE.conf`, no
 * service started, the approach of src/lib-storage/maildir/maildir-dovecot.test.ts) and must
 * open with nothing on stderr (no "Error:", "Warning:", "Panic:", "Fatal:", which is where
 * Dovecot reports a broken dovecot-uidlist, a duplicate UID or a file it had to resync).
 *
 * Checked per mailbox: UIDs unique; the messages Dovecot lists = the files in new/ and cur/
 * (every file accounted for, none listed twice); and every file Postern's dovecot-uidlist
 * named before Dovecot touched it keeps the UID Postern gave it (Dovecot did not renumber).
 *
 *   const r = verifyMaildirs(join(sys.configDir, 'data', 'vmail'));
 *   assert.deepEqual(r.problems, []);
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { dovecotClockLine } from './test-clock.ts';

export const DOVEADM = '/usr/bin/doveadm';
export const haveDoveadm = existsSync(DOVEADM);

export interface MaildirReport {
  user: string;
  path: string;
  messages: number;
  files: number;
}

export interface VerifyResult {
  maildirs: MaildirReport[];
  /** One line per problem found; empty = Dovecot is happy with every Maildir. */
  problems: string[];
}

function uidlistOf(path: string): Map<string, number> {
  const m = new Map<string, number>();
  const f = join(path, 'dovecot-uidlist');
  if (!existsSync(f)) return m;
  const lines = readFileSync(f, 'latin1').split('\n');
  for (const line of lines.slice(1)) {
    const r = /^(\d+)(?: [^:]*)? :(.+)$/.exec(line);
    if (r) m.set(r[2]!.split(':')[0]!, Number(r[1]));
  }
  return m;
}

function filesOf(path: string): string[] {
  const out: string[] = [];
  for (const sub of ['new', 'cur']) {
    const d = join(path, sub);
    if (existsSync(d)) for (const f of readdirSync(d)) out.push(f.split(':')[0]!);
  }
  return out;
}

/** Every DOMAIN/USER Maildir under `base` (the embedded default's virtual_mailbox_base layout). */
export function listMaildirs(base: string): { user: string; path: string }[] {
  const out: { user: string; path: string }[] = [];
  if (!existsSync(base)) return out;
  for (const domain of readdirSync(base)) {
    const dd = join(base, domain);
    if (!statSync(dd).isDirectory()) continue;
    for (const local of readdirSync(dd)) {
      const p = join(dd, local);
      if (existsSync(join(p, 'cur')) || existsSync(join(p, 'new'))) out.push({ user: `${local}@${domain}`, path: p });
    }
  }
  return out;
}

/**
 * Dovecot runs as the mailbox owner (vmail, 5000 when the tests run as root), which must be
 * able to reach the Maildir: temp directories (mkdtemp, 0700) above it get o+x.
 */
function allowTraverse(base: string): void {
  const tmp = resolve(tmpdir());
  for (let d = resolve(base); d.startsWith(tmp + '/'); d = dirname(d)) {
    const m = statSync(d).mode & 0o777;
    if ((m & 0o001) === 0) chmodSync(d, m | 0o011);
  }
}

/** Open every Maildir under `base` with doveadm and report what is wrong. */
export function verifyMaildirs(base: string): VerifyResult {
  const res: VerifyResult = { maildirs: [], problems: [] };
  allowTraverse(base);
  const work = mkdtempSync(join(tmpdir(), 'postern-dvcheck-'));
  try {
    for (const { user, path } of listMaildirs(base)) {
      const st = statSync(path);
      const conf = join(work, 'dovecot.conf');
      writeFileSync(conf, [
        `base_dir = ${work}/run`, dovecotClockLine(), `state_dir = ${work}/state`, 'log_path = /dev/stderr', 'info_log_path = /dev/null',
        `mail_location = maildir:${path}`, `mail_uid = ${st.uid}`, `mail_gid = ${st.gid}`,
        'first_valid_uid = 1', 'first_valid_gid = 1',
        'namespace inbox {', '  inbox = yes', '  separator = /', '}', '',
      ].join('\n'));
      const ours = uidlistOf(path);
      const files = filesOf(path);
      const doveadm = (args: string[]): string => {
        const r = spawnSync(DOVEADM, ['-c', conf, ...args], { env: { ...process.env, USER: user, HOME: path }, encoding: 'utf8' });
        const bad = (r.stderr ?? '').split('\n').filter((l) => /(Error|Warning|Panic|Fatal):/.test(l));
        if (bad.length || r.status !== 0) res.problems.push(`${user}: doveadm ${args.join(' ')} exit ${r.status}: ${bad.join(' | ') || r.stderr}`);
        return r.stdout ?? '';
      };
      const boxes = doveadm(['mailbox', 'list']).trim().split('\n').filter(Boolean);
      let messages = 0;
      for (const box of boxes) {
        const out = doveadm(['fetch', 'uid guid', 'mailbox', box, 'all']);
        const uids = new Set<number>();
        const guids = new Map<string, number>();
        for (const block of out.split(/\n(?=uid: )/)) {
          const u = /uid: (\d+)/.exec(block);
          const g = /guid: (\S+)/.exec(block);
          if (!u) continue;
          const uid = Number(u[1]);
          if (uids.has(uid)) res.problems.push(`${user} ${box}: UID ${uid} listed twice`);
          uids.add(uid);
          if (g) {
            if (guids.has(g[1]!)) res.problems.push(`${user} ${box}: file ${g[1]} listed twice`);
            guids.set(g[1]!, uid);
          }
        }
        if (box !== 'INBOX') continue;
        messages = uids.size;
        const fileSet = new Set(files);
        if (fileSet.size !== files.length) res.problems.push(`${user}: the same file name is in new/ and cur/`);
        for (const f of files) if (!guids.has(f)) res.problems.push(`${user}: file ${f} not listed by Dovecot`);
        for (const g of guids.keys()) if (!fileSet.has(g)) res.problems.push(`${user}: Dovecot lists ${g}, which is not a file`);
        for (const [f, uid] of ours) {
          if (fileSet.has(f) && guids.has(f) && guids.get(f) !== uid) {
            res.problems.push(`${user}: ${f} has UID ${uid} in Postern's dovecot-uidlist, Dovecot says ${guids.get(f)}`);
          }
        }
      }
      res.maildirs.push({ user, path, messages, files: files.length });
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return res;
}

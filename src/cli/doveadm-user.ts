/**
 * doveadm-user - `postern user` and `postern pw`: the user directory from the command line, with
 * doveadm's habits (doveadm-user(1), doveadm-pw(1), doveadm-auth(1)).
 *
 * SYNOPSIS
 *   postern pw [-l] [-s SCHEME] [-r ROUNDS] [-u USER] [-p PASSWORD] [-t HASH] [-V]
 *   postern user USER                  userdb lookup, printed as `doveadm user` does
 *   postern user list [PATTERN]        user names (PATTERN with * and ?)
 *   postern user add USER [-p PASSWORD] [-s SCHEME] [--quota SIZE] [--home DIR] [--uid UID] [--gid GID]
 *   postern user passwd USER [-p PASSWORD] [-s SCHEME]
 *   postern user del USER
 *   postern user verify USER [-p PASSWORD]   like `doveadm auth test`
 *   postern user export [PATTERN]      every user as a passwd-file line (doveadm-user-io.ts)
 *   postern user import [FILE]         add passwd-file lines to the writable directory
 *
 * DESCRIPTION
 *   The directory is the one in CONFIG_DIR/dovecot.conf. Writes go to the first passdb when it
 *   is a passwd-file or the embedded SQLite table (user-directory-write.ts). Without -p the
 *   password is read from standard input: one line when it is not a terminal, else prompted
 *   for twice with echo off. The default scheme is SHA512-CRYPT.
 *
 * DIAGNOSTICS
 *   pw -t: exit 0 and `HASH (verified)`, else `Fatal: reverse password verification check
 *   failed: ...` and exit 75, as doveadm. user USER: exit 67 (EX_NOUSER) for an unknown user.
 *   verify: exit 0 `passdb: USER auth succeeded`, exit 77 (EX_NOPERM) `passdb: USER auth failed`,
 *   as `doveadm auth test` does.
 *   Usage errors exit 64 (EX_USAGE); other failures exit 1 with a message saying what to change.
 *
 * SECURITY
 *   Passwords given with -p are visible to other local users in `ps`; prefer standard input.
 *   Password hashes are never printed by `user USER`.
 */
import { parseQuotaSize } from '../lib-auth/auth-quota-rule.ts';
import { openUserDirectory } from '../lib-auth/user-directory-open.ts';
import { openUserWriter, UserWriteError } from '../lib-auth/user-directory-write.ts';
import { listSchemes, MAX_PASSWORD_BYTES, PasswordError, passwordHash, passwordVerify } from '../lib-auth/password-scheme.ts';
import type { UserRecord } from '../lib-auth/user-directory.ts';
import type { CliContext } from './cli-context.ts';

const EX_USAGE = 64;
const EX_NOUSER = 67;
const EX_NOPERM = 77;
const EX_TEMPFAIL = 75;
const DEFAULT_SCHEME = 'SHA512-CRYPT';

const USAGE_PW = 'usage: postern pw [-l] [-s SCHEME] [-r ROUNDS] [-u USER] [-p PASSWORD] [-t HASH] [-V]';
const USAGE_USER = `usage: postern user USER
       postern user list [PATTERN]
       postern user add USER [-p PASSWORD] [-s SCHEME] [--quota SIZE] [--home DIR] [--uid UID] [--gid GID]
       postern user passwd USER [-p PASSWORD] [-s SCHEME]
       postern user del USER
       postern user verify USER [-p PASSWORD]
       postern user export [PATTERN]
       postern user import [FILE]`;

class UsageError extends Error {}

/** Minimal getopt: options with values from `withValue`, flags from `flags`, the rest positional. */
function parseOpts(args: string[], withValue: string[], flags: string[]): { opts: Map<string, string>; pos: string[] } {
  const opts = new Map<string, string>();
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') { pos.push(...args.slice(i + 1)); break; }
    if (a.startsWith('-') && a !== '-') {
      let name = a, value: string | undefined;
      const eq = a.indexOf('=');
      if (a.startsWith('--') && eq > 0) { name = a.slice(0, eq); value = a.slice(eq + 1); }
      else if (!a.startsWith('--') && a.length > 2 && withValue.includes(a.slice(0, 2))) { name = a.slice(0, 2); value = a.slice(2); }
      if (withValue.includes(name)) {
        if (value === undefined) {
          value = args[++i];
          if (value === undefined) throw new UsageError(`option ${name} requires an argument`);
        }
        opts.set(name, value);
      } else if (flags.includes(name)) {
        opts.set(name, '');
      } else {
        throw new UsageError(`unknown option ${a}`);
      }
    } else {
      pos.push(a);
    }
  }
  return { opts, pos };
}

/** Read one line (the password) from a non-terminal stdin, refusing more than the limit. */
async function readPasswordLine(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    const nl = Buffer.concat(chunks).indexOf(0x0a);
    if (nl >= 0 || size > MAX_PASSWORD_BYTES + 2) break;
  }
  process.stdin.destroy();
  let buf = Buffer.concat(chunks);
  const nl = buf.indexOf(0x0a);
  if (nl >= 0) buf = buf.subarray(0, nl);
  else if (buf.length > MAX_PASSWORD_BYTES) throw new PasswordError(`password is too long (the limit is ${MAX_PASSWORD_BYTES} bytes)`);
  if (buf.length && buf[buf.length - 1] === 0x0d) buf = buf.subarray(0, -1);
  return buf.toString('utf8');
}

/** Prompt on the terminal with echo off (doveadm's askpass). */
async function askPassword(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let s = '';
    const done = (err?: Error) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      if (err) reject(err); else resolve(s);
    };
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new Error('interrupted'));
        if (ch === '\u007f' || ch === '\b') s = s.slice(0, -1);
        else s += ch;
        if (Buffer.byteLength(s) > MAX_PASSWORD_BYTES) return done(new PasswordError('password is too long'));
      }
    };
    stdin.on('data', onData);
  });
}

/** -p, or stdin, or a terminal prompt (twice when `confirm`). */
async function getPassword(opt: string | undefined, confirm: boolean): Promise<string> {
  if (opt !== undefined) return opt;
  if (!process.stdin.isTTY) return readPasswordLine();
  const a = await askPassword('Enter new password: ');
  if (confirm) {
    const b = await askPassword('Retype new password: ');
    if (a !== b) throw new PasswordError("Passwords don't match!");
  }
  return a;
}

async function pwMain(args: string[]): Promise<number> {
  const { opts, pos } = parseOpts(args, ['-s', '-p', '-t', '-r', '-u'], ['-l', '-V']);
  if (pos.length) throw new UsageError(`unexpected argument ${pos[0]}`);
  if (opts.has('-l')) {
    process.stdout.write(listSchemes().join(' ') + ' \n');
    return 0;
  }
  const rounds = opts.has('-r') ? Number(opts.get('-r')) : undefined;
  if (rounds !== undefined && (!Number.isInteger(rounds) || rounds < 1)) throw new UsageError(`-r needs a positive number of rounds`);
  const password = await getPassword(opts.get('-p'), true);
  const test = opts.get('-t');
  if (test !== undefined) {
    const r = await passwordVerify(password, test);
    if (r.match) {
      process.stdout.write(`${test} (verified)\n`);
      return 0;
    }
    const why = r.error ?? 'Password mismatch';
    process.stderr.write(r.error && /Missing \{scheme\}/.test(r.error) ? `Fatal: ${why}\n` : `Fatal: reverse password verification check failed: ${why}\n`);
    return EX_TEMPFAIL;
  }
  const hash = await passwordHash(opts.get('-s') ?? DEFAULT_SCHEME, password, { rounds, user: opts.get('-u') });
  if (opts.has('-V')) {
    const v = await passwordVerify(password, hash);
    if (!v.match) { process.stderr.write('Fatal: reverse password verification check failed\n'); return EX_TEMPFAIL; }
    process.stdout.write(`${hash} (verified)\n`);
    return 0;
  }
  process.stdout.write(hash + '\n');
  return 0;
}

/** "1G" → "*:storage=1G" (validated). A value already in quota_rule form passes through. */
function quotaRuleFrom(v: string): string {
  if (v.startsWith('*:')) return v;
  if (parseQuotaSize(v) === undefined) throw new UsageError(`--quota ${v}: expected a size such as 512M, 1G or 2T`);
  return `*:storage=${v}`;
}

const SIZE_UNITS: [string, number][] = [['T', 1024 ** 4], ['G', 1024 ** 3], ['M', 1024 ** 2], ['k', 1024]];
function formatSize(n: number): string {
  for (const [u, m] of SIZE_UNITS) if (n % m === 0) return `${n / m}${u}`;
  return `${n}B`;
}

/** `doveadm user` output: a `field\tvalue` table. */
export function formatUserRecord(rec: UserRecord, asked = rec.user): string {
  // doveadm prints `user` only when the userdb changed the name.
  const rows: [string, string][] = [...(rec.user !== asked ? [['user', rec.user] as [string, string]] : []), ['uid', String(rec.uid)], ['gid', String(rec.gid)], ['home', rec.home], ['mail', rec.mail]];
  const q: string[] = [];
  if (rec.quotaBytes !== undefined) q.push(`storage=${formatSize(rec.quotaBytes)}`);
  if (rec.quotaMessages !== undefined) q.push(`messages=${rec.quotaMessages}`);
  if (q.length) rows.push(['quota_rule', `*:${q.join(':')}`]);
  for (const [k, v] of Object.entries(rec.extra ?? {})) rows.push([k, v]);
  return ['field\tvalue', ...rows.filter(([, v]) => v !== '').map(([k, v]) => `${k}\t${v}`)].join('\n') + '\n';
}

function globToRegExp(p: string): RegExp {
  return new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');
}

async function userMain(args: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = args;
  if (!sub || sub === '-h' || sub === '--help') {
    process.stdout.write(USAGE_USER + '\n');
    return sub ? 0 : EX_USAGE;
  }
  // Loaded here, not at the top, so `postern pw` works without any configuration.
  const { loadDovecotConf } = await import('../global/dovecot-conf.ts');
  const conf = loadDovecotConf(ctx.configDir);
  switch (sub) {
    case 'add':
    case 'passwd': {
      const { opts, pos } = parseOpts(rest, ['-p', '-s', '--quota', '--home', '--uid', '--gid'], []);
      if (pos.length !== 1) throw new UsageError(`user ${sub} needs exactly one USER`);
      if (sub === 'passwd' && (opts.has('--quota') || opts.has('--home'))) throw new UsageError('user passwd changes only the password');
      const writer = openUserWriter(conf);
      try {
        const password = await getPassword(opts.get('-p'), true);
        const hash = await passwordHash(opts.get('-s') ?? DEFAULT_SCHEME, password);
        if (sub === 'add') {
          const quota = opts.get('--quota');
          writer.add({ user: pos[0]!, password: hash, home: opts.get('--home'), quotaRule: quota ? quotaRuleFrom(quota) : undefined, uid: opts.get('--uid'), gid: opts.get('--gid') });
          process.stdout.write(`added ${pos[0]!.toLowerCase()} (${writer.where})\n`);
        } else {
          writer.setPassword(pos[0]!, hash);
          process.stdout.write(`changed the password of ${pos[0]!.toLowerCase()} (${writer.where})\n`);
        }
      } finally {
        writer.close();
      }
      return 0;
    }
    case 'del': {
      const { pos } = parseOpts(rest, [], []);
      if (pos.length !== 1) throw new UsageError('user del needs exactly one USER');
      const writer = openUserWriter(conf);
      try {
        writer.remove(pos[0]!);
      } finally {
        writer.close();
      }
      process.stdout.write(`deleted ${pos[0]!.toLowerCase()} (${writer.where})\n`);
      return 0;
    }
    case 'list': {
      const { pos } = parseOpts(rest, [], []);
      if (pos.length > 1) throw new UsageError('user list takes at most one PATTERN');
      const re = globToRegExp(pos[0] ?? '*');
      const dir = await openUserDirectory(conf);
      try {
        const names: string[] = [];
        for await (const u of dir.iterate()) if (re.test(u)) names.push(u);
        process.stdout.write(names.sort().map((n) => n + '\n').join(''));
      } finally {
        await dir.close();
      }
      return 0;
    }
    case 'export': {
      const { pos } = parseOpts(rest, [], []);
      if (pos.length > 1) throw new UsageError('user export takes at most one PATTERN');
      const { exportUsers } = await import('./doveadm-user-io.ts');
      const lines = await exportUsers(conf, globToRegExp(pos[0] ?? '*'), (m) => process.stderr.write(`postern user: warning: ${m}\n`));
      process.stdout.write(lines.map((l) => l + '\n').join(''));
      return 0;
    }
    case 'import': {
      const { pos } = parseOpts(rest, [], []);
      if (pos.length > 1) throw new UsageError('user import takes at most one FILE');
      const { readFileSync } = await import('node:fs');
      const { importUsers } = await import('./doveadm-user-io.ts');
      let text: string;
      try {
        text = pos[0] && pos[0] !== '-' ? readFileSync(pos[0], 'utf8') : readFileSync(0, 'utf8');
      } catch (err) {
        throw new UserWriteError(`cannot read ${pos[0] ?? 'standard input'}: ${(err as Error).message}`);
      }
      const [added, skipped] = importUsers(conf, text, pos[0] ?? '-', (m) => process.stderr.write(`postern user: warning: ${m}\n`));
      process.stdout.write(`imported ${added} user(s), skipped ${skipped}\n`);
      return 0;
    }
    case 'verify': {
      const { opts, pos } = parseOpts(rest, ['-p'], []);
      if (pos.length !== 1) throw new UsageError('user verify needs exactly one USER');
      const password = await getPassword(opts.get('-p'), false);
      const dir = await openUserDirectory(conf);
      try {
        const r = await dir.verifyPlain(pos[0]!, password);
        const name = r.user ?? pos[0]!;
        if (r.result === 'ok') {
          process.stdout.write(`passdb: ${name} auth succeeded\nextra fields:\n  user=${name}\n`);
          return 0;
        }
        const why = r.result === 'tempfail' ? ' (temporary failure: see the log)' : r.result === 'disabled' ? ' (login disabled)' : '';
        process.stdout.write(`passdb: ${name} auth failed${why}\n`);
        return EX_NOPERM;
      } finally {
        await dir.close();
      }
    }
    default: {
      if (sub.startsWith('-')) throw new UsageError(`unknown option ${sub}`);
      if (rest.length) throw new UsageError(`unexpected argument ${rest[0]}`);
      const dir = await openUserDirectory(conf);
      try {
        const rec = await dir.lookup(sub);
        if (!rec) {
          process.stdout.write(`userdb lookup: user ${sub} doesn't exist\n`);
          return EX_NOUSER;
        }
        process.stdout.write(formatUserRecord(rec, sub));
        return 0;
      } finally {
        await dir.close();
      }
    }
  }
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const usage = ctx.command === 'pw' ? USAGE_PW : USAGE_USER;
  try {
    return ctx.command === 'pw' ? await pwMain(args) : await userMain(args, ctx);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`postern ${ctx.command}: ${err.message}\n${usage}\n`);
      return EX_USAGE;
    }
    if (err instanceof PasswordError || err instanceof UserWriteError || (err instanceof Error && err.name === 'ConfigError')) {
      process.stderr.write(`postern ${ctx.command}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

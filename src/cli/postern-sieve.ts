/**
 * postern-sieve - `postern sieve`: Pigeonhole's command-line tools for administrators.
 *
 * SYNOPSIS
 *   postern sieve compile FILE...                         (sievec: check scripts)
 *   postern sieve test [-f SENDER] [-r RECIPIENT] [-a ORIG_RCPT] [-s SCRIPT] [-x EXTENSIONS] USER MESSAGE_FILE
 *                                                         (sieve-test: what delivery would do)
 *
 * DESCRIPTION
 *   compile checks each FILE with the extensions dovecot.conf allows (plugin { sieve_extensions
 *   sieve_global_extensions }, Pigeonhole's defaults without a dovecot.conf) and prints errors
 *   and warnings as sievec does ("NAME: line 4: error: ..."). Pigeonhole's .svbin is not written:
 *   Postern compiles at delivery (and caches). Exit 0 when every file compiles, 1 otherwise.
 *
 *   test runs USER's scripts (sieve_before, the active script or sieve_default, sieve_after, as
 *   delivery does; with -s only SCRIPT) over MESSAGE_FILE and prints the actions in sieve-test's
 *   layout ("Performed actions", "Implicit keep"), then what delivery would send (vacation
 *   replies checked against RFC 3834 and the user's duplicate file, which is not updated).
 *   Nothing is stored and nothing is sent. The envelope defaults: sender from Return-Path: or
 *   From:, recipient USER. -x adjusts the extensions like sieve-test's -x ("+editheader -regex").
 *
 * DIAGNOSTICS
 *   Exit 64 on usage errors, 67 for an unknown USER, 1 when a script does not compile.
 */
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { CliContext } from './cli-context.ts';
import { compileSieve, formatSieveErrors, sieveExtensions } from '../lib-sieve/sieve-compile.ts';
import { sieveSettings, type SieveSettings } from '../lib-sieve/sieve-settings.ts';
import { planSieveDelivery } from '../lib-sieve/sieve-run.ts';
import type { SieveAction } from '../lib-sieve/sieve-result.ts';
import { SieveDuplicateDb } from '../lib-sieve/sieve-duplicate.ts';
import type { DovecotConfig } from '../global/dovecot-conf.ts';

const EX_USAGE = 64;
const EX_NOUSER = 67;
const USAGE = `usage: postern sieve compile FILE...
       postern sieve test [-f SENDER] [-r RECIPIENT] [-a ORIG_RCPT] [-s SCRIPT] [-x EXTENSIONS] USER MESSAGE_FILE`;

async function dovecot(ctx: CliContext): Promise<DovecotConfig | undefined> {
  const { loadDovecotConf } = await import('../global/dovecot-conf.ts');
  try { return loadDovecotConf(ctx.configDir); } catch { return undefined; }
}

function settingsFrom(dc: DovecotConfig | undefined): SieveSettings {
  const s = sieveSettings(dc ?? { get: () => undefined }, 'lmtp');
  return { ...s, enabled: true, hostname: s.hostname || 'localhost' };
}

function describe(a: SieveAction): string[] {
  switch (a.type) {
    case 'store': {
      const out = [` * store message in folder: ${a.mailbox}`];
      if (a.flags.length) out.push(`        + add IMAP flags: ${a.flags.map((f) => f.toLowerCase()).join(' ')}`);
      if (a.create) out.push('        + create mailbox if it does not exist');
      return out;
    }
    case 'redirect': return [` * redirect message to: <${a.address}>`];
    case 'discard': return [' * discard'];
    case 'reject': return [` * ${a.ereject ? 'ereject' : 'reject'} message with reason: ${a.reason}`];
    case 'notify': return [` * send notification with method 'mailto:':`, `    => to: ${a.method.replace(/^mailto:/i, '')}`, ...(a.message ? [`    => subject: ${a.message}`] : [])];
    case 'vacation': return [
      ' * send vacation message:',
      `    => seconds : ${a.seconds}`,
      ...(a.subject !== undefined ? [`    => subject : ${a.subject}`] : []),
      ...(a.from !== undefined ? [`    => from    : ${a.from}`] : []),
      `    => handle  : ${a.handle}`,
      '', 'START MESSAGE', a.reason, 'END MESSAGE',
    ];
  }
}

async function test(args: string[], ctx: CliContext): Promise<number> {
  const opt = new Map<string, string>();
  const pos: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (['-f', '-r', '-a', '-s', '-x'].includes(a)) {
      const v = args[++i];
      if (v === undefined) { console.error(`postern sieve test: option ${a} requires an argument\n${USAGE}`); return EX_USAGE; }
      opt.set(a, v);
    } else pos.push(a);
  }
  if (pos.length !== 2) { console.error(USAGE); return EX_USAGE; }
  const [user, file] = pos as [string, string];
  const dc = await dovecot(ctx);
  const s = settingsFrom(dc);
  if (opt.has('-x')) s.extensions = sieveExtensions(opt.get('-x'), [...s.extensions]);
  let home = '';
  if (dc) {
    const { openUserDirectory } = await import('../lib-auth/user-directory-open.ts');
    let dir;
    try {
      dir = await openUserDirectory(dc);
    } catch (e) {
      // With -s the script is given: the user directory is only needed for ~ (and the user's own scripts).
      if (!opt.has('-s')) { console.error(`postern sieve test: ${(e as Error).message}`); return 1; }
    }
    if (dir) {
      try {
        const rec = await dir.lookup(user);
        if (!rec && !opt.has('-s')) { console.error(`postern sieve test: user ${user} does not exist`); return EX_NOUSER; }
        home = rec?.home ?? '';
      } finally { await dir.close(); }
    }
  }
  const content = readFileSync(file);
  const head = content.toString('latin1').split(/\r?\n\r?\n/)[0] ?? '';
  const rp = /^Return-Path:\s*<([^>]*)>/im.exec(head)?.[1];
  const from = opt.get('-f') ?? rp ?? /^From:.*?<?([^\s<>]+@[^\s<>]+)>?/im.exec(head)?.[1] ?? 'MAILER-DAEMON';
  const rcpt = opt.get('-r') ?? user;
  let scripts;
  if (opt.has('-s')) {
    const path = opt.get('-s')!;
    const r = compileSieve(readFileSync(path, 'utf8'), { extensions: s.extensions, maxScriptSize: s.maxScriptSize });
    if (!r.ok) { console.error(formatSieveErrors(basename(path).replace(/\.sieve$/, ''), r.errors, r.warnings)); return 1; }
    scripts = [{ phase: 'personal' as const, path, script: r.script, includes: new Map() }];
  }
  const plan = await planSieveDelivery({
    settings: s, user, home,
    envelope: { from, to: rcpt, ...(opt.has('-a') ? { origTo: opt.get('-a')! } : {}) },
    content, mailboxExists: async () => true,
    // The user's duplicate file is consulted (vacation periods) but never written: no commit().
    duplicates: new SieveDuplicateDb(home ? join(home, '.postern-sieve-dupes') : undefined),
    ...(scripts ? { scripts } : {}),
  });
  for (const l of [...plan.warnings, ...plan.log]) console.error(`postern sieve test: ${l}`);
  const out: string[] = ['', 'Performed actions:', ''];
  if (plan.actions.length === 0) out.push('  (none)');
  for (const a of plan.actions) out.push(...describe(a));
  out.push('', 'Implicit keep:', '');
  const keep = plan.stores.find((x) => x.implicit);
  if (keep) { out.push(' * store message in folder: INBOX'); if (keep.flags.length) out.push(`        + add IMAP flags: ${keep.flags.map((f) => f.toLowerCase()).join(' ')}`); }
  else out.push('  (none)');
  if (plan.sends.length) {
    out.push('', 'Messages delivery would queue:', '');
    for (const m of plan.sends) out.push(` * ${m.kind} from <${m.sender}> to <${m.recipients.join('>, <')}>`);
  }
  out.push('');
  console.log(out.join('\n'));
  return 0;
}

async function compile(files: string[], ctx: CliContext): Promise<number> {
  if (files.length === 0) { console.error(USAGE); return EX_USAGE; }
  const s = settingsFrom(await dovecot(ctx));
  let failed = 0;
  for (const f of files) {
    let text: string;
    try { text = readFileSync(f, 'utf8'); } catch (e) { console.error(`postern sieve compile: ${f}: ${(e as Error).message}`); failed++; continue; }
    const name = basename(f).replace(/\.sieve$/, '');
    const r = compileSieve(text, { extensions: s.extensions, maxScriptSize: s.maxScriptSize });
    const report = formatSieveErrors(name, r.ok ? [] : r.errors, r.warnings);
    if (report) console.error(report);
    if (!r.ok) { console.error(`${name}: error: validation failed.`); failed++; }
  }
  return failed ? 1 : 0;
}

export async function main(args: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'compile') return compile(rest, ctx);
  if (sub === 'test') return test(rest, ctx);
  console.error(USAGE);
  return EX_USAGE;
}

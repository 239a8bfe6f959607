/**
 * managesieve-commands - the commands of the authenticated state (RFC 5804 §2.4-2.14), with
 * Pigeonhole 0.5's replies (checked against Dovecot 2.3.19's managesieve,
 * test/interop/managesieve-vs-dovecot.test.ts):
 *
 *   LISTSCRIPTS                 "name" [ACTIVE] ... OK "Listscripts completed."
 *   GETSCRIPT name              {N} CRLF script CRLF OK "Getscript completed."
 *   PUTSCRIPT name script       OK "PUTSCRIPT completed." | OK (WARNINGS) "..." | NO "<compile report>"
 *   CHECKSCRIPT script          OK "Script checked successfully." | OK (WARNINGS) | NO "<report>"
 *   SETACTIVE name              OK "Setactive completed." | OK "Script is already active."
 *   SETACTIVE ""                OK "Active script is now deactivated." | OK "No scripts currently active."
 *   DELETESCRIPT name           OK "Deletescript completed." | NO (ACTIVE) "Cannot delete the active Sieve script."
 *   RENAMESCRIPT old new        OK "Renamescript completed." | NO (ALREADYEXISTS) "A sieve script with that name already exists."
 *   HAVESPACE name size         OK "Putscript would succeed." | NO (QUOTA/MAXSCRIPTS|MAXSTORAGE|MAXSIZE) "..."
 *                               | NO "Invalid script name." | NO "Cannot upload empty script."
 *   NOOP [tag]                  OK "NOOP Completed" | OK (TAG "tag") "Done"
 *   CAPABILITY, LOGOUT, UNAUTHENTICATE are the session's (managesieve-session.ts).
 *
 *   a missing script            NO (NONEXISTENT) "Sieve script `name' not found"
 *   a bad name                  NO "Invalid Sieve script name `name'." (PUTSCRIPT),
 *                               NO "Invalid script name `name'." (the others),
 *                               NO "Invalid new Sieve script name `name'." (RENAMESCRIPT)
 *   wrong arguments             NO "Error in MANAGESIEVE command VERB: Missing arguments." /
 *                               "Too many arguments." / "Invalid arguments."
 *
 * The quota of PUTSCRIPT (sieve_max_script_size, sieve_quota_max_scripts,
 * sieve_quota_max_storage) is checked when the script's literal is announced, before a byte of
 * it is read (scriptLiteral()); a script sent as a quoted string is checked once read.
 */
import type { MsArg } from './managesieve-input.ts';
import { msQuote } from './managesieve-input.ts';
import { checkScript } from './managesieve-compile.ts';
import { isValidScriptName, sanitizeName, SieveStorageError, type SieveFileStorage } from './managesieve-storage.ts';
import type { ManageSieveSettings } from './managesieve-settings.ts';

export interface MsIo {
  /** `OK|NO|BYE [(code)] text` */
  reply(kind: 'OK' | 'NO' | 'BYE', text: string, code?: string): Promise<void>;
  raw(data: Buffer | string): Promise<void>;
}

export interface MsCommandContext {
  io: MsIo;
  storage: SieveFileStorage;
  settings: ManageSieveSettings;
  /** Per-user quota (userdb fields override the plugin settings). */
  quota: { maxScripts: number; maxStorage: number };
  stats: { put: number; putBytes: number; get: number; getBytes: number; check: number; checkBytes: number; deleted: number; renamed: number };
}

/** A command's result for the bad-command count: true when it was a protocol error. */
export type CommandFn = (c: MsCommandContext, verb: string, args: MsArg[]) => Promise<boolean>;

async function cmdError(c: MsCommandContext, verb: string, text: string): Promise<true> {
  await c.io.reply('NO', `Error in MANAGESIEVE command ${verb}: ${text}`);
  return true;
}

/** Exactly `n` string arguments, or the error reply (true = protocol error). */
async function strings(c: MsCommandContext, verb: string, args: MsArg[], n: number): Promise<Buffer[] | true> {
  if (args.length < n) return cmdError(c, verb, 'Missing arguments.');
  if (args.length > n) return cmdError(c, verb, 'Too many arguments.');
  if (args.some((a) => a.kind !== 'string')) return cmdError(c, verb, 'Invalid arguments.');
  return args.map((a) => a.value);
}

async function storageFailure(c: MsCommandContext, e: unknown): Promise<boolean> {
  if (e instanceof SieveStorageError) {
    if (e.code === 'TEMP') await c.io.reply('NO', e.message, 'TRYLATER');
    else await c.io.reply('NO', e.message, e.code);
    return false;
  }
  throw e;
}

const nameOf = (b: Buffer): string => b.toString('utf8');

export async function quotaCheck(c: MsCommandContext, name: string, size: number): Promise<boolean> {
  const max = c.settings.maxScriptSize;
  if (max > 0 && size > max) {
    await c.io.reply('NO', `Script is too large (max ${max} bytes).`, 'QUOTA/MAXSIZE');
    return false;
  }
  const q = await c.storage.haveSpace(name, size, c.quota.maxScripts, c.quota.maxStorage);
  if (!q.ok) {
    await c.io.reply('NO', q.code === 'QUOTA/MAXSCRIPTS' ? `Script count quota exceeded (max ${q.limit} scripts).` : `Script storage quota exceeded (max ${q.limit} bytes).`, q.code);
    return false;
  }
  return true;
}

/**
 * PUTSCRIPT / CHECKSCRIPT announced their script as a literal of `size` bytes: answer at once
 * and skip it when it cannot be stored ('skip'), else read it (at most the script size limit).
 */
export async function scriptLiteral(c: MsCommandContext, verb: string, index: number, size: number, args: readonly MsArg[]): Promise<'skip' | { read: number } | undefined> {
  const isScript = (verb === 'PUTSCRIPT' && index === 1) || (verb === 'CHECKSCRIPT' && index === 0);
  if (!isScript) return undefined;
  const max = c.settings.maxScriptSize;
  if (verb === 'CHECKSCRIPT') {
    if (max > 0 && size > max) { await c.io.reply('NO', `Script is too large (max ${max} bytes).`, 'QUOTA/MAXSIZE'); return 'skip'; }
    return { read: max > 0 ? max : size };
  }
  const nameArg = args[0];
  if (!nameArg || nameArg.kind !== 'string') { await cmdError(c, verb, 'Invalid arguments.'); return 'skip'; }
  const name = nameOf(nameArg.value);
  if (!(await quotaCheck(c, isValidScriptName(nameArg.value) ? name : '', size))) return 'skip';
  if (!isValidScriptName(nameArg.value)) { await c.io.reply('NO', `Invalid Sieve script name \`${sanitizeName(nameArg.value)}'.`); return 'skip'; }
  return { read: max > 0 ? max : size };
}

async function putOrCheck(c: MsCommandContext, verb: string, args: MsArg[]): Promise<boolean> {
  const put = verb === 'PUTSCRIPT';
  const want = put ? 2 : 1;
  if (args.length < want || args.slice(0, want).some((a) => a.kind !== 'string')) return cmdError(c, verb, 'Invalid arguments.');
  if (args.length > want) return cmdError(c, verb, 'Too many command arguments.');
  const script = args[want - 1]!;
  const nameBuf = put ? args[0]!.value : undefined;
  const name = nameBuf ? nameOf(nameBuf) : '';
  if (!script.literal) {
    // A quoted script: its size was not known before it was read.
    if (put && !(await quotaCheck(c, isValidScriptName(nameBuf!) ? name : '', script.value.length))) return false;
    if (!put && c.settings.maxScriptSize > 0 && script.value.length > c.settings.maxScriptSize) {
      await c.io.reply('NO', `Script is too large (max ${c.settings.maxScriptSize} bytes).`, 'QUOTA/MAXSIZE');
      return false;
    }
  }
  if (put && !isValidScriptName(nameBuf!)) {
    await c.io.reply('NO', `Invalid Sieve script name \`${sanitizeName(nameBuf!)}'.`);
    return false;
  }
  const r = checkScript(script.value.toString('utf8'), name, { extensions: c.settings.extensions, maxScriptSize: 0, maxErrors: c.settings.maxCompileErrors });
  if (!r.ok) { await c.io.reply('NO', r.report); return false; }
  if (put) {
    await c.storage.put(name, script.value);
    c.stats.put++; c.stats.putBytes += script.value.length;
  } else {
    c.stats.check++; c.stats.checkBytes += script.value.length;
  }
  if (r.warnings) await c.io.reply('OK', r.warnings, 'WARNINGS');
  else await c.io.reply('OK', put ? 'PUTSCRIPT completed.' : 'Script checked successfully.');
  return false;
}

async function listScripts(c: MsCommandContext, verb: string, args: MsArg[]): Promise<boolean> {
  if (args.length > 0) return cmdError(c, verb, 'Too many arguments.');
  const list = await c.storage.list();
  await c.io.raw(list.map((s) => `${msQuote(s.name)}${s.active ? ' ACTIVE' : ''}\r\n`).join(''));
  await c.io.reply('OK', 'Listscripts completed.');
  return false;
}

async function getScript(c: MsCommandContext, verb: string, args: MsArg[]): Promise<boolean> {
  const a = await strings(c, verb, args, 1);
  if (a === true) return true;
  if (!isValidScriptName(a[0]!)) { await c.io.reply('NO', `Invalid script name \`${sanitizeName(a[0]!)}'.`); return false; }
  try {
    const data = await c.storage.get(nameOf(a[0]!));
    c.stats.get++; c.stats.getBytes += data.length;
    await c.io.raw(Buffer.concat([Buffer.from(`{${data.length}}\r\n`), data, Buffer.from('\r\n')]));
    await c.io.reply('OK', 'Getscript completed.');
  } catch (e) {
    return storageFailure(c, e);
  }
  return false;
}

async function setActive(c: MsCommandContext, verb: string, args: MsArg[]): Promise<boolean> {
  const a = await strings(c, verb, args, 1);
  if (a === true) return true;
  const raw = a[0]!;
  if (raw.length > 0 && !isValidScriptName(raw)) { await c.io.reply('NO', `Invalid script name \`${sanitizeName(raw)}'.`); return false; }
  const name = nameOf(raw);
  try {
    if (name !== '') {
      // Pigeonhole compiles the script again before activating it.
      const text = await c.storage.get(name);
      const r = checkScript(text.toString('utf8'), name, { extensions: c.settings.extensions, maxScriptSize: 0, maxErrors: c.settings.maxCompileErrors });
      if (!r.ok) { await c.io.reply('NO', r.report); return false; }
    }
    const st = await c.storage.setActive(name);
    const text = { activated: 'Setactive completed.', already: 'Script is already active.', deactivated: 'Active script is now deactivated.', none: 'No scripts currently active.' }[st];
    await c.io.reply('OK', text);
  } catch (e) {
    return storageFailure(c, e);
  }
  return false;
}

async function deleteScript(c: MsCommandContext, verb: string, args: MsArg[]): Promise<boolean> {
  const a = await strings(c, verb, args, 1);
  if (a === true) return true;
  if (!isValidScriptName(a[0]!)) { await c.io.reply('NO', `Invalid script name \`${sanitizeName(a[0]!)}'.`); return false; }
  try {
    await c.storage.delete(nameOf(a[0]!));
    c.stats.deleted++;
    await c.io.reply('OK', 'Deletescript completed.');
  } catch (e) {
    return storageFailure(c, e);
  }
  return false;
}

async function renameScript(c: MsCommandContext, verb: string, args: MsArg[]): Promise<boolean> {
  const a = await strings(c, verb, args, 2);
  if (a === true) return true;
  if (!isValidScriptName(a[0]!)) { await c.io.reply('NO', `Invalid script name \`${sanitizeName(a[0]!)}'.`); return false; }
  if (!isValidScriptName(a[1]!)) { await c.io.reply('NO', `Invalid new Sieve script name \`${sanitizeName(a[1]!)}'.`); return false; }
  try {
    await c.storage.rename(nameOf(a[0]!), nameOf(a[1]!));
    c.stats.renamed++;
    await c.io.reply('OK', 'Renamescript completed.');
  } catch (e) {
    return storageFailure(c, e);
  }
  return false;
}

async function haveSpace(c: MsCommandContext, verb: string, args: MsArg[]): Promise<boolean> {
  if (args.length < 2) return cmdError(c, verb, 'Missing arguments.');
  if (args.length > 2) return cmdError(c, verb, 'Too many arguments.');
  // Pigeonhole cmd-havespace.c, in its order.
  if (args[0]!.kind !== 'string') { await c.io.reply('NO', 'Invalid string for scriptname.'); return false; }
  const sizeText = args[1]!.value.toString('latin1');
  if (args[1]!.kind !== 'atom' || !/^\d{1,15}$/.test(sizeText)) { await c.io.reply('NO', 'Invalid scriptsize argument.'); return false; }
  if (!isValidScriptName(args[0]!.value)) { await c.io.reply('NO', 'Invalid script name.'); return false; }
  if (Number(sizeText) === 0) { await c.io.reply('NO', 'Cannot upload empty script.'); return false; }
  if (await quotaCheck(c, nameOf(args[0]!.value), Number(sizeText))) await c.io.reply('OK', 'Putscript would succeed.');
  return false;
}

async function noop(c: MsCommandContext, verb: string, args: MsArg[]): Promise<boolean> {
  if (args.length > 1) return cmdError(c, verb, 'Too many arguments.');
  if (args.length === 0) { await c.io.reply('OK', 'NOOP Completed'); return false; }
  if (args[0]!.kind !== 'string') { await c.io.reply('NO', 'Invalid echo tag.'); return false; }
  await c.io.reply('OK', 'Done', `TAG ${msQuote(args[0]!.value)}`);
  return false;
}

export const AUTHENTICATED_COMMANDS: ReadonlyMap<string, CommandFn> = new Map<string, CommandFn>([
  ['LISTSCRIPTS', listScripts],
  ['GETSCRIPT', getScript],
  ['PUTSCRIPT', putOrCheck],
  ['CHECKSCRIPT', putOrCheck],
  ['SETACTIVE', setActive],
  ['DELETESCRIPT', deleteScript],
  ['RENAMESCRIPT', renameScript],
  ['HAVESPACE', haveSpace],
  ['NOOP', noop],
]);

export { noop as noopCommand };

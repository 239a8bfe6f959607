/**
 * console-aliases - the web console's Aliases page: the entries of the first indexed table of
 * virtual_alias_maps (`hash:`, `btree:` or `lmdb:FILE`, Postfix virtual(5) syntax: "address
 * target, target"), edited as an administrator edits the source file and runs `postern map`:
 * the source is rewritten atomically (temporary file beside it, fsync, rename; every other line,
 * comment and continuation kept; the file's mode kept) and the index FILE.pdb rebuilt with
 * postmap's writer (util/dict-hash.ts), which running daemons reload within a second.
 *
 *   /console/aliases        list; POST op=add (address, targets), op=delete (address)
 *
 * Addresses are full addresses (no catch-all "@domain" and no regular expressions: those stay
 * in the file, shown but not editable), at most 50 targets of at most 254 characters each.
 * Another table type (texthash:, SQL, LDAP, regexp:) is shown as read-only with the reason.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, isAbsolute, join } from 'node:path';
import type { MainConfig } from '../global/mail-conf.ts';
import { INDEX_SUFFIX, writeIndexFile } from '../util/dict-hash.ts';
import { parseKeyValueSource } from '../util/dict-source.ts';
import { checkDomainName } from '../lib-checklist/dns-plan.ts';
import type { HttpResponse } from '../lib-http/http-route.ts';
import { button, csrfField, h, page, table } from './console-html.ts';
import { flash, respond, takeFlash, type ConsoleRequest } from './console-route.ts';

const MAX_TARGETS = 50;

/** The editable table: its source file, or why there is none. */
export function aliasSource(cf: MainConfig): { file: string } | { why: string } {
  const maps = cf.list('virtual_alias_maps');
  if (maps.length === 0) return { why: 'virtual_alias_maps is empty: set virtual_alias_maps = hash:/etc/postern/virtual (and run postern map hash:/etc/postern/virtual once) to manage aliases here' };
  const m = /^(hash|btree|lmdb):(.+)$/.exec(maps[0]!);
  if (!m || !isAbsolute(m[2]!)) return { why: `the first table of virtual_alias_maps is ${maps[0]}: only hash:, btree: or lmdb: with an absolute path is edited here` };
  return { file: m[2]! };
}

/** A full address as an alias key or target, lower case; throws a reason. */
export function checkAliasAddress(raw: string, what: string): string {
  const a = raw.trim().toLowerCase();
  const m = /^([a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@([^@]+)$/.exec(a);
  if (!m || a.length > 254 || m[1]!.length > 64) throw new Error(`${what} ${JSON.stringify(raw.slice(0, 80))} is not a full address (local@domain)`);
  const bad = checkDomainName(m[2]!);
  if (bad) throw new Error(`${what} ${JSON.stringify(raw.slice(0, 80))}: ${bad}`);
  return a;
}

function readSource(file: string): string {
  try { return readFileSync(file, 'utf8'); } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw e;
  }
}

/** Rewrite the source atomically, then rebuild its index as `postern map` does. */
function writeAndIndex(file: string, text: string): void {
  let mode = 0o644;
  try { mode = statSync(file).mode & 0o7777; } catch { /* new file */ }
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', mode);
  try { writeSync(fd, text); fsyncSync(fd); } catch (e) { closeSync(fd); unlinkSync(tmp); throw e; }
  closeSync(fd);
  renameSync(tmp, file);
  const entries = new Map<string, string>();
  for (const e of parseKeyValueSource(text, file, () => {})) {
    const k = e.key.toLowerCase();
    if (!entries.has(k)) entries.set(k, e.value);
  }
  writeIndexFile(file + INDEX_SUFFIX, entries, true);
}

/** Drop the entry KEY (its line and continuation lines). */
function withoutEntry(text: string, key: string): { text: string; found: boolean } {
  const out: string[] = [];
  let skipping = false;
  let found = false;
  for (const line of text.split('\n')) {
    const cont = /^[ \t]/.test(line) && line.trim() !== '' && !line.trim().startsWith('#');
    if (skipping && cont) continue;
    skipping = false;
    const k = /^(\S+)/.exec(line)?.[1];
    if (k && !k.startsWith('#') && k.toLowerCase() === key) { skipping = true; found = true; continue; }
    out.push(line);
  }
  return { text: out.join('\n'), found };
}

export async function aliasPage(cr: ConsoleRequest): Promise<HttpResponse> {
  const src = aliasSource(cr.ctx.config);
  if (cr.req.method === 'POST') return aliasAction(cr, src);
  if ('why' in src) return respond(200, page('Aliases', `<p class="err">${h(src.why)}</p>`, cr.user, '/console/aliases', takeFlash(cr)));
  const entries = parseKeyValueSource(readSource(src.file), src.file, () => {});
  const rows = entries.map((e) => [h(e.key), h(e.value), e.key.includes('@') && !e.key.startsWith('@') ? button(cr.user, '/console/aliases', 'delete', { op: 'delete', address: e.key }) : '<small>edit the file</small>']);
  const body = `<p>Table: <code>${h(src.file)}</code> (virtual_alias_maps). <span id="alias-count">${entries.length}</span> entries.</p>`
    + `<h2>Add an alias</h2><form method="post" action="/console/aliases">${csrfField(cr.user)}<input type="hidden" name="op" value="add">`
    + '<label>Address <input name="address" required maxlength="254" placeholder="sales@example.com"></label> '
    + '<label>Delivered to <input name="targets" required maxlength="4000" placeholder="alice@example.com, bob@example.com"></label> <button type="submit">Add</button></form>'
    + table(['address', 'delivered to', ''], rows, entries.map((e) => `data-alias="${h(e.key.toLowerCase())}"`));
  return respond(200, page('Aliases', body, cr.user, '/console/aliases', takeFlash(cr)));
}

async function aliasAction(cr: ConsoleRequest, src: { file: string } | { why: string }): Promise<HttpResponse> {
  const back = '/console/aliases';
  if ('why' in src) return flash(cr, { err: src.why }, back);
  const f = cr.form;
  try {
    const address = checkAliasAddress(f.get('address') ?? '', 'address');
    const text = readSource(src.file);
    if (f.get('op') === 'add') {
      const raw = (f.get('targets') ?? '').split(/[,\s]+/).filter((t) => t !== '');
      if (raw.length === 0 || raw.length > MAX_TARGETS) throw new Error(`give 1 to ${MAX_TARGETS} target addresses`);
      const targets = raw.map((t) => checkAliasAddress(t, 'target'));
      if (parseKeyValueSource(text, src.file, () => {}).some((e) => e.key.toLowerCase() === address)) throw new Error(`${address} is already in ${src.file}`);
      writeAndIndex(src.file, (text === '' || text.endsWith('\n') ? text : text + '\n') + `${address}\t${targets.join(', ')}\n`);
      cr.ctx.log.info(`console: ${cr.user.user} added the alias ${address} -> ${targets.join(', ')} to ${src.file}`);
      return flash(cr, { ok: `${address} → ${targets.join(', ')} added.` }, back);
    }
    if (f.get('op') === 'delete') {
      const r = withoutEntry(text, address);
      if (!r.found) throw new Error(`${address} is not in ${src.file}`);
      writeAndIndex(src.file, r.text);
      cr.ctx.log.info(`console: ${cr.user.user} deleted the alias ${address} from ${src.file}`);
      return flash(cr, { ok: `${address} deleted.` }, back);
    }
    throw new Error('unknown operation');
  } catch (e) {
    return flash(cr, { err: (e as Error).message }, back);
  }
}

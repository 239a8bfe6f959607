/**
 * local-alias - alias_maps delivery (Postfix local/alias.c). The local part is looked up, then
 * the name without its extension (recipient_delimiter); a table that cannot be read defers
 * ("alias database unavailable"). The value is a list of targets in the aliases(5) language
 * (local-token.ts), expanded with the alias table owner's rights (when not root, else
 * default_privs). An alias `owner-NAME` makes `owner-NAME@$myorigin` (or, with
 * expand_owner_alias = yes, its expansion) the envelope sender of NAME's expansion, so errors
 * go to the list owner.
 */
import { promises as fsp } from 'node:fs';
import type { Maps } from '../global/maps.ts';
import { DictError } from '../util/dict.ts';
import { getpwuid } from '../util/dict-unix.ts';
import { defaultPrivs, mtaProbe, SENT, type Outcome, type State, type Walk } from './local-state.ts';
import { expandTargets } from './local-expand.ts';
import { AliasSyntaxError, parseTarget, splitTargets, type AliasTarget } from './local-token.ts';

/** Postfix alias.c: alias commands/files run as the alias table's owner unless that is root. */
export async function aliasTableOwner(aliasMaps: Maps): Promise<number | undefined> {
  for (const d of aliasMaps.dicts) {
    const st = await fsp.stat(d.name).catch(() => undefined);
    if (st && st.uid !== 0) return st.uid;
  }
  return undefined;
}

/**
 * Deliver `name` (or `user`, its name without the extension, when `hasExtension`) as an
 * alias; undefined when it is not one.
 */
export async function deliverAlias(st: State, name: string, user: string, hasExtension: boolean, w: Walk): Promise<Outcome | undefined> {
  const { s } = st.lc;
  let value: string | undefined;
  let aliasName = name;
  try {
    value = await s.aliasMaps.find(name);
    if (value === undefined && hasExtension) { aliasName = user; value = await s.aliasMaps.find(user); }
  } catch (e) {
    if (e instanceof DictError) return { status: 'deferred', dsn: '4.3.0', text: `alias database unavailable: ${e.message}` };
    throw e;
  }
  if (value === undefined) return undefined;
  // An address verification probe is not expanded (Postfix alias.c, DEL_REQ_FLAG_MTA_VRFY).
  if (mtaProbe(st)) return SENT(`aliased to ${value}`);
  return expandAlias(st, aliasName, value, w);
}

async function expandAlias(st: State, name: string, value: string, w: Walk): Promise<Outcome> {
  const { config, s } = st.lc;
  let sender = w.sender;
  // owner-NAME (Postfix alias.c): errors in NAME's expansion go to its owner.
  if (!name.startsWith('owner-')) {
    const owner = await s.aliasMaps.find(`owner-${name}`).catch(() => undefined);
    if (owner !== undefined) {
      sender = config.bool('expand_owner_alias') ? (splitTargets(owner)[0] ?? `owner-${name}@${s.myorigin}`) : `owner-${name}@${s.myorigin}`;
      if (!sender.includes('@')) sender = `${sender}@${s.myorigin}`;
    }
  }
  let targets: AliasTarget[];
  try { targets = splitTargets(value).map(parseTarget); } catch (e) {
    if (e instanceof AliasSyntaxError) return { status: 'deferred', dsn: '4.3.0', text: `alias ${name}: ${e.message}` };
    throw e;
  }
  const ownerPw = s.aliasOwner !== undefined ? getpwuid(s.aliasOwner) : undefined;
  const privs = ownerPw ? { uid: ownerPw.uid, gid: ownerPw.gid, name: ownerPw.name } : defaultPrivs(config);
  return expandTargets(st, targets, { ...w, sender, privs, context: 'alias', expFrom: name });
}

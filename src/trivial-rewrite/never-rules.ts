/**
 * never-rules - the seed's "NEVER" rules and Postfix's address-class warnings, checked once over
 * the whole configuration (for `postern check` and the master at start-up) instead of per
 * message as Postfix's resolve.c does ("do not list domain X in BOTH A and B").
 *
 *   error    a domain in BOTH mydestination and virtual_mailbox_domains
 *            (seed: "НИКОГДА не указывайте виртуальное доменное имя MAILBOX в качестве домена
 *            mydestination!"; VIRTUAL_README: "NEVER list a virtual MAILBOX domain name as a
 *            mydestination domain!")
 *   error    a domain in BOTH virtual_alias_domains and virtual_mailbox_domains
 *            (seed/VIRTUAL_README: "NEVER list a virtual MAILBOX domain name as a virtual ALIAS
 *            domain!")
 *   error    a catch-all `@domain` in virtual_alias_maps for a virtual mailbox domain
 *            (seed/VIRTUAL_README: "NEVER put a virtual MAILBOX wild-card in the virtual ALIAS
 *            file!!"): every mailbox of the domain would be rewritten to the catch-all target.
 *   warning  a domain in BOTH mydestination and virtual_alias_domains, BOTH
 *            virtual_alias_domains and relay_domains, BOTH virtual_mailbox_domains and
 *            relay_domains (Postfix's helpful_warnings: the class then depends on Postfix's
 *            internal order).
 *
 * Domains are found from the literal entries of the four domain lists (plus $myhostname); each is
 * then matched against every list, tables included. Two lists that are both tables and share a
 * domain only in their tables are not found here (Postfix still warns per message at run time).
 */
import { readFileSync } from 'node:fs';
import { DictError } from '../util/dict.ts';
import { isTablePattern, splitList } from './domain-list.ts';
import type { ResolveContext } from './resolve-context.ts';

export interface CheckProblem {
  severity: 'error' | 'warning';
  /** The file to change and the line (0 when unknown). */
  file: string;
  line: number;
  text: string;
}

/** What the checks need of main.cf: MainConfig's file, lineOf() and get(). */
export interface MainCfInfo {
  file: string;
  lineOf(name: string): number;
  get(name: string): string;
}

/** The line of `key` in the source file of a texthash:/hash:/btree:/lmdb: table, else 0. */
export function sourceLineOf(spec: string, key: string, configDir: string): { file: string; line: number } | undefined {
  const m = /^(texthash|hash|btree|lmdb):(.+)$/.exec(spec);
  if (!m) return undefined;
  const file = m[2]!.startsWith('/') ? m[2]! : `${configDir}/${m[2]!}`;
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch { return undefined; }
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i]!.trim().split(/\s+/)[0];
    if (!lines[i]!.trimStart().startsWith('#') && first?.toLowerCase() === key.toLowerCase()) return { file, line: i + 1 };
  }
  return undefined;
}

export async function checkNeverRules(cf: MainCfInfo, ctx: ResolveContext): Promise<CheckProblem[]> {
  const problems: CheckProblem[] = [];
  const candidates = new Set<string>();
  for (const l of [ctx.mydestination, ctx.virtual_alias_domains, ctx.virtual_mailbox_domains, ctx.relay_domains]) {
    for (const d of l.literals()) if (!d.startsWith('.')) candidates.add(d);
  }
  if (ctx.myhostname) candidates.add(ctx.myhostname.toLowerCase());

  const where = (param: string) => ({ file: cf.file, line: cf.lineOf(param) });
  // Point at the parameter the advice names (`fix`) when main.cf sets it, else at the other one.
  const both = (severity: 'error' | 'warning', d: string, a: string, b: string, why: string, fix = a) => {
    const other = fix === a ? b : a;
    const at = cf.lineOf(fix) > 0 || cf.lineOf(other) === 0 ? fix : other;
    problems.push({ severity, ...where(at), text: `do not list domain ${d} in BOTH ${a} and ${b}${why}` });
  };

  // A table that cannot be read is reported by the caller's table check (postern check); here
  // it counts as "no match", so the rules that do not need it are still checked.
  const safe = async <T>(p: Promise<T>, dflt: T): Promise<T> => {
    try { return await p; } catch (e) { if (e instanceof DictError) return dflt; throw e; }
  };

  for (const d of candidates) await checkDomain(d);
  return problems;

  async function checkDomain(d: string): Promise<void> {
    const dest = await safe(ctx.mydestination.match(d), false);
    const alias = await safe(ctx.virtual_alias_domains.match(d), false);
    const mailbox = await safe(ctx.virtual_mailbox_domains.match(d), false);
    const relay = await safe(ctx.relay_domains.match(d), false);
    if (dest && mailbox) both('error', d, 'mydestination', 'virtual_mailbox_domains',
      ': mail for it would go to local(8), never to the virtual mailboxes; remove it from mydestination');
    if (alias && mailbox) both('error', d, 'virtual_alias_domains', 'virtual_mailbox_domains',
      ': every unknown address would bounce as "User unknown in virtual alias table"; remove it from virtual_alias_domains');
    if (dest && alias) both('warning', d, 'mydestination', 'virtual_alias_domains',
      ': the domain is treated as local; remove it from one of them');
    if (alias && relay) both('warning', d, 'virtual_alias_domains', 'relay_domains', '', 'relay_domains');
    if (mailbox && relay && !alias) both('warning', d, 'virtual_mailbox_domains', 'relay_domains', '', 'relay_domains');

    // A catch-all of a virtual MAILBOX domain in the virtual ALIAS file.
    if (mailbox && ctx.virtual_alias_maps) {
      const target = await safe(ctx.virtual_alias_maps.find(`@${d}`), undefined);
      if (target !== undefined) {
        let at = where('virtual_alias_maps');
        for (const item of splitList(ctx.virtual_alias_maps.spec)) {
          const src = isTablePattern(item) ? sourceLineOf(item, `@${d}`, ctx.configDir) : undefined;
          if (src) { at = src; break; }
        }
        problems.push({
          severity: 'error', ...at,
          text: `virtual_alias_maps has the catch-all "@${d}" (-> ${target}) for the virtual mailbox domain ${d}: `
            + `it would send the mail of every mailbox of ${d} to ${target}. NEVER put a virtual MAILBOX wild-card `
            + `in the virtual ALIAS file: move it to virtual_mailbox_maps (@${d} ${d}/catchall/)`,
        });
      }
    }
  }
}

/**
 * domain-list - Postfix's match lists of domains (util/match_list.c with match_string() and
 * match_hostname() from util/match_ops.c), as used for mydestination, virtual_alias_domains,
 * virtual_mailbox_domains (string lists) and relay_domains (a host-name list).
 *
 * A list is patterns separated by commas and/or white space, tried in order; the first that
 * matches decides:
 *   - `domain`           case-insensitive equality;
 *   - `.domain`          (host-name lists only) any name below domain;
 *   - `domain`           in a host-name list whose parameter is in
 *                        parent_domain_matches_subdomains: the domain and any name below it;
 *   - `type:table`       a lookup of the name (lower case); in host-name lists also of each
 *                        parent, `.example.com` then `.com` (or `example.com`, `com` in parent
 *                        style); the value does not matter;
 *   - `/file/name`       the patterns written in that file (white space separated, # comments);
 *   - `!pattern`         a match means "not in the list" and ends the search.
 * A pattern is a table when it has a ':' and does not start with '[' (MATCH_DICTIONARY()).
 * A table lookup error is thrown (the resolver turns it into RESOLVE_FLAG_FAIL: defer, not
 * "not found").
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from '../global/config-error.ts';

/**
 * What the resolver needs of a lookup table: Postfix maps_find() (src/global/maps.ts, Maps).
 * `fixedOnly` skips regexp/pcre tables for partial keys (Postfix DICT_FLAG_FIXED).
 */
export interface KeyTable {
  find(key: string, opts?: { fixedOnly?: boolean }): Promise<string | undefined>;
}

/** Opens one `type:name` table; the paramName goes into error messages. */
export type TableOpen = (spec: string, paramName: string) => Promise<KeyTable>;

interface Pattern {
  negate: boolean;
  text: string;            // lower case for literals
  table?: KeyTable;
}

export type MatchStyle = 'string' | 'hostname';

/** A pattern is a lookup table when it has ':' and does not start with '[' (match_ops.c). */
export function isTablePattern(p: string): boolean {
  return !p.startsWith('[') && p.includes(':');
}

/** Split a Postfix list on commas and white space, keeping `{ ... }` groups (inline: tables). */
export function splitList(value: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of value) {
    if (ch === '{') depth++;
    if (ch === '}' && depth > 0) depth--;
    if (depth === 0 && (ch === ',' || ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r')) {
      if (cur !== '') out.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  if (cur !== '') out.push(cur);
  return out;
}

export class DomainList {
  readonly paramName: string;
  readonly style: MatchStyle;
  /** hostname style: `example.com` also matches `sub.example.com`. */
  readonly parentMatch: boolean;
  private readonly patterns: Pattern[];

  private constructor(paramName: string, style: MatchStyle, parentMatch: boolean, patterns: Pattern[]) {
    this.paramName = paramName;
    this.style = style;
    this.parentMatch = parentMatch;
    this.patterns = patterns;
  }

  /**
   * Build the list from the parameter's (expanded) value. `/file/name` patterns are read now
   * (a missing file is a ConfigError naming the parameter); tables are opened with `open`.
   */
  static async create(paramName: string, value: string, style: MatchStyle, parentMatch: boolean,
                      open: TableOpen): Promise<DomainList> {
    const patterns: Pattern[] = [];
    const add = async (raw: string, from: string | undefined): Promise<void> => {
      let negate = false;
      let text = raw;
      while (text.startsWith('!')) { negate = !negate; text = text.slice(1); }
      if (text === '') return;
      if (isTablePattern(text)) {
        patterns.push({ negate, text, table: await open(text, paramName) });
      } else if (text.startsWith('/') && from === undefined) {
        let body: string;
        try {
          body = readFileSync(text, 'utf8');
        } catch (e) {
          throw new ConfigError(text, 0, `cannot read the patterns of ${paramName}: ${(e as Error).message}`);
        }
        const lines = body.split('\n');
        for (let n = 0; n < lines.length; n++) {
          const line = lines[n]!.replace(/#.*/, '');
          if (line.includes('\0')) throw new ConfigError(text, n + 1, `NUL byte in ${paramName} pattern file`);
          for (const item of splitList(line)) {
            if (negate) throw new ConfigError(text, n + 1, `"!${text}" is not allowed: negate the patterns inside the file`);
            await add(item, text);
          }
        }
      } else {
        patterns.push({ negate, text: text.toLowerCase() });
      }
    };
    for (const item of splitList(value)) await add(item, undefined);
    return new DomainList(paramName, style, parentMatch, patterns);
  }

  /** True when the list has no patterns at all (Postfix: the feature is off). */
  get isEmpty(): boolean {
    return this.patterns.length === 0;
  }

  /** The literal (non-table) domains of the list, for `postern check`. */
  literals(): string[] {
    return this.patterns.filter((p) => !p.table && !p.negate).map((p) => p.text);
  }

  /** match_list_match(): does the name belong to the list? Throws on a table lookup error. */
  async match(name: string): Promise<boolean> {
    const lc = name.toLowerCase();
    for (const p of this.patterns) {
      if (await this.matchOne(p, lc)) return !p.negate;
    }
    return false;
  }

  private async matchOne(p: Pattern, name: string): Promise<boolean> {
    if (p.table) {
      if (this.style === 'string') return (await p.table.find(name)) !== undefined;
      // match_hostname(): the name, then each parent: ".example.com", ".com" (or without dots).
      // Parent domains are partial keys: pattern tables see only the full name.
      let entry = name;
      for (;;) {
        if ((await p.table.find(entry, { fixedOnly: entry !== name })) !== undefined) return true;
        const next = entry.indexOf('.', 1);
        if (next < 0) return false;
        entry = this.parentMatch ? entry.slice(next + 1) : entry.slice(next);
        if (entry === '' || entry === '.') return false;
      }
    }
    if (name === p.text) return true;
    if (this.style === 'string') return false;
    const rest = name.length - p.text.length;
    if (rest <= 0 || !name.endsWith(p.text)) return false;
    if (this.parentMatch) return name[rest - 1] === '.';
    return p.text.startsWith('.');
  }
}

/**
 * namadr-list - Postfix namadr_list (global/namadr_list.c on util/match_list.c, with
 * match_hostname() and match_hostaddr()): a client host name/address list such as mynetworks or
 * smtpd_client_event_limit_exceptions. Patterns are separated by commas or white space and
 * tried in order; the first match decides:
 *
 *   net/len, bare or [bracketed] addresses    CIDR blocks (util/cidr-match.ts)
 *   .domain                                   its subdomains; `domain` matches itself, and its
 *                                             subdomains when the parameter is listed in
 *                                             parent_domain_matches_subdomains
 *   type:table                                the client name and its parents, then the
 *                                             address, must be a key
 *   /file/name                                more patterns, read from the file (a
 *                                             /file/name inside it is a name pattern)
 *   !pattern                                  a match means "not in the list"
 *
 * A bad net/mask pattern, an unreadable pattern file or a table that cannot be opened is a
 * ConfigError naming the parameter (Postfix: fatal), unless the caller passes `warn`: then it
 * is reported there and the pattern is skipped (qmqpd_authorized_clients, which qmqpd has always
 * read that way).
 */
import { readFileSync } from 'node:fs';
import { addrBytes, cidrMatch, type CidrNet } from '../util/cidr-match.ts';
import { ConfigError } from './config-error.ts';
import { splitList } from './mail-conf.ts';
import type { Maps } from './maps.ts';

type Pattern =
  | { negate: boolean; kind: 'net'; net: CidrNet }
  | { negate: boolean; kind: 'name'; text: string }
  | { negate: boolean; kind: 'table'; maps: Maps };

function parseNet(text: string): CidrNet | undefined {
  const slash = text.indexOf('/');
  let a = slash < 0 ? text : text.slice(0, slash);
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const bytes = addrBytes(a);
  if (!bytes) return undefined;
  const max = bytes.length * 8;
  const bits = slash < 0 ? max : Number(text.slice(slash + 1));
  if (!Number.isInteger(bits) || bits < 0 || bits > max || !/^\d*$/.test(slash < 0 ? '' : text.slice(slash + 1))) return undefined;
  return { bytes, bits };
}

/** Postfix namadr_list: client name/address match lists (mynetworks, qmqpd_authorized_clients, ...). */
export class NamadrList {
  readonly paramName: string;
  private readonly patterns: Pattern[];
  private readonly parentStyle: boolean;

  private constructor(paramName: string, patterns: Pattern[], parentStyle: boolean) {
    this.paramName = paramName;
    this.patterns = patterns;
    this.parentStyle = parentStyle;
  }

  /**
   * Parse the (expanded) parameter value. A bad network pattern is a ConfigError naming the
   * parameter (Postfix: "fatal: bad net/mask pattern"), or with `warn`, a warning and the
   * pattern skipped; tables are opened with `open`.
   */
  static async create(paramName: string, value: string, parentStyle: boolean,
                      open: (spec: string) => Promise<Maps>, file = 'main.cf',
                      warn?: (message: string) => void): Promise<NamadrList> {
    const patterns: Pattern[] = [];
    const fail = (e: Error): void => { if (!warn) throw e; warn(e.message); };
    const add = async (raw: string, from: string | undefined, line: number): Promise<void> => {
      let negate = false;
      let text = raw;
      while (text.startsWith('!')) { negate = !negate; text = text.slice(1); }
      if (text === '') return;
      const looksNet = text.startsWith('[') || /^[\d.]+(\/.*)?$/.test(text) || /^[0-9a-fA-F]*:[0-9a-fA-F:.]*(\/.*)?$/.test(text);
      if (looksNet) {
        const net = parseNet(text);
        if (!net) return fail(new ConfigError(from ?? file, line, `${paramName}: bad net/mask pattern: "${text}"`));
        patterns.push({ negate, kind: 'net', net });
      } else if (text.includes(':')) {
        let maps: Maps;
        try { maps = await open(text); } catch (e) {
          if (!warn) throw e;
          warn(`${paramName}: ${text}: ${(e as Error).message}`);
          return;
        }
        patterns.push({ negate, kind: 'table', maps });
      } else if (text.startsWith('/') && from === undefined) {
        let body: string;
        try { body = readFileSync(text, 'utf8'); } catch (e) {
          return fail(new ConfigError(text, 0, `cannot read the patterns of ${paramName}: ${(e as Error).message}`));
        }
        const lines = body.split('\n');
        for (let n = 0; n < lines.length; n++) {
          if (lines[n]!.includes('\0')) { fail(new ConfigError(text, n + 1, `NUL byte in ${paramName} pattern file`)); continue; }
          for (const item of splitList(lines[n]!.replace(/#.*/, ''))) await add(negate ? `!${item}` : item, text, n + 1);
        }
      } else {
        patterns.push({ negate, kind: 'name', text: text.toLowerCase() });
      }
    };
    for (const item of splitList(value)) await add(item, undefined, 0);
    return new NamadrList(paramName, patterns, parentStyle);
  }

  get isEmpty(): boolean { return this.patterns.length === 0; }

  /** Close the tables the list opened. */
  async close(): Promise<void> {
    for (const p of this.patterns) if (p.kind === 'table') await p.maps.close().catch(() => {});
  }

  /** namadr_list_match(name, addr). Throws a table's DictError. */
  async match(name: string, addr: string): Promise<boolean> {
    const bytes = addrBytes(addr);
    const lc = name.toLowerCase();
    for (const p of this.patterns) {
      if (await this.matchOne(p, lc, addr, bytes)) return !p.negate;
    }
    return false;
  }

  private async matchOne(p: Pattern, name: string, addr: string, bytes: Uint8Array | undefined): Promise<boolean> {
    switch (p.kind) {
      case 'net': return bytes !== undefined && cidrMatch(bytes, p.net);
      case 'name': {
        if (name === p.text) return true;
        const rest = name.length - p.text.length;
        if (rest <= 0 || !name.endsWith(p.text)) return false;
        return this.parentStyle ? name[rest - 1] === '.' : p.text.startsWith('.');
      }
      case 'table': {
        let entry = name;
        while (entry !== '' && entry !== 'unknown') {
          if ((await p.maps.find(entry, { fixedOnly: entry !== name })) !== undefined) return true;
          const next = entry.indexOf('.', 1);
          if (next < 0) break;
          entry = this.parentStyle ? entry.slice(next + 1) : entry.slice(next);
        }
        return (await p.maps.find(addr)) !== undefined;
      }
    }
  }
}

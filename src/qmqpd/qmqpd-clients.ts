/**
 * qmqpd-clients - `qmqpd_authorized_clients`, a Postfix host name/address list
 * (util/match_list.c with namadr_list semantics): patterns separated by commas or white space,
 * tried in order, the first match decides:
 *
 *   127.0.0.1   [::1]   192.168.0.0/16   [2001:db8::]/32      an address or a network
 *   example.com   .example.com                                a client host name (and its
 *                                                             subdomains: parent_domain_matches_subdomains
 *                                                             lists qmqpd_authorized_clients)
 *   type:table                                                a lookup by host name, then address
 *   /file/name                                                more patterns, read from the file
 *   !pattern                                                  a match means "not authorized"
 *
 * The default is empty: no client may use the service (qmqpd.c: "There is no default
 * authorization"). Postern never queries DNS, so the client host name is "localhost" for
 * loopback clients and "unknown" otherwise: name patterns match only `localhost`.
 */
import { readFileSync } from 'node:fs';
import { addrBytes, cidrMatch, maskAddr } from '../util/cidr-match.ts';
import { dictOpen } from '../util/dict-registry.ts';
import type { Dict } from '../util/dict.ts';
import { splitList } from '../global/mail-conf.ts';

type Rule =
  | { kind: 'net'; bytes: Uint8Array; bits: number; neg: boolean }
  | { kind: 'name'; name: string; neg: boolean }
  | { kind: 'table'; dict: Dict; neg: boolean };

export class ClientList {
  private readonly rules: Rule[];
  readonly warnings: string[];
  private constructor(rules: Rule[], warnings: string[]) { this.rules = rules; this.warnings = warnings; }

  /** Parse the list; bad patterns are skipped with a warning naming the parameter. */
  static async open(value: string, param = 'qmqpd_authorized_clients'): Promise<ClientList> {
    const rules: Rule[] = [];
    const warnings: string[] = [];
    const add = async (p: string, depth: number): Promise<void> => {
      let neg = false;
      while (p.startsWith('!')) { neg = !neg; p = p.slice(1); }
      if (!p) return;
      if (p.startsWith('/')) {
        if (depth > 3) { warnings.push(`${param}: ${p}: too many nested files`); return; }
        let text: string;
        try { text = readFileSync(p, 'utf8'); } catch (e) { warnings.push(`${param}: cannot read ${p}: ${(e as Error).message}`); return; }
        for (const line of text.split('\n')) {
          const l = line.replace(/#.*/, '').trim();
          for (const q of splitList(l)) await add(neg ? `!${q}` : q, depth + 1);
        }
        return;
      }
      if (/^[a-z0-9_]+:/i.test(p) && !p.startsWith('[')) {
        const colonIsV6 = /^[0-9a-f:]+(\/\d+)?$/i.test(p) && p.split(':').length > 2;
        if (!colonIsV6) {
          try { rules.push({ kind: 'table', dict: await dictOpen(p), neg }); } catch (e) { warnings.push(`${param}: ${p}: ${(e as Error).message}`); }
          return;
        }
      }
      const m = /^\[?([^\]/]+)\]?(?:\/(\d+))?$/.exec(p);
      const bytes = m ? addrBytes(m[1]!) : undefined;
      if (m && bytes) {
        const max = bytes.length * 8;
        const bits = m[2] === undefined ? max : Number(m[2]);
        if (bits > max) { warnings.push(`${param}: bad network mask length in "${p}": skipped`); return; }
        rules.push({ kind: 'net', bytes: maskAddr(bytes, bits), bits, neg });
        return;
      }
      if (/^\.?[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?$/i.test(p)) { rules.push({ kind: 'name', name: p.toLowerCase().replace(/\.$/, ''), neg }); return; }
      warnings.push(`${param}: bad address pattern: "${p}": skipped`);
    };
    for (const p of splitList(value)) await add(p, 0);
    return new ClientList(rules, warnings);
  }

  /** Is the client (name, address) in the list? Table lookup errors are thrown (the caller defers). */
  async match(name: string, addr: string): Promise<boolean> {
    const a = addrBytes(addr.replace(/^::ffff:(?=\d+\.)/i, ''));
    const lname = name.toLowerCase();
    for (const r of this.rules) {
      let hit = false;
      if (r.kind === 'net') hit = a !== undefined && cidrMatch(a, r);
      else if (r.kind === 'name') {
        hit = r.name.startsWith('.') ? lname.endsWith(r.name) : lname === r.name || lname.endsWith('.' + r.name);
      } else {
        hit = (name !== 'unknown' && (await r.dict.lookup(lname)) !== undefined) || (await r.dict.lookup(addr)) !== undefined;
      }
      if (hit) return !r.neg;
    }
    return false;
  }

  async close(): Promise<void> {
    for (const r of this.rules) if (r.kind === 'table') await r.dict.close().catch(() => {});
  }
}

/**
 * dict-cidr - the `cidr:/path` table (cidr_table(5), Postfix util/dict_cidr.c): the key is an
 * IPv4 or IPv6 address, matched against networks in file order; the first match wins.
 *
 *   192.168.0.0/16     result       a network (the host bits must be zero)
 *   10.1.2.3           result       one address (same as /32 or /128)
 *   2001:db8::/32      result       IPv6, also written [2001:db8::]/32
 *   !10.0.0.0/8        result       every address NOT in the network (same family only)
 *   if 10.0.0.0/8                   rules up to `endif` only for addresses in the network
 *   endif
 *
 * Bad rules are skipped with Postfix's warnings (`cidr map FILE, line N: ...: skipping this
 * rule`). A key that is not an IP address is simply not found. An IPv4 network never matches an
 * IPv6 key, not even `::ffff:a.b.c.d` (as Postfix).
 */
import type { Dict } from './dict.ts';
import { addrBytes, cidrMatch, maskAddr, type CidrNet } from './cidr-match.ts';
import { isSpace, logicalLines, readSourceFile, tablePath, warnFn, type DictOpenFlags } from './dict-source.ts';

interface MatchRule { op: 'match'; net: CidrNet; match: boolean; value: string }
interface IfRule { op: 'if'; net: CidrNet; match: boolean; endif: number; line: number }
type Rule = MatchRule | IfRule | { op: 'endif' };

function formatNet(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((bytes[i]! << 8) | bytes[i + 1]!).toString(16));
  return words.join(':').replace(/(^|:)0(:0)+(:|$)/, '::').replace(/:{3,}/, '::');
}

class RuleError extends Error {}

/** Parse "[!]address[/len]" (Postfix cidr_match_parse). */
function parseNet(pattern: string, desc: string): { net: CidrNet; match: boolean } {
  let match = true;
  let p = pattern;
  while (p.startsWith('!')) { match = !match; p = p.slice(1).trimStart(); }
  const slash = p.indexOf('/');
  let addr = slash < 0 ? p : p.slice(0, slash);
  const lenText = slash < 0 ? undefined : p.slice(slash + 1);
  if (addr.startsWith('[') && addr.endsWith(']')) addr = addr.slice(1, -1);
  const bytes = addrBytes(addr);
  if (!bytes) throw new RuleError(`${desc}: bad address pattern: "${pattern}": skipping this rule`);
  const max = bytes.length * 8;
  let bits = max;
  if (lenText !== undefined) {
    if (!/^\d+$/.test(lenText)) throw new RuleError(`${desc}: bad mask value in "${pattern}": skipping this rule`);
    bits = Number(lenText);
    if (bits > max) throw new RuleError(`${desc}: bad mask length in "${pattern}": skipping this rule`);
  }
  const masked = maskAddr(bytes, bits);
  if (!masked.every((v, i) => v === bytes[i])) {
    throw new RuleError(`${desc}: non-null host address bits in "${p}", perhaps you should use "${formatNet(masked)}/${bits}" instead: skipping this rule`);
  }
  return { net: { bytes: masked, bits }, match };
}

export async function openCidrDict(name: string, flags: DictOpenFlags = {}): Promise<Dict> {
  const path = tablePath(name, flags);
  const warn = warnFn(flags);
  const rules: Rule[] = [];
  const ifStack: number[] = [];
  for (const l of logicalLines(readSourceFile(path), path, warn)) {
    const desc = `cidr map ${path}, line ${l.line}`;
    const s = l.text;
    try {
      if (/^if(?![A-Za-z0-9])/i.test(s)) {
        const { net, match } = parseNet(s.slice(2).trim(), desc);
        ifStack.push(rules.length);
        rules.push({ op: 'if', net, match, endif: -1, line: l.line });
        continue;
      }
      if (/^endif(?![A-Za-z0-9])/i.test(s)) {
        if (ifStack.length === 0) throw new RuleError(`${desc}: ENDIF without IF: skipping this rule`);
        (rules[ifStack.pop()!] as IfRule).endif = rules.length;
        rules.push({ op: 'endif' });
        continue;
      }
      let k = 0;
      while (k < s.length && !isSpace(s[k])) k++;
      if (s[0] === '!') {              // "! 10.0.0.0/8": negation may be followed by blanks
        k = 1;
        while (k < s.length && (isSpace(s[k]) || s[k] === '!')) k++;
        while (k < s.length && !isSpace(s[k])) k++;
      }
      let v = k;
      while (v < s.length && isSpace(s[v])) v++;
      if (v >= s.length) throw new RuleError(`${desc}: no lookup result: skipping this rule`);
      const { net, match } = parseNet(s.slice(0, k), desc);
      rules.push({ op: 'match', net, match, value: s.slice(v) });
    } catch (err) {
      if (!(err instanceof RuleError)) throw err;
      warn(err.message);
    }
  }
  for (const i of ifStack.reverse()) warn(`cidr map ${path}, line ${(rules[i] as IfRule).line}: IF has no matching ENDIF`);

  const lookupSync = (key: string): string | undefined => {
    let k = key;
    if (k.startsWith('[') && k.endsWith(']')) return undefined;   // Postfix: a bare address only
    const addr = addrBytes(k);
    if (!addr) return undefined;
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.op === 'match') {
        const inside = cidrMatch(addr, r.net);
        // A negated rule of the other family does not match (Postfix: family checked first).
        if (addr.length === r.net.bytes.length && inside === r.match) return r.value;
      } else if (r.op === 'if') {
        const inside = addr.length === r.net.bytes.length && cidrMatch(addr, r.net) === r.match;
        if (inside) continue;
        if (r.endif < 0) return undefined;
        i = r.endif;
      }
    }
    return undefined;
  };
  return { type: 'cidr', name, lookup: async (key) => lookupSync(key), close: async () => {} };
}

/**
 * dmarc-psl - the Organizational Domain of RFC 7489 §3.2: the public suffix of a name (from the
 * Public Suffix List, https://publicsuffix.org/list/) plus one label.
 *
 * DESCRIPTION
 *   The list comes from one of two places:
 *     - `postern_public_suffix_list` empty (the default): the list that ships with Postern's
 *       installed dependencies (the `tldts` package, which mailauth uses too and which is updated
 *       with each release of it), both the ICANN and the PRIVATE sections, as OpenDMARC reads
 *       the whole file;
 *     - `postern_public_suffix_list = /path/public_suffix_list.dat`: that file, in the list's own
 *       format (one rule a line, `//` comments, `*.` wildcards, `!` exceptions; Debian's
 *       `publicsuffix` package installs it as /usr/share/publicsuffix/public_suffix_list.dat).
 *       Read when the configuration is read (reload re-reads it).
 *   The algorithm is the list's own (publicsuffix.org "Formal algorithm"): the prevailing rule
 *   is an exception rule if one matches, else the matching rule with the most labels, else `*`.
 *
 * DIAGNOSTICS
 *   A list file that cannot be read is a configuration error naming the parameter.
 */
import { readFileSync } from 'node:fs';
import { getPublicSuffix } from 'tldts';

export interface PublicSuffixList {
  /** The public suffix of a lower-case domain name ("co.uk" for "a.b.co.uk"). */
  publicSuffix(domain: string): string;
  /** Where the rules came from, for logs and `postern conf`-style reports. */
  readonly source: string;
}

/** RFC 7489 §3.2 steps 1-4: the public suffix plus one label (the domain itself when it is a suffix). */
export function orgDomain(psl: PublicSuffixList, domain: string): string {
  const d = domain.toLowerCase().replace(/\.$/, '');
  const suffix = psl.publicSuffix(d);
  if (d === suffix || !d.endsWith('.' + suffix)) return d;
  const rest = d.slice(0, d.length - suffix.length - 1);
  return `${rest.slice(rest.lastIndexOf('.') + 1)}.${suffix}`;
}

/** The list shipped with the dependencies (tldts). */
export const bundledPsl: PublicSuffixList = {
  source: 'tldts (bundled)',
  publicSuffix: (domain) => getPublicSuffix(domain, { allowPrivateDomains: true }) ?? domain.slice(domain.lastIndexOf('.') + 1),
};

/** Parse the list's file format. */
export function parsePsl(text: string, source: string): PublicSuffixList {
  const rules = new Set<string>();
  const exceptions = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim().split(/\s/)[0] ?? '';
    if (line === '' || line.startsWith('//')) continue;
    const rule = line.toLowerCase();
    if (rule.startsWith('!')) exceptions.add(rule.slice(1)); else rules.add(rule);
  }
  return {
    source,
    publicSuffix(domain: string): string {
      const labels = domain.toLowerCase().replace(/\.$/, '').split('.');
      let best = 1; // the implicit rule "*"
      for (let i = 0; i < labels.length; i++) {
        const name = labels.slice(i).join('.');
        if (exceptions.has(name)) return labels.slice(i + 1).join('.');
        const wild = i + 1 < labels.length && rules.has('*.' + labels.slice(i + 1).join('.'));
        if (rules.has(name) || wild) best = Math.max(best, labels.length - i);
      }
      return labels.slice(labels.length - best).join('.');
    },
  };
}

/** The list main.cf names (`postern_public_suffix_list`), else the bundled one. Throws with the parameter's name. */
export function loadPsl(file: string): PublicSuffixList {
  if (!file) return bundledPsl;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`postern_public_suffix_list: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parsePsl(text, file);
}

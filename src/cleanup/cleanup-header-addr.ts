/**
 * cleanup-header-addr - address rewriting in message headers (Postfix cleanup_rewrite_sender /
 * cleanup_rewrite_recip in cleanup_message.c, header_opts.c): the addresses in sender headers
 * (From, Sender, Reply-To, Errors-To, Return-Receipt-To, Disposition-Notification-To,
 * Resent-From, Resent-Sender, Resent-Reply-To) go through sender_canonical_maps, canonical_maps
 * and masquerading when header_sender is in their *_classes; those in recipient headers (To, Cc,
 * Bcc, Apparently-To, Resent-To, Resent-Cc, Resent-Bcc) through recipient_canonical_maps,
 * canonical_maps and masquerading with header_recipient.
 *
 * Unlike Postfix, which re-serialises the whole header from its token tree, only the address
 * text is replaced: display names, comments, spacing and folding stay byte for byte, and a
 * header whose addresses do not change is not touched at all.
 */

export const SENDER_HEADERS: ReadonlySet<string> = new Set(['from', 'sender', 'reply-to', 'errors-to', 'return-receipt-to',
  'disposition-notification-to', 'resent-from', 'resent-sender', 'resent-reply-to']);
export const RECIPIENT_HEADERS: ReadonlySet<string> = new Set(['to', 'cc', 'bcc', 'apparently-to', 'resent-to', 'resent-cc', 'resent-bcc']);

export interface AddressSpan { start: number; end: number; address: string }

/**
 * Find the addresses in a header value: the text in `<...>` of each list element, else the
 * element without comments; group names (`name:` ... `;`), quoted strings and comments respected.
 */
export function findAddresses(value: string): AddressSpan[] {
  const spans: AddressSpan[] = [];
  let elemStart = 0;
  let angle: number | undefined;
  let angleSpan: AddressSpan | undefined;
  let bare: { start: number; end: number }[] = [];
  let tokStart = -1;
  const endTok = (i: number) => { if (tokStart >= 0) { bare.push({ start: tokStart, end: i }); tokStart = -1; } };
  const endElem = () => {
    if (angleSpan) spans.push(angleSpan);
    else if (bare.length === 1) spans.push({ ...bare[0]!, address: value.slice(bare[0]!.start, bare[0]!.end) });
    angleSpan = undefined; bare = []; angle = undefined;
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '"') {
      endTok(i);
      const s = i;
      for (i++; i < value.length && value[i] !== '"'; i++) if (value[i] === '\\') i++;
      if (angle === undefined) bare.push({ start: s, end: i + 1 });
      continue;
    }
    if (c === '(') {
      endTok(i);
      let depth = 1;
      for (i++; i < value.length && depth > 0; i++) {
        if (value[i] === '\\') i++;
        else if (value[i] === '(') depth++;
        else if (value[i] === ')') depth--;
      }
      i--;
      continue;
    }
    if (c === '<') { endTok(i); angle = i + 1; continue; }
    if (c === '>' && angle !== undefined) {
      const a = value.slice(angle, i).trim();
      const off = value.indexOf(a, angle);
      angleSpan = { start: off, end: off + a.length, address: a };
      angle = undefined;
      continue;
    }
    if (angle !== undefined) continue;
    if (c === ',' || c === ';') { endTok(i); endElem(); elemStart = i + 1; continue; }
    if (c === ':') { endTok(i); bare = []; continue; }   // group name
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') { endTok(i); continue; }
    if (tokStart < 0) tokStart = i;
  }
  endTok(value.length);
  endElem();
  void elemStart;
  // A bare element must look like an address (no display-name words left around it).
  return spans.filter((s) => s.address !== '' && !/[\s"]/.test(s.address) || s.address.startsWith('"'));
}

/**
 * Rewrite the addresses of one header value with `map`; returns the new value, or undefined when
 * no address changed.
 */
export async function rewriteHeaderValue(value: string, map: (address: string) => Promise<string>): Promise<string | undefined> {
  const spans = findAddresses(value);
  let out = '';
  let pos = 0;
  let changed = false;
  for (const s of spans) {
    const n = await map(s.address);
    if (n === s.address) continue;
    changed = true;
    out += value.slice(pos, s.start) + n;
    pos = s.end;
  }
  if (!changed) return undefined;
  return out + value.slice(pos);
}

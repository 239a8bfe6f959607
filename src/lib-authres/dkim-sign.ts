/**
 * dkim-sign - make the DKIM-Signature header fields of one message (RFC 6376 §5; rsa-sha256 and
 * ed25519-sha256, RFC 8463), relaxed/relaxed, as the message will be sent: the queue file's
 * content with every LF as CRLF, what Postern's smtp(8) client writes (lib-smtp dotStuff).
 *
 * SUMMARY
 *   const fields = await dkimSignatures(content, [{ domain, selector, key }], { signedHeaders, overSigned });
 *   // "DKIM-Signature: v=1; a=rsa-sha256; ...\n\t..." LF line endings, to put on top of content
 *
 * DESCRIPTION
 *   The RFC work is mailauth's (lib/dkim: the relaxed body hash, the relaxed header
 *   canonicalization, the DKIM-Signature tag list and its folding); what it lacks is done here:
 *   over-signing. mailauth's signer puts into h= only the fields that are present, so a From:
 *   added later by someone else would still verify; RFC 6376 §8.15 closes that by naming the
 *   field once more than it occurs (a name in h= with no field left to match hashes nothing,
 *   §5.4.2). So this module picks the fields itself (each name of signedHeaders, every
 *   occurrence, bottom-up as §5.4.2 wants; the names of overSigned once more, present or not)
 *   and hands that list to mailauth's canonicalization, then signs with node:crypto — in the
 *   thread pool (crypto.sign with a callback): an RSA-2048 signature takes about a millisecond,
 *   which would otherwise stop every SMTP session of the process for that long.
 *
 *   A message without a From: field is not signed (§5.4: From MUST be signed). headerFromDomain()
 *   gives the domain of the (first) From: address, the key to the signing table.
 *
 * STANDARDS
 *   RFC 6376 (DKIM), RFC 8463 (Ed25519), RFC 8301 (rsa-sha256 only, keys of at least 1024 bits).
 */
import { createRequire } from 'node:module';
import { createHash, sign, type KeyObject } from 'node:crypto';

/** crypto.sign in the thread pool. */
function signAsync(algorithm: string | null, data: Buffer, key: KeyObject): Promise<Buffer> {
  return new Promise((res, rej) => sign(algorithm, data, key, (e, sig) => (e ? rej(e) : res(sig))));
}
import { parseAddressList } from '../lib-mail/mail-address.ts';

const require = createRequire(import.meta.url);

interface ParsedHeader { key: string; casedKey: string; line: Buffer }
interface SigningHeaderLines { keys: string; headers: ParsedHeader[] }
const tools = require('mailauth/lib/tools') as {
  parseHeaders(b: Buffer): { parsed: ParsedHeader[] };
  formatSignatureHeaderLine(type: 'DKIM' | 'ARC' | 'AS', values: Record<string, unknown>, folded: boolean): string;
};
const header = require('mailauth/lib/dkim/header') as {
  generateCanonicalizedHeader(type: 'DKIM', lines: SigningHeaderLines, o: Record<string, unknown>): { canonicalizedHeader: Buffer; dkimHeaderOpts: Record<string, unknown> };
};
const body = require('mailauth/lib/dkim/body') as {
  dkimBody(canon: string, algo: string, maxLength: false): { update(b: Buffer): void; digest(enc: 'base64'): string };
};

export interface DkimSigningKey {
  /** d= */
  domain: string;
  /** s= */
  selector: string;
  key: KeyObject;
  /** Where the key was read from (for messages). */
  file?: string;
}

export interface DkimSignParams {
  /** Names of the fields to sign when present (case-insensitive). */
  signedHeaders: readonly string[];
  /** Names signed once more than they occur (RFC 6376 §8.15), e.g. from. */
  overSigned: readonly string[];
  /** Signing time (t=); now by default. */
  now?: Date;
}

/** The signers' defaults: the issue's list, From over-signed. */
export const DEFAULT_SIGNED_HEADERS = [
  'from', 'to', 'cc', 'subject', 'date', 'message-id', 'reply-to', 'in-reply-to', 'references',
  'mime-version', 'content-type', 'content-transfer-encoding',
  'list-id', 'list-help', 'list-unsubscribe', 'list-unsubscribe-post', 'list-subscribe', 'list-post', 'list-owner', 'list-archive',
] as const;

/** Where the header section ends: the offset of the body (after the empty line), or the length. */
function headerEnd(msg: Buffer): number {
  if (msg.length > 0 && msg[0] === 0x0a) return 1;
  const i = msg.indexOf('\n\n');
  return i < 0 ? msg.length : i + 2;
}

/** headerEnd() of the wire form, where the empty line is CRLF CRLF. */
function wireHeaderEnd(w: Buffer): number {
  if (w.length > 1 && w[0] === 0x0d && w[1] === 0x0a) return 2;
  const i = w.indexOf('\r\n\r\n');
  return i < 0 ? w.length : i + 4;
}

/** Queue form (LF) → wire form (CRLF), as the smtp client sends it; a last line gets its CRLF. */
export function wireForm(b: Buffer): Buffer {
  let n = 0;
  for (let i = 0; i < b.length; i++) if (b[i] === 0x0a) n++;
  const endsOpen = b.length > 0 && b[b.length - 1] !== 0x0a;
  const out = Buffer.allocUnsafe(b.length + n + (endsOpen ? 2 : 0));
  let o = 0;
  let from = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] !== 0x0a) continue;
    o += b.copy(out, o, from, i);
    out[o++] = 0x0d; out[o++] = 0x0a;
    from = i + 1;
  }
  o += b.copy(out, o, from);
  if (endsOpen) { out[o++] = 0x0d; out[o++] = 0x0a; }
  return out;
}

/** The domain (lower case) of the first address of the first From: field, or undefined. */
export function headerFromDomain(content: Buffer): string | undefined {
  const head = content.subarray(0, headerEnd(content));
  const from = tools.parseHeaders(head).parsed.find((h) => h.key === 'from');
  if (!from) return undefined;
  const value = from.line.subarray(from.line.indexOf(':') + 1);
  for (const a of parseAddressList(value, false)) {
    if (a.mailbox && a.domain && !a.invalidSyntax) {
      const d = a.domain.toString('latin1').trim().toLowerCase().replace(/\.$/, '');
      return /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(d) ? d : undefined;
    }
  }
  return undefined;
}

/** The h= list and the fields it covers (RFC 6376 §5.4.2), with over-signing (§8.15). */
export function signingHeaderLines(parsed: readonly ParsedHeader[], p: DkimSignParams): SigningHeaderLines {
  const over = new Set(p.overSigned.map((n) => n.toLowerCase()));
  const names = [...new Set([...p.signedHeaders, ...p.overSigned].map((n) => n.toLowerCase()))];
  const keys: string[] = [];
  const headers: ParsedHeader[] = [];
  for (const name of names) {
    for (let i = parsed.length - 1; i >= 0; i--) {
      const h = parsed[i]!;
      if (h.key === name) { headers.push(h); keys.push(h.casedKey); }
    }
    if (over.has(name)) keys.push(canonicalName(name));
  }
  return { keys: keys.join(':'), headers };
}

function canonicalName(n: string): string {
  return n === 'message-id' ? 'Message-ID' : n === 'mime-version' ? 'MIME-Version' : n.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
}

/**
 * The DKIM-Signature fields for `content` (queue form, LF), one per key, LF line endings, to be
 * put in front of it. Throws when the message has no From: field.
 */
export async function dkimSignatures(content: Buffer, keys: readonly DkimSigningKey[], p: DkimSignParams): Promise<string> {
  if (keys.length === 0) return '';
  const wire = wireForm(content);
  const hEnd = wireHeaderEnd(wire);
  const parsed = tools.parseHeaders(wire.subarray(0, hEnd)).parsed;
  if (!parsed.some((h) => h.key === 'from')) throw new Error('no From: header to sign (RFC 6376 §5.4)');
  const hasher = body.dkimBody('relaxed', 'sha256', false);
  hasher.update(wire.subarray(hEnd));
  const bh = hasher.digest('base64');
  const lines = signingHeaderLines(parsed, p);
  const t = Math.floor((p.now ?? new Date()).getTime() / 1000);
  let out = '';
  for (const k of keys) {
    const alg = k.key.asymmetricKeyType;
    if (alg !== 'rsa' && alg !== 'ed25519') throw new Error(`a ${alg} key cannot sign DKIM`);
    const algorithm = `${alg}-sha256`;
    const { canonicalizedHeader, dkimHeaderOpts } = header.generateCanonicalizedHeader('DKIM', lines, {
      signingDomain: k.domain, selector: k.selector, algorithm, canonicalization: 'relaxed/relaxed',
      bodyHash: bh, timestamp: t, expiration: false,
    });
    // RFC 8463 §3: Ed25519 signs the SHA-256 hash of the canonicalized header; RSA signs it with SHA-256.
    dkimHeaderOpts.b = (alg === 'rsa'
      ? await signAsync('sha256', canonicalizedHeader, k.key)
      : await signAsync(null, createHash('sha256').update(canonicalizedHeader).digest(), k.key)).toString('base64');
    out += tools.formatSignatureHeaderLine('DKIM', dkimHeaderOpts, true).replace(/\r\n/g, '\n') + '\n';
  }
  return out;
}

/**
 * arc-seal - add an ARC set (RFC 8617 §4.1: ARC-Seal, ARC-Message-Signature,
 * ARC-Authentication-Results) to a message Postern forwards, signed with the forwarding domain's
 * DKIM key, so that the next receiver can see what Postern's own checks found before the
 * forward broke SPF (and, when the content changes, DKIM).
 *
 * SUMMARY
 *   const r = await arcSeal(content, key, { authservId: myhostname });
 *   // { fields: "ARC-Seal: i=1; ...\nARC-Message-Signature: ...\nARC-Authentication-Results: ...\n" }
 *   // or { skip: "why not" }
 *
 * DESCRIPTION
 *   The RFC work is mailauth's createSeal() (lib/arc): the next instance number from the chain
 *   already on the message, the ARC-Message-Signature (relaxed/relaxed), the ARC-Seal over the
 *   chain. What this module decides:
 *
 *   ARC-Authentication-Results: the results of our Authentication-Results field (the one
 *   cleanup's inbound checks made for this message, given as `authResults`, else the topmost
 *   field of the message whose authserv-id is ours); without one, `none` (RFC 8601 §2.2).
 *   cv= (RFC 8617 §4.1.3): `none` when the message has no ARC set. When it has one, the chain's
 *   state is the `arc=` result of that Authentication-Results field (pass → pass, fail → fail);
 *   with no such result Postern cannot tell, and does not seal (a wrong cv=pass would vouch for
 *   a chain nobody checked). A chain whose newest seal says cv=fail is not sealed again.
 *
 *   Content: the queue file's form (LF), sealed as the smtp client sends it (CRLF); unlike DKIM
 *   signing nothing is converted first — a forward must not change someone else's signed body.
 *
 * STANDARDS
 *   RFC 8617 (ARC), RFC 8601 (Authentication-Results), RFC 6376 (canonicalization).
 */
import { createRequire } from 'node:module';
import type { DkimSigningKey } from './dkim-sign.ts';
import { wireForm } from './dkim-sign.ts';

const require = createRequire(import.meta.url);

interface ParsedHeader { key: string; casedKey: string; line: Buffer }
const tools = require('mailauth/lib/tools') as { parseHeaders(b: Buffer): { parsed: ParsedHeader[] } };
const arcLib = require('mailauth/lib/arc') as {
  createSeal(input: Buffer, data: { seal: Record<string, unknown> }): Promise<{ headers: string[]; errors?: { err: Error }[] }>;
};

export interface ArcSealOptions {
  /** authserv-id of our Authentication-Results: myhostname. */
  authservId: string;
  /**
   * Our Authentication-Results field for this message when it is not (yet) in the content
   * (cleanup adds it on top at delivery): used before any field of the message.
   */
  authResults?: string;
  now?: Date;
}

function headerValue(h: ParsedHeader): string {
  const s = h.line.toString('latin1');
  return s.slice(s.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
}

/** The results of our own topmost Authentication-Results field, or undefined. */
export function ourAuthResults(parsed: readonly ParsedHeader[], authservId: string): string | undefined {
  for (const h of parsed) {
    if (h.key !== 'authentication-results') continue;
    const v = headerValue(h);
    const id = /^([^;\s(]+)/.exec(v)?.[1];
    if (id && id.toLowerCase() === authservId.toLowerCase()) return v;
  }
  return undefined;
}

export async function arcSeal(content: Buffer, key: DkimSigningKey, o: ArcSealOptions): Promise<{ fields: string } | { skip: string }> {
  const wire = wireForm(content);
  const end = wire.indexOf('\r\n\r\n');
  const parsed = tools.parseHeaders(wire.subarray(0, end < 0 ? wire.length : end + 2)).parsed;
  const given = o.authResults ? tools.parseHeaders(Buffer.from(o.authResults.replace(/\r?\n/g, '\r\n'), 'latin1')).parsed : [];
  const ours = ourAuthResults(given, o.authservId) ?? ourAuthResults(parsed, o.authservId);
  const chain = parsed.some((h) => h.key === 'arc-seal');
  let cv: 'none' | 'pass' | 'fail' = 'none';
  if (chain) {
    const arc = ours ? /(?:^|;)\s*arc=(\w+)/i.exec(ours)?.[1]?.toLowerCase() : undefined;
    if (arc !== 'pass' && arc !== 'fail') return { skip: `the message has an ARC chain and no Authentication-Results of ${o.authservId} says whether it is valid (arc=pass or arc=fail)` };
    cv = arc;
  }
  const r = await arcLib.createSeal(wire, {
    seal: {
      signingDomain: key.domain, selector: key.selector,
      privateKey: key.key.export({ type: 'pkcs8', format: 'pem' }),
      authResults: ours ?? `${o.authservId}; none`,
      cv,
      ...(o.now ? { signTime: o.now } : {}),
    },
  });
  if (!r.headers.length) return { skip: r.errors?.map((e) => e.err.message).join('; ') || 'no ARC set could be made' };
  return { fields: r.headers.map((h) => h.replace(/\r\n/g, '\n').replace(/\n?$/, '\n')).join('') };
}

/**
 * db-oauth2-jwt - local validation of JWT bearer tokens (RFC 7519, signatures RFC 7515/7518) for
 * the oauth2 passdb (db-oauth2.ts), as Dovecot 2.3's `introspection_mode = local` with
 * `local_validation_key_dict = fs:posix:prefix=/etc/dovecot/keys/` does it (lib-oauth2
 * oauth2-jwt.c): no request to the identity provider.
 *
 *   key file   PREFIX/AZP/ALG/KID       AZP = the token's `azp` claim, else "default";
 *                                       KID = the header's `kid`, else "default"
 *              HS256/384/512: the shared secret, base64;  RS*, PS*, ES*: a PEM public key
 *   claims     `exp` required and in the future, `nbf` and `iat` not in the future, `sub`
 *              required; then username_attribute, active_attribute, scope as for
 *              introspection answers (db-oauth2.ts judge()).
 * A token that is not a JWT falls back to tokeninfo/introspection when an URL is configured,
 * else it is refused. Any validation failure is a plain authentication failure. Only the
 * fs:posix dict is supported for the keys. Path parts from the token (azp, kid) have '%', '/'
 * and '.' %-escaped, so a token cannot name a file outside PREFIX.
 */
import { createHmac, createPublicKey, timingSafeEqual, verify, constants } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export type JwtResult = { kind: 'not-jwt' } | { kind: 'invalid'; reason: string } | { kind: 'valid'; fields: Record<string, string> };

const HASH: Record<string, string> = { '256': 'sha256', '384': 'sha384', '512': 'sha512' };

/** `fs:posix:prefix=DIR` → DIR; undefined for any other dict. */
export function keyDirOf(dict: string): string | undefined {
  const m = /^fs:posix:prefix=(.+)$/.exec(dict.trim());
  return m ? m[1]! : undefined;
}

function escapePart(s: string): string {
  return s.replace(/[%/.]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function b64urlJson(s: string): Record<string, unknown> | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(s)) return undefined;
  try {
    const v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8')) as unknown;
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as Record<string, unknown> : undefined;
  } catch { return undefined; }
}

export async function validateJwt(keyDir: string, token: string, now = Date.now()): Promise<JwtResult> {
  const parts = token.split('.');
  if (parts.length !== 3) return { kind: 'not-jwt' };
  const header = b64urlJson(parts[0]!);
  if (!header || typeof header.alg !== 'string') return { kind: 'not-jwt' };
  const alg = header.alg;
  const m = /^(HS|RS|PS|ES)(256|384|512)$/.exec(alg);
  if (!m) return { kind: 'invalid', reason: `unsupported JWT algorithm '${alg.slice(0, 20)}'` };
  const payload = b64urlJson(parts[1]!);
  if (!payload) return { kind: 'invalid', reason: 'JWT payload is not a JSON object' };
  if (!/^[A-Za-z0-9_-]*$/.test(parts[2]!)) return { kind: 'invalid', reason: 'JWT signature is not base64url' };
  const kid = typeof header.kid === 'string' && header.kid !== '' ? header.kid : 'default';
  const azp = typeof payload.azp === 'string' && payload.azp !== '' ? payload.azp : 'default';
  let keyText: string;
  try {
    keyText = await readFile(join(keyDir, escapePart(azp), alg, escapePart(kid)), 'utf8');
  } catch {
    return { kind: 'invalid', reason: `no key for azp=${azp.slice(0, 64)} alg=${alg} kid=${kid.slice(0, 64)}` };
  }
  const data = Buffer.from(`${parts[0]}.${parts[1]}`);
  const sig = Buffer.from(parts[2]!, 'base64url');
  const hash = HASH[m[2]!]!;
  let ok: boolean;
  try {
    if (m[1] === 'HS') {
      const mac = createHmac(hash, Buffer.from(keyText.trim(), 'base64')).update(data).digest();
      ok = mac.length === sig.length && timingSafeEqual(mac, sig);
    } else {
      const key = createPublicKey(keyText);
      ok = verify(hash, data, m[1] === 'PS' ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
        : m[1] === 'ES' ? { key, dsaEncoding: 'ieee-p1363' } : key, sig);
    }
  } catch (e) {
    return { kind: 'invalid', reason: `key for ${alg}/${kid.slice(0, 64)}: ${(e as Error).message}` };
  }
  if (!ok) return { kind: 'invalid', reason: 'JWT signature does not verify' };
  const secs = now / 1000;
  const num = (v: unknown) => typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  const exp = num(payload.exp);
  if (exp === undefined) return { kind: 'invalid', reason: "missing 'exp' claim" };
  if (exp <= secs) return { kind: 'invalid', reason: 'token has expired' };
  const nbf = num(payload.nbf);
  if (payload.nbf !== undefined && (nbf === undefined || nbf > secs)) return { kind: 'invalid', reason: 'token is not valid yet (nbf)' };
  const iat = num(payload.iat);
  if (payload.iat !== undefined && (iat === undefined || iat > secs + 1)) return { kind: 'invalid', reason: 'token is issued in the future (iat)' };
  if (typeof payload.sub !== 'string' || payload.sub === '') return { kind: 'invalid', reason: "missing 'sub' claim" };
  const fields: Record<string, string> = {};
  for (const [k, v] of Object.entries(payload)) {
    if (typeof v === 'string') fields[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') fields[k] = String(v);
  }
  return { kind: 'valid', fields };
}

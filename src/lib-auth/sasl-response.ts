/**
 * sasl-response - what a SASL client sends, as the servers that take AUTH read it (pop3d,
 * managesieve, smtpd; Dovecot's auth/mech-plain.c and login-common's response decoding):
 *
 *   decodeSaslResponse(text, max)  the base64 of one response (RFC 4648 §4: whole quanta, the
 *                                  standard alphabet, padding only at the end), at most `max`
 *                                  characters; undefined for anything else ("Invalid base64 data")
 *   parsePlain(raw)                SASL PLAIN (RFC 4616 §2): "authzid NUL authcid NUL passwd" in
 *                                  UTF-8 → { user, pass }; a message that is not three fields, or
 *                                  an authzid other than the authcid (no master users), is a failed
 *                                  login with the reason to log, never a lookup of another user
 */

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function decodeSaslResponse(s: string, max: number): Buffer | undefined {
  const t = s.trim();
  if (t.length > max || t.length % 4 !== 0 || !B64.test(t)) return undefined;
  return Buffer.from(t, 'base64');
}

export function parsePlain(raw: Buffer): { user: string; pass: string } | { error: string } {
  const f = raw.toString('utf8').split('\0');
  if (f.length !== 3) return { error: 'invalid PLAIN message' };
  const [authzid, authcid, pass] = f as [string, string, string];
  if (authzid && authzid !== authcid) return { error: 'authorization identity differs' };
  return { user: authcid, pass };
}

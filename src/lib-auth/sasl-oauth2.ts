/**
 * sasl-oauth2 - the client messages of the SASL mechanisms that carry an OAuth 2.0 bearer token,
 * shared by imapd, pop3d, managesieve and smtpd (Dovecot auth/mech-oauth2.c):
 *
 *   OAUTHBEARER (RFC 7628 §3.1): gs2-header "n,a=USER," then ^A-separated key=value pairs,
 *     one of them "auth=Bearer TOKEN", ended by ^A^A. The authzid (a=) names the user; "=2C"
 *     and "=3D" are unescaped (RFC 5801); channel binding ("p=") and non-standard ("F,") are
 *     refused.
 *   XOAUTH2 (Google's format): "user=USER^Aauth=Bearer TOKEN^A^A", nothing escaped.
 *
 * When the passdb refuses the token (invalid, another user's, not active, out of scope) the
 * server does not answer at once: it sends an error challenge (RFC 7628 §3.2.2), waits for the
 * client's dummy response (%x01) and only then fails. A message that cannot be parsed and a
 * temporary failure (token endpoint down) are answered at once. All as Dovecot 2.3.19 does
 * (test/interop/oauth2-vs-dovecot.test.ts). The challenges are Dovecot's:
 *   OAUTHBEARER  {"status":"invalid_token"}
 *   XOAUTH2      {"status":"401","schemes":"bearer","scope":"mail"}
 * The token itself is checked by the passdb (db-oauth2.ts) through UserDirectory.verifyPlain
 * with `mechanism` set, so `passdb { mechanisms = oauthbearer xoauth2 }` selects it.
 */
export const OAUTH2_MECHANISMS = ['OAUTHBEARER', 'XOAUTH2'] as const;

export function isOAuth2Mechanism(mech: string): boolean {
  return mech === 'OAUTHBEARER' || mech === 'XOAUTH2';
}

/** The mechanisms a daemon offers: auth_mechanisms (lower case, Dovecot spelling) upper-cased, known ones only. */
export function offeredMechanisms(authMechanisms: readonly string[]): string[] {
  const known = new Set(['PLAIN', 'LOGIN', ...OAUTH2_MECHANISMS]);
  return authMechanisms.map((m) => m.toUpperCase()).filter((m) => known.has(m));
}

export type OAuth2Message = { user: string; token: string } | { error: string };

/** "Bearer TOKEN": the token as given; its syntax (RFC 6750 b64token) is the passdb's to judge. */
function bearer(v: string): string | undefined {
  if (v.slice(0, 7).toLowerCase() !== 'bearer ') return undefined;
  return v.slice(7);
}

/** RFC 5801 saslname: "=2C" → ",", "=3D" → "="; a bare "," or other "=" escape is invalid. */
function unescapeSaslName(s: string): string | undefined {
  if (s.includes(',')) return undefined;
  let bad = false;
  const out = s.replace(/=(..)?/g, (_m, h: string | undefined) => {
    if (h === '2C') return ',';
    if (h === '3D') return '=';
    bad = true;
    return '';
  });
  return bad ? undefined : out;
}

/** Parse a decoded client response of `mech`. */
export function parseOAuth2Message(mech: string, raw: Buffer): OAuth2Message {
  const text = raw.toString('utf8');
  if (text.includes('\0')) return { error: 'NUL in response' };
  const fields = text.split('\x01');
  let user: string | undefined, token: string | undefined;
  if (mech === 'XOAUTH2') {
    for (const f of fields) {
      if (f.startsWith('user=')) user = f.slice(5);
      else if (f.startsWith('auth=')) {
        token = bearer(f.slice(5));
        if (token === undefined) return { error: 'Invalid continued data' };
      }
    }
    if (user === undefined || token === undefined) return { error: 'Username or token missing' };
    return { user, token };
  }
  const gs2 = fields[0] ?? '';
  if (gs2 === '') return { error: 'Invalid continued data' };
  for (const part of gs2.split(',')) {
    if (part === '') continue;
    switch (part[0]) {
      case 'f': case 'F': return { error: 'Client requested non-standard mechanism' };
      case 'p': return { error: 'Client requested and used channel-binding' };
      case 'n': case 'y': continue;
      case 'a': {
        const u = part[1] === '=' ? unescapeSaslName(part.slice(2)) : undefined;
        if (u === undefined) return { error: 'Invalid username escaping' };
        user = u;
        break;
      }
      default: return { error: 'Invalid gs2-header in request' };
    }
  }
  for (const f of fields) {
    if (f.startsWith('auth=')) {
      token = bearer(f.slice(5));
      if (token === undefined) return { error: 'Invalid continued data' };
    }
  }
  if (user === undefined || token === undefined) return { error: 'Missing username or token' };
  return { user, token };
}

/** The RFC 7628 §3.2.2 error challenge, base64 as it goes on the wire. */
export function oauth2ErrorChallenge(mech: string): string {
  const json = mech === 'XOAUTH2' ? '{"status":"401","schemes":"bearer","scope":"mail"}' : '{"status":"invalid_token"}';
  return Buffer.from(json).toString('base64');
}

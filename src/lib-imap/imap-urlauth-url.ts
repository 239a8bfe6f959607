/**
 * imap-urlauth-url - the IMAP URLs of URLAUTH (RFC 4467 §2-3 on RFC 5092's imap URL): parsed,
 * split into the "rump" the token is computed over, and checked. Shared by imapd (GENURLAUTH,
 * URLFETCH) and by the submission server's BURL client (RFC 4468), which only needs parse().
 *
 *   imap://USER@HOST[:PORT]/MAILBOX[;UIDVALIDITY=N]/;UID=N[/;SECTION=S][/;PARTIAL=O[.L]]
 *     [;EXPIRE=DATETIME];URLAUTH=ACCESS[:MECH:TOKEN]
 *
 * PARTIAL (RFC 5092 §3.2, `ipartial`): O octets in, L octets long (L non-zero; without L, to
 * the end), of what the URL names.
 *
 * ACCESS (§3): `anonymous`, `authuser`, `user+NAME`, `submit+NAME` (NAME and USER %-encoded:
 * `imap://alice%40example.org@mail.example.org/...;URLAUTH=submit+alice%40example.org`). The rump is the URL up to
 * and including ";URLAUTH=ACCESS"; a full URL adds ":MECH:TOKEN" (MECH: INTERNAL, the only
 * mechanism Postern and Dovecot offer). Percent-escapes in USER, MAILBOX and SECTION are
 * decoded (RFC 3986); the mailbox is taken as the UTF-8 name.
 */

export interface UrlauthUrl {
  /** The URL as given. */
  url: string;
  /** URL up to and including ";URLAUTH=access" (what the token signs). */
  rump: string;
  user: string;
  host: string;
  port?: number;
  mailbox: string;
  uidValidity?: number;
  uid: number;
  section?: string;
  /** RFC 5092 ;PARTIAL=offset[.length]. */
  partial?: { offset: number; length?: number };
  expire?: Date;
  access: string;
  mechanism?: string;
  token?: string;
}

const ACCESS = /^(anonymous|authuser|(user|submit)\+[^:;/]+)$/i;

/** undefined when the text is not an URLAUTH-ed message URL. */
export function parseUrlauthUrl(url: string): UrlauthUrl | undefined {
  if (url.length > 8192 || /[\x00-\x20\x7f]/.test(url)) return undefined;
  const m = /^imap:\/\/([^@/]+)@([^/:]+)(?::(\d{1,5}))?\/([^;]+)(?:;UIDVALIDITY=(\d{1,10}))?\/;UID=(\d{1,10})(?:\/;SECTION=([^;/]+))?(?:\/;PARTIAL=(\d{1,10})(?:\.(\d{1,10}))?)?(?:;EXPIRE=([^;]+))?;URLAUTH=([^:;]+)(?::([A-Za-z0-9-]+):([0-9A-Za-z]+))?$/i.exec(url);
  if (!m) return undefined;
  const dec = (s: string): string | undefined => { try { return decodeURIComponent(s); } catch { return undefined; } };
  const user = dec(m[1]!), mailbox = dec(m[4]!.replace(/\/$/, '')), section = m[7] !== undefined ? dec(m[7]) : undefined;
  if (user === undefined || user.includes(';') || mailbox === undefined || (m[7] !== undefined && section === undefined)) return undefined;
  const access = m[11]!;
  if (!ACCESS.test(access)) return undefined;
  const uid = Number(m[6]);
  if (uid < 1 || uid > 0xffffffff) return undefined;
  const out: UrlauthUrl = { url, rump: m[12] !== undefined ? url.slice(0, url.length - m[12].length - m[13]!.length - 2) : url, user, host: m[2]!, mailbox, uid, access };
  if (m[3] !== undefined) out.port = Number(m[3]);
  if (m[5] !== undefined) out.uidValidity = Number(m[5]);
  if (section !== undefined) out.section = section;
  if (m[8] !== undefined) {
    const length = m[9] !== undefined ? Number(m[9]) : undefined;
    if (length === 0 || Number(m[8]) > 0xffffffff || (length ?? 0) > 0xffffffff) return undefined; // nz-number (RFC 5092 §11)
    out.partial = length === undefined ? { offset: Number(m[8]) } : { offset: Number(m[8]), length };
  }
  if (m[10] !== undefined) {
    const d = new Date(dec(m[10]) ?? '');
    if (Number.isNaN(d.getTime())) return undefined;
    out.expire = d;
  }
  if (m[12] !== undefined) { out.mechanism = m[12]; out.token = m[13]!; }
  return out;
}

/**
 * May a session authenticated as `sessionUser` fetch with this access identifier (§3)?
 * `submitUser`: Dovecot's imap_urlauth_submit_user, the identity the submission server fetches as.
 */
export function accessAllows(access: string, sessionUser: string, submitUser: string | undefined): boolean {
  const a = access.toLowerCase();
  if (a === 'anonymous' || a === 'authuser') return true;
  const plus = access.indexOf('+');
  let who: string;
  try { who = decodeURIComponent(access.slice(plus + 1)).toLowerCase(); } catch { return false; }
  const me = sessionUser.toLowerCase();
  if (a.startsWith('user+')) return who === me;
  // submit+NAME: only the submission server, on NAME's behalf (RFC 4467 §3; NAME itself gets
  // NIL, as from Dovecot); the submission server checks that NAME is its SASL login
  return submitUser !== undefined && submitUser.toLowerCase() === me && who !== '';
}

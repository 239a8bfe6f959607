/**
 * console-vacation - the "away" switch of the web console's My account page: a Sieve script
 * named `postern-vacation` in the user's script storage (lib-sieve/sieve-storage.ts, the
 * storage ManageSieve serves, Pigeonhole's layout), made the active script to turn the reply
 * on, deactivated to turn it off (the script stays, so the text is kept for next time):
 *
 *   # postern-vacation: written by the web console (docs/console.md)
 *   require ["vacation"];
 *   vacation :days 1 :addresses ["USER"] :subject "SUBJECT" "TEXT";
 *
 * RFC 5230 vacation: one reply per sender per :days, never to lists or automatic mail (the
 * interpreter's rules, lib-sieve/sieve-vacation.ts). Only one Sieve script is active at a time
 * (RFC 5804 §1.2): when the user has another active script (their own filters, uploaded with
 * a ManageSieve client), the console does not replace it and says so.
 */
import { parseSieveLocation } from '../global/sieve-location.ts';
import type { DovecotConfig } from '../global/dovecot-conf.ts';
import type { UserRecord } from '../lib-auth/user-directory.ts';
import { compileSieve } from '../lib-sieve/sieve-compile.ts';
import { SieveFileStorage } from '../lib-sieve/sieve-storage.ts';

export const VACATION_SCRIPT = 'postern-vacation';
const MARK = '# postern-vacation: written by the web console (docs/console.md)';
export const MAX_SUBJECT = 200;
export const MAX_TEXT = 8192;

export interface VacationState { on: boolean; subject: string; text: string; otherActive?: string }

/** RFC 5228 §2.4.2 quoted string. */
function quoted(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => '\\' + c)}"`;
}

function unquote(s: string): string {
  return s.replace(/\\(.)/gs, '$1');
}

export function vacationScript(user: string, subject: string, text: string): string {
  return `${MARK}\nrequire ["vacation"];\nvacation :days 1 :addresses [${quoted(user)}] :subject ${quoted(subject)} ${quoted(text)};\n`;
}

/** The user's storage; throws a message for the page when the location cannot hold scripts. */
export function storageFor(dovecot: DovecotConfig, rec: UserRecord): SieveFileStorage {
  const spec = rec.extra?.['sieve'] ?? (dovecot.get('plugin/sieve') || undefined);
  const loc = parseSieveLocation(spec, rec.user, rec.home);
  if (!loc.active) throw new Error(`plugin { sieve } names a single script file: the vacation switch needs a script directory and an active link (file:~/sieve;active=~/.dovecot.sieve)`);
  return new SieveFileStorage(loc, { uid: rec.uid, gid: rec.gid });
}

export async function vacationState(st: SieveFileStorage): Promise<VacationState> {
  const active = await st.activeName();
  let subject = 'Away';
  let text = 'I am away and will read your message when I am back.';
  if (await st.exists(VACATION_SCRIPT)) {
    const s = (await st.get(VACATION_SCRIPT)).toString('utf8');
    const m = /:subject "((?:[^"\\]|\\.)*)" "((?:[^"\\]|\\.)*)";/s.exec(s);
    if (m) { subject = unquote(m[1]!); text = unquote(m[2]!); }
  }
  return { on: active === VACATION_SCRIPT, subject, text, ...(active && active !== VACATION_SCRIPT ? { otherActive: active } : {}) };
}

/** Turn the reply on (with this text) or off. Returns what to tell the user. */
export async function setVacation(st: SieveFileStorage, user: string, on: boolean, subject: string, text: string): Promise<string> {
  const state = await vacationState(st);
  if (state.otherActive) throw new Error(`your own Sieve script "${state.otherActive}" is active; add a vacation action to it with a ManageSieve client instead`);
  if (!on) {
    if (!state.on) return 'The automatic reply was already off.';
    await st.setActive('');
    return 'The automatic reply is off.';
  }
  const subj = subject.replace(/[\r\n\t]+/g, ' ').trim();
  const body = text.replace(/\r\n?/g, '\n');
  if (subj === '' || subj.length > MAX_SUBJECT) throw new Error(`the subject must have 1 to ${MAX_SUBJECT} characters`);
  if (body.trim() === '' || body.length > MAX_TEXT) throw new Error(`the text must have 1 to ${MAX_TEXT} characters`);
  if (/[\x00-\x08\x0b-\x1f\x7f]/.test(subj + body)) throw new Error('the subject or text holds a control character');
  const script = vacationScript(user, subj, body);
  const c = compileSieve(script);
  if (!c.ok) throw new Error(`the reply could not be written as Sieve: ${c.errors[0]?.message}`);
  await st.put(VACATION_SCRIPT, Buffer.from(script, 'utf8'));
  await st.setActive(VACATION_SCRIPT);
  return 'The automatic reply is on.';
}

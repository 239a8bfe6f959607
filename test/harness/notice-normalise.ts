/**
 * notice-normalise - read bounce(8) notices (non-delivery, delay, success, sendmail -bv reports,
 * postmaster copies) that a local alias wrote to an mbox file, and normalise them so that
 * Postern's and real Postfix's can be compared byte for byte: queue ids become QID0, QID1, ...
 * in order of appearance, RFC 5322 dates become DATE, the MIME boundary's time stamp becomes
 * TIME, cleanup's own Message-Id: lines are dropped, and the per-recipient paragraphs (text part)
 * and field groups (delivery-status part) are put in one order (Postfix writes them in the
 * order its delivery agents finish, which varies from run to run).
 *
 *   const mbox = await waitNotices(file, 2, () => pf.log());   // at least 2 complete notices
 *   const texts = splitMbox(mbox).map((m) => normaliseNotice(m, { from: 'start' }));
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';

/** Wait (up to `ms`, default 60 s) until `path` holds at least `count` complete MIME notices; returns the file. */
export async function waitNotices(path: string, count: number, what: () => string, ms = 60_000): Promise<string> {
  const end = Date.now() + ms;
  for (;;) {
    if (existsSync(path)) {
      const t = readFileSync(path, 'utf8');
      if ((t.match(/\n--[^\n]+--\n/g) ?? []).length >= count) return t;
    }
    assert.ok(Date.now() < end, `fewer than ${count} notice(s) in ${path}:\n${what().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The messages of an mbox file (each without its "From " separator line). */
export function splitMbox(mbox: string): string[] {
  return mbox.split(/^From [^\n]*\n/m).filter((m) => m.length > 0);
}

export interface NormaliseOptions {
  /** 'subject': from the Subject: header on (default); 'start': the whole message. */
  from?: 'subject' | 'start';
  /** The host name in the MIME boundary (default mx.example.test). */
  host?: string;
}

/** One notice, normalised (see the header). */
export function normaliseNotice(msg: string, o: NormaliseOptions = {}): string {
  const host = (o.host ?? 'mx.example.test').replace(/\./g, '\\.');
  let t = o.from === 'start' ? msg : msg.slice(msg.indexOf('\nSubject: ') + 1);
  t = t.replace(/^Message-Id: .*\n/m, '');   // the notice's own (cleanup's format)
  t = t.replace(/(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}(?: \(\w+\))?/g, 'DATE');
  const ids = new Map<string, string>();
  const qid = (id: string) => { if (!ids.has(id)) ids.set(id, `QID${ids.size}`); return ids.get(id)!; };
  // The notice's own queue id first (Received: ... id), then the bounced message's.
  if (o.from === 'start') t = t.replace(/^(Received: by [^\n]*\n\tid )([0-9A-Za-z]+)/m, (_m, p: string, id: string) => `${p}${qid(id)}`);
  t = t.replace(/boundary="([0-9A-Za-z]+)\.\d+\/([^"]+)"/, (_m, id: string, h: string) => `boundary="${qid(id)}.TIME/${h}"`);
  t = t.replace(new RegExp(`--([0-9A-Za-z]+)\\.\\d+/${host}`, 'g'), (_m, id: string) => `--${qid(id)}.TIME/${o.host ?? 'mx.example.test'}`);
  t = t.replace(/(X-Postfix-Queue-ID: |\tid | with \w+ id )([0-9A-Za-z]+)/g, (_m, p: string, id: string) => `${p}${qid(id)}`);
  // The bounced message's Message-Id: (cleanup's format: date and queue id).
  t = t.replace(/^Message-Id: <\d{14}\.([0-9A-Za-z]+)@/m, (_m, id: string) => `Message-Id: <DATE.${qid(id)}@`);
  const parts = t.split(/(?=\n--QID)/);
  const sortBlocks = (part: string, first: RegExp): string => {
    const i = part.search(first);
    if (i < 0) return part;
    const blocks = part.slice(i + 1).replace(/\n+$/, '').split(/\n\n(?=<|Final-Recipient)/);
    return part.slice(0, i + 1) + blocks.sort().join('\n\n') + '\n';
  };
  return parts.map((p) => p.includes('Content-Description: Notification') ? sortBlocks(p, /\n<\S+@/) : p.includes('Content-Description: Delivery report') ? sortBlocks(p, /\nFinal-Recipient/) : p).join('');
}

/**
 * sieve-tests - the Sieve tests: RFC 5228 §5 (address, allof, anyof, envelope, exists, false,
 * header, not, size, true), body (RFC 5173), string (RFC 5229 §5), date and currentdate with
 * :index (RFC 5260), mailboxexists (RFC 5490), environment (RFC 5183), duplicate (RFC 7352),
 * spamtest/virustest (RFC 5235, configured as Pigeonhole's sieve_spamtest_* settings),
 * hasflag (RFC 5232), valid_notify_method and notify_method_capability (RFC 5435), ihave
 * (RFC 5463), specialuse_exists (RFC 8579), and the :mime/:anychild options of RFC 5703.
 */
import type { SieveCmd } from './sieve-compile.ts';
import type { SieveExec } from './sieve-interp.ts';
import { SieveMatcher } from './sieve-match.ts';
import { parseAddressList } from '../lib-mail/mail-address.ts';
import { partTypeIs, type MimePart } from '../lib-mail/mail-mime.ts';
import { parseContentType, mimeParam } from '../lib-mail/mail-content-type.ts';
import { datePart, headerDate, localOffset, zoneOffset, type ZonedDate } from './sieve-date.ts';
import { addressError } from './sieve-validate-ext.ts';
import { SIEVE_SUPPORTED_EXTENSIONS } from './sieve-compile.ts';
import { createHash } from 'node:crypto';
import { compileSieveRegex } from './sieve-regex.ts';

export function matcherFor(x: SieveExec, c: SieveCmd): SieveMatcher {
  const cmp = c.tags.get('comparator');
  const mt = c.groups.get('MATCH-TYPE') ?? 'is';
  const rel = c.tags.get(mt);
  return new SieveMatcher({
    comparator: typeof cmp === 'string' ? cmp.toLowerCase() : 'i;ascii-casemap',
    matchType: mt,
    ...(typeof rel === 'string' ? { relation: rel.toLowerCase() } : {}),
  }, x.regexCache, x.budget);
}

function match(x: SieveExec, c: SieveCmd, values: string[], keys: string[]): boolean {
  const r = matcherFor(x, c).match(values, keys);
  if (r.matched) x.setMatch(r.captures);
  return r.matched;
}

/** Applies :index N [:last] to the values of one header. */
function indexed(c: SieveCmd, values: string[]): string[] {
  const idx = c.tags.get('index');
  if (typeof idx !== 'number') return values;
  const i = c.tags.has('last') ? values.length - idx : idx - 1;
  return i >= 0 && i < values.length ? [values[i]!] : [];
}

/** The parts whose headers a :mime test looks at. */
function mimeParts(x: SieveExec, c: SieveCmd): MimePart[] {
  const msg = x.rt.message;
  const cur = x.part ?? msg.mimeTree().root;
  if (!c.tags.has('anychild')) return [cur];
  const out: MimePart[] = [];
  const walk = (p: MimePart): void => { out.push(p); for (const ch of p.children) walk(ch); if (p.message) walk(p.message); };
  walk(cur);
  return out;
}

function headerValues(x: SieveExec, c: SieveCmd, name: string): string[] {
  const msg = x.rt.message;
  if (!c.tags.has('mime')) return indexed(c, msg.header(name));
  const out: string[] = [];
  for (const p of mimeParts(x, c)) {
    const vals = indexed(c, msg.partHeader(p, name));
    const opt = c.groups.get('MIME-OPTION');
    for (const v of vals) {
      if (!opt || !/^content-(type|disposition)$/i.test(name)) { out.push(v); continue; }
      const ct = parseContentType(Buffer.from(name.toLowerCase() === 'content-disposition' ? `x/${v}` : v));
      if (opt === 'type') out.push(name.toLowerCase() === 'content-disposition' ? ct.subtype : ct.type);
      else if (opt === 'subtype') out.push(ct.subtype);
      else if (opt === 'contenttype') out.push(`${ct.type}/${ct.subtype}`);
      else if (opt === 'param') {
        const names = x.tagList(c, 'param') ?? [];
        for (const pn of names) { const pv = mimeParam(ct.params, pn); if (pv) out.push(pv.toString('utf8')); }
      }
    }
  }
  return out;
}

function addressPart(x: SieveExec, c: SieveCmd, addr: string): string | undefined {
  const part = c.groups.get('ADDRESS-PART') ?? 'all';
  if (part === 'all') return addr;
  const at = addr.lastIndexOf('@');
  const local = at < 0 ? addr : addr.slice(0, at);
  const domain = at < 0 ? '' : addr.slice(at + 1);
  if (part === 'localpart') return local;
  if (part === 'domain') return domain;
  const delims = x.rt.recipientDelimiter;
  let d = -1;
  for (const ch of delims) { const i = local.indexOf(ch); if (i >= 0 && (d < 0 || i < d)) d = i; }
  if (part === 'user') return d < 0 ? local : local.slice(0, d);
  return d < 0 ? undefined : local.slice(d + 1);
}

function headerAddresses(x: SieveExec, c: SieveCmd, name: string): string[] {
  const msg = x.rt.message;
  const raws = c.tags.has('mime')
    ? mimeParts(x, c).flatMap((p) => p.headers.filter((f) => f.name.toLowerCase() === name.toLowerCase()).map((f) => f.value))
    : msg.headerRaw(name);
  const out: string[] = [];
  for (const raw of indexed(c, raws.map((r) => r.toString('latin1'))).map((s) => Buffer.from(s, 'latin1'))) {
    for (const a of parseAddressList(raw, false)) {
      if (a.domain === undefined && a.mailbox === undefined) continue;
      if (a.domain === undefined || a.invalidSyntax) {
        // A group start, or an invalid address (no domain): Pigeonhole matches no part of it.
        continue;
      }
      out.push(`${a.mailbox?.toString('utf8') ?? ''}@${a.domain.toString('utf8')}`);
    }
  }
  return out;
}

function bodyTexts(x: SieveExec, c: SieveCmd): string[] {
  const tr = c.groups.get('BODY-TRANSFORM') ?? 'text';
  const types = tr === 'content' ? (x.tagList(c, 'content') ?? []) : ['text'];
  // Decoded once per run and transform: a script with many body tests pays for one decoding.
  const key = `${tr}\0${types.join('\0')}`;
  let texts = x.bodyCache.get(key);
  if (!texts) {
    texts = bodyTextsOf(x, tr, types);
    x.bodyCache.set(key, texts);
  }
  return texts;
}

function bodyTextsOf(x: SieveExec, tr: string, types: string[]): string[] {
  const msg = x.rt.message;
  if (tr === 'raw') return [msg.rawBody()];
  const out: string[] = [];
  for (const { part } of msg.parts()) {
    const leaf = !part.isMultipart && !part.message;
    const ct = part.contentType;
    const hit = types.some((t) => {
      if (t === '') return true;
      const [ty, sub] = t.toLowerCase().split('/');
      return sub === undefined ? ct.type.toLowerCase() === ty : partTypeIs(part, ty!, sub);
    });
    if (!hit) continue;
    if (leaf) out.push(msg.partText(part));
    else if (part.isMultipart) {
      // a multipart's own text is its prologue and epilogue (RFC 5173 §5.2); kept simple: none
    }
  }
  return out;
}

async function spamVirus(x: SieveExec, c: SieveCmd, virus: boolean): Promise<string> {
  const s = virus ? x.rt.virustest : x.rt.spamtest;
  const percent = c.tags.has('percent');
  const notTested = '0';
  if (!s?.statusHeader) return notTested;
  const [hname, ...rest] = s.statusHeader.split(':');
  const re = rest.join(':').trim();
  const vals = x.rt.message.header(hname!.trim());
  if (vals.length === 0) return notTested;
  let raw = vals[0]!;
  if (re) {
    const m = posixExec(re, raw);
    if (!m) return notTested;
    raw = m[1] ?? m[0] ?? '';
  }
  const type = s.statusType ?? 'score';
  let ratio: number;
  if (type === 'text') {
    const tv = s.textValues ?? {};
    const hit = Object.entries(tv).find(([, t]) => t === raw);
    if (!hit) return notTested;
    const n = Number(hit[0]);
    if (virus) return String(n);
    ratio = n / 10;
  } else {
    const v = type === 'strlen' ? raw.length : Number.parseFloat(raw);
    if (Number.isNaN(v)) return notTested;
    let max = s.maxValue;
    if (max === undefined && s.maxHeader) {
      const [mh, ...mr] = s.maxHeader.split(':');
      const mv = x.rt.message.header(mh!.trim())[0];
      const mre = mr.join(':').trim();
      const mm = mv !== undefined ? (mre ? posixExec(mre, mv)?.[1] : mv) : undefined;
      max = mm !== undefined ? Number.parseFloat(mm) : undefined;
    }
    if (!max || max <= 0) return notTested;
    ratio = Math.min(Math.max(v / max, 0), 1);
  }
  if (percent) return String(Math.round(ratio * 100));
  return virus ? String(1 + Math.round(ratio * 4)) : String(1 + Math.round(ratio * 9));
}

export async function evalTest(x: SieveExec, t: SieveCmd): Promise<boolean> {
  x.step();
  const rt = x.rt;
  switch (t.name) {
    case 'true': return true;
    case 'false': return false;
    case 'not': return !(await evalTest(x, t.tests[0]!));
    case 'allof': for (const s of t.tests) if (!(await evalTest(x, s))) return false; return true;
    case 'anyof': for (const s of t.tests) if (await evalTest(x, s)) return true; return false;
    case 'header': {
      const names = x.list(t, 'header names')!;
      return match(x, t, names.flatMap((n) => headerValues(x, t, n)), x.list(t, 'key list')!);
    }
    case 'address': {
      const names = x.list(t, 'header list')!;
      const vals: string[] = [];
      for (const n of names) for (const a of headerAddresses(x, t, n)) { const p = addressPart(x, t, a); if (p !== undefined) vals.push(p); }
      return match(x, t, vals, x.list(t, 'key list')!);
    }
    case 'envelope': {
      const vals: string[] = [];
      for (const part of x.list(t, 'envelope part')!) {
        const p = part.toLowerCase();
        const a = p === 'from' ? rt.envelope.from : p === 'to' ? rt.envelope.to : p === 'auth' ? rt.envelope.auth : undefined;
        if (a === undefined) continue;
        // The null reverse-path: every address part is the empty string (Pigeonhole), but :detail has none.
        if (a === '') { if (t.groups.get('ADDRESS-PART') !== 'detail') vals.push(''); continue; }
        const v = addressPart(x, t, a);
        if (v !== undefined) vals.push(v);
      }
      return match(x, t, vals, x.list(t, 'key list')!);
    }
    case 'exists': {
      const names = x.list(t, 'header names')!;
      return names.every((n) => headerValues(x, t, n).length > 0);
    }
    case 'size': {
      const lim = t.args.get('limit') as number;
      return t.groups.get('SIZE') === 'over' ? rt.message.size > lim : rt.message.size < lim;
    }
    case 'body': return match(x, t, bodyTexts(x, t), x.list(t, 'key list')!);
    case 'string': {
      let src = x.list(t, 'source')!;
      if (t.groups.get('MATCH-TYPE') === 'count') src = src.filter((s) => s !== '');
      return match(x, t, src, x.list(t, 'key list')!);
    }
    case 'date': case 'currentdate': {
      const part = x.str(t, 'date part')!;
      const zoneTag = x.tagStr(t, 'zone');
      const zds: ZonedDate[] = [];
      if (t.name === 'currentdate') zds.push({ date: rt.now, offsetMin: localOffset(rt.now) });
      else {
        const hn = x.str(t, 'header name')!;
        for (const v of indexed(t, rt.message.header(hn))) {
          const d = headerDate(v);
          if (d) zds.push(t.groups.get('ZONE') === 'originalzone' ? d : { date: d.date, offsetMin: localOffset(d.date) });
        }
      }
      const vals: string[] = [];
      for (const zd of zds) {
        const off = zoneTag !== undefined ? zoneOffset(zoneTag) : undefined;
        const z = off !== undefined ? { date: zd.date, offsetMin: off } : zd;
        const v = datePart(z, part);
        if (v !== undefined) vals.push(v);
      }
      return match(x, t, vals, x.list(t, 'key list')!);
    }
    case 'mailboxexists': {
      for (const m of x.list(t, 'mailbox names')!) if (!(await rt.mailboxExists(m))) return false;
      return true;
    }
    case 'environment': {
      const name = x.str(t, 'name')!.toLowerCase();
      const v = Object.hasOwn(rt.environment, name) ? rt.environment[name] : undefined;
      if (v === undefined) return false;
      return match(x, t, [v], x.list(t, 'key list')!);
    }
    case 'duplicate': {
      let id: string | undefined = x.tagStr(t, 'uniqueid');
      const hdr = x.tagStr(t, 'header');
      if (id === undefined) id = rt.message.header(hdr ?? 'message-id')[0];
      if (id === undefined) return false;
      const handle = x.tagStr(t, 'handle') ?? '';
      const key = createHash('sha1').update(`${handle}\0${hdr ?? ''}\0${id}`).digest('hex');
      const secs = t.tags.get('seconds');
      const seen = rt.duplicateSeen ? await rt.duplicateSeen(key) : false;
      x.duplicateMarks.push({ id: key, seconds: typeof secs === 'number' ? secs : 0, last: t.tags.has('last') });
      return seen;
    }
    case 'spamtest': case 'virustest': {
      const v = await spamVirus(x, t, t.name === 'virustest');
      return match(x, t, [v], [x.str(t, 'value')!]);
    }
    case 'hasflag': {
      const vn = x.list(t, 'variable list');
      const flags = vn ? vn.flatMap((n) => (x.getVar(n) ?? '').split(' ').filter((f) => f !== '')) : x.flags;
      const keys = x.list(t, 'list of flags')!.flatMap((k) => k.split(' ').filter((f) => f !== ''));
      if (t.groups.get('MATCH-TYPE') === 'count') return match(x, t, flags, keys);
      return match(x, t, flags, keys);
    }
    case 'valid_notify_method':
      return x.list(t, 'notification-uris')!.every((u) => /^mailto:/i.test(u) && mailtoValid(u));
    case 'notify_method_capability': {
      const uri = x.str(t, 'notification-uri')!;
      if (!/^mailto:/i.test(uri) || !mailtoValid(uri)) return false;
      if (x.str(t, 'notification-capability')!.toLowerCase() !== 'online') return false;
      return match(x, t, ['maybe'], x.list(t, 'key-list')!);
    }
    case 'ihave': return x.list(t, 'capabilities')!.every((e) => SIEVE_SUPPORTED_EXTENSIONS.includes(e.toLowerCase()));
    case 'specialuse_exists': {
      if (!rt.specialUseExists) return false;
      return rt.specialUseExists(x.str(t, 'mailbox'), x.list(t, 'special-use-flags')!);
    }
  }
  return false;
}

/** The administrator's POSIX pattern from dovecot.conf (sieve_spamtest_status_header). */
function posixExec(re: string, s: string): (string | undefined)[] | null {
  const r = compileSieveRegex(re, false);
  return 'error' in r ? null : r.exec(s);
}

export function mailtoValid(uri: string): boolean {
  const to = decodeURIComponent(uri.slice(7).split('?')[0] ?? '');
  return to.split(',').every((a) => a !== '' && addressError(a) === undefined);
}

/**
 * cleanup-milter - the message stage of the milters in cleanup(8) (Postfix
 * cleanup/cleanup_milter.c): the message as cleanup will queue it goes to smtpd's milters (or,
 * for mail that did not come through smtpd, to non_smtpd_milters), and their edits are applied
 * before the queue file is committed.
 *
 * SUMMARY
 *   const m = await CleanupMilter.open(opts, config, host);   // undefined: no milters
 *   m.buffer(chunk) ...                                        // cleanup's processed content
 *   const out = await m.run();                                 // { content } | { reject } ...
 *
 * DESCRIPTION
 *   Where Postfix edits the queue file in place, Postern keeps the message as cleanup produced
 *   it (after header_checks, address rewriting and the added headers, bounded by
 *   message_size_limit) until the end, runs the milters over it, applies each milter's edits at
 *   once after its final reply (global/milter-message.ts), then writes the result. A milter
 *   that fails half-way therefore leaves the message untouched, and its default action
 *   decides.
 *
 *   The MTA's own Received: header (the first header, when it is a Received:) is hidden from
 *   the milters as Postfix hides it: change/delete indexes skip it, insert index 0 goes above
 *   it, 1 below it. A change of a header that does not exist adds it (Sendmail). Headers that
 *   milters add, insert or change go through milter_header_checks (REJECT, DISCARD, HOLD,
 *   IGNORE, REPLACE, PREPEND, WARN, INFO; log "QID: milter-header-<action>: ..."). Added and
 *   removed recipients (with NOTIFY= and ORCPT=) and a new sender go through cleanup's address
 *   mapping like the client's; a recipient is deleted by the address the client gave. A
 *   message that the edits take over message_size_limit is refused with "552 5.3.4 Error:
 *   message file too big" ("warning: QID: queue file size limit exceeded" names the milter).
 *
 *   Replies: "D" discards (Postfix logs "milter-discard: END-OF-MESSAGE"), "H<reason>" sends
 *   the message to the hold queue ("milter-hold: END-OF-MESSAGE ... <reason>"), 4xx/5xx
 *   refuse it ("milter-reject: END-OF-MESSAGE from ...: 5.7.1 text; from=<> to=<> proto=
 *   helo=<>"), "S" refuses it with "421 4.7.0 Service unavailable".
 *
 *   non_smtpd_milters (pickup, qmqpd: CleanupOpenOptions.nonSmtpdMilters) see a connection from
 *   the queue file's client attributes, or from localhost [127.0.0.1], HELO with the client's
 *   HELO name or localhost, MAIL, each RCPT and DATA, then the message, as Postfix's
 *   cleanup_milter_emul_*(); receive_override_options = no_milters turns them off.
 *
 * PARAMETERS
 *   non_smtpd_milters, milter_header_checks, message_size_limit, receive_override_options
 */
import type { MainConfig } from '../global/mail-conf.ts';
import { Maps } from '../global/maps.ts';
import type { QueueRecipient } from '../global/queue-file.ts';
import { ATTR, DSN_NOTIFY } from '../global/rec-type.ts';
import type { CleanupOpenOptions, CleanupReject } from '../global/cleanup-client.ts';
import type { MessageMilters, MilterEdit, MilterHeader, MilterMessageEditor } from '../global/milter-message.ts';
import { Milters } from '../lib-milter/milters.ts';
import { milterConfig } from '../lib-milter/milter-config.ts';
import { decodeXtext } from '../lib-smtp/smtp-address.ts';
import { logger } from '../util/msg.ts';
import { actLog, checkContent, type CheckLogContext } from './cleanup-checks.ts';
import { STAT_SIZE } from './cleanup-status.ts';

const log = logger('cleanup');

/** What cleanup lends the milter stage. */
export interface CleanupMilterHost {
  readonly queueId: string;
  messageSizeLimit: number;
  /** header_size_limit: a longer header from a milter is cut (Postfix cleanup_out_header). */
  headerSizeLimit: number;
  myhostname: string;
  logContext(): CheckLogContext;
  changeSender(address: string): Promise<void>;
  /** A new DSN RET (FULL, HDRS) or ENVID from SMFIR_CHGFROM. */
  setAttr(name: string, value: string): void;
  addRecipient(r: QueueRecipient): Promise<void>;
  /** Remove the recipients the client gave as `address`; returns how many. */
  deleteRecipient(address: string): number;
  /** The envelope for non_smtpd_milters' MAIL and RCPT events. */
  sender(): string;
  recipients(): string[];
}

export type MilterOutcome =
  | { content: Buffer; hold?: string; discard?: boolean }
  | { reject: CleanupReject; disconnect?: boolean };

interface Header { name: string; raw: string; hidden?: boolean }

const hbcCache = new WeakMap<MainConfig, Promise<Maps | undefined>>();
function milterHeaderChecks(config: MainConfig): Promise<Maps | undefined> {
  let p = hbcCache.get(config);
  if (!p) {
    const spec = config.get('milter_header_checks').trim();
    p = spec ? Maps.open(spec, { paramName: 'milter_header_checks', ...config.dictFlags }) : Promise.resolve(undefined);
    hbcCache.set(config, p);
    p.catch(() => hbcCache.delete(config));
  }
  return p;
}

export class CleanupMilter implements MilterMessageEditor {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private headers: Header[] = [];
  private separator = true;
  private body: Buffer = Buffer.alloc(0);
  private readonly host: CleanupMilterHost;
  private readonly milters: MessageMilters;
  /** Our own connections (non_smtpd_milters): connected, emulated, and closed by run(). */
  private readonly own: Milters | undefined;
  private readonly attrs: Record<string, string>;
  private readonly hbc: Maps | undefined;
  private hold: string | undefined;
  private discard = false;
  private hbcReject: CleanupReject | undefined;

  private constructor(host: CleanupMilterHost, milters: MessageMilters, own: Milters | undefined, attrs: Record<string, string>, hbc: Maps | undefined) {
    this.host = host;
    this.milters = milters;
    this.own = own;
    this.attrs = attrs;
    this.hbc = hbc;
  }

  /** The milters of this message: smtpd's, or non_smtpd_milters; undefined when none. */
  static async open(opts: CleanupOpenOptions, config: MainConfig | undefined, noMilters: boolean, host: CleanupMilterHost): Promise<CleanupMilter | undefined> {
    if (opts.milters) {
      return new CleanupMilter(host, opts.milters, undefined, opts.attrs, config ? await milterHeaderChecks(config) : undefined);
    }
    if (!opts.nonSmtpdMilters || !config || noMilters) return undefined;
    const cfg = milterConfig(config, 'non_smtpd_milters');
    if (!cfg) return undefined;
    const a = opts.attrs;
    let self: CleanupMilter | undefined;
    const own = Milters.create(cfg, (n) => self?.macro(n, cfg.daemonName, cfg.v), (t) => log.warn(t));
    self = new CleanupMilter(host, own, own, a, await milterHeaderChecks(config));
    return self;
  }

  /** Postfix cleanup_milter_eval(): macros for non_smtpd_milters, from the queue file. */
  private macro(name: string, daemonName: string, v: string): string | undefined {
    const a = this.attrs;
    const client = a[ATTR.CLIENT_NAME] ?? 'localhost';
    const addr = a[ATTR.CLIENT_ADDR] ?? '127.0.0.1';
    switch (name) {
      case 'i': return this.host.queueId;
      case 'j': return this.host.myhostname;
      case 'daemon_name': return daemonName;
      case 'v': return v;
      case '_': return `${client} [${addr}]`;
      case 'client_addr': return addr;
      case 'client_name': case 'client_ptr': return client;
      case 'client_port': return a[ATTR.CLIENT_PORT] ?? '0';
      case 'daemon_addr': return addr;
      case 'auth_type': return a[ATTR.SASL_METHOD];
      case 'auth_authen': return a[ATTR.SASL_USERNAME];
      case 'mail_addr': return this.host.sender();
      case 'rcpt_addr': return this.emulRcpt;
    }
    return undefined;
  }
  private emulRcpt: string | undefined;

  /** cleanup's processed content (LF line endings), kept until run(). */
  buffer(b: Buffer): void {
    this.chunks.push(b);
    this.size += b.length;
  }

  private parse(): void {
    const all = Buffer.concat(this.chunks.splice(0)).toString('latin1');
    let pos = 0;
    const headers: Header[] = [];
    this.separator = false;
    while (pos < all.length) {
      const nl = all.indexOf('\n', pos);
      const end = nl < 0 ? all.length : nl + 1;
      const line = all.slice(pos, end);
      if (line === '\n') { this.separator = true; pos = end; break; }
      if ((line[0] === ' ' || line[0] === '\t') && headers.length) { headers[headers.length - 1]!.raw += line; pos = end; continue; }
      const m = /^([!-9;-~]+)[ \t]*:/.exec(line);
      if (!m) break;
      headers.push({ name: m[1]!, raw: line });
      pos = end;
    }
    // The MTA's own Received: header (smtpd's, pickup's) is not shown (Postfix auto_hdrs).
    if (headers[0] && headers[0].name.toLowerCase() === 'received') headers[0].hidden = true;
    this.headers = headers;
    this.body = Buffer.from(all.slice(pos), 'latin1');
  }

  get sizeLimit(): number { return this.host.messageSizeLimit; }

  current(): { headers: MilterHeader[]; body: Buffer } {
    return {
      headers: this.headers.filter((h) => !h.hidden).map((h) => {
        const colon = h.raw.indexOf(':');
        return { name: h.name, value: h.raw.slice(colon + 1).replace(/\n$/, '') };
      }),
      body: this.body,
    };
  }

  private total(): number {
    let n = this.body.length + (this.separator ? 1 : 0);
    for (const h of this.headers) n += h.raw.length;
    return n;
  }

  /** milter_header_checks on a header a milter produced: the header to keep, or undefined to drop it. */
  private async checked(text: string): Promise<string | undefined> {
    if (!this.hbc) return text;
    const line = text.replace(/\n$/, '');
    const a = await checkContent(this.hbc, line);
    const ctx = this.host.logContext();
    const note = (act: string, t?: string) => log.info(actLog(ctx, `milter-header-${act}`, 'header', line, t ?? ''));
    switch (a.kind) {
      case 'reject': note('reject', `${a.enh} ${a.text}`); this.hbcReject ??= { code: a.code, enh: a.enh, text: a.text }; return text;
      case 'discard': note('discard', a.text); this.discard = true; return text;
      case 'hold': note('hold', a.text); this.hold ??= a.text || 'milter header checks HOLD action'; return text;
      case 'ignore': return undefined;
      case 'replace': note('replace', a.text); return a.text + '\n';
      case 'prepend': note('prepend', a.text); return a.text + '\n' + text;
      case 'warn': note('warning', a.text); return text;
      case 'info': note('info', a.text); return text;
      default: return text;
    }
  }

  /** Apply one milter's edits at once (they arrived with its final reply). */
  async apply(milter: string, edits: MilterEdit[]): Promise<string | undefined> {
    const qid = this.host.queueId;
    const saved = { headers: this.headers.map((h) => ({ ...h })), body: this.body, separator: this.separator };
    const hdr = (name: string, value: string) => cutHeader(`${name}:${value.replace(/\r\n/g, '\n')}`, this.host.headerSizeLimit) + '\n';
    const find = (name: string, index: number): number => {
      let n = 0;
      for (let i = 0; i < this.headers.length; i++) {
        const h = this.headers[i]!;
        if (h.hidden || h.name.toLowerCase() !== name.toLowerCase()) continue;
        if (++n === index) return i;
      }
      return -1;
    };
    for (const e of edits) {
      switch (e.kind) {
        case 'addHeader': {
          const t = await this.checked(hdr(e.name, e.value));
          if (t !== undefined) this.headers.push({ name: e.name, raw: t });
          break;
        }
        case 'insertHeader': {
          const t = await this.checked(hdr(e.name, e.value));
          if (t === undefined) break;
          const at = Math.min(Math.max(e.index - 1, 0), this.headers.length);
          this.headers.splice(at, 0, { name: e.name, raw: t });
          // A header above ours: ours becomes an ordinary header (Postfix).
          if (at === 0 && this.headers[1]?.hidden) this.headers[1].hidden = false;
          break;
        }
        case 'changeHeader': {
          const i = find(e.name, e.index);
          const t = await this.checked(hdr(e.name, e.value));
          if (i < 0) { if (t !== undefined) this.headers.push({ name: e.name, raw: t }); break; }
          if (t === undefined) this.headers.splice(i, 1); else this.headers[i] = { name: e.name, raw: t };
          break;
        }
        case 'deleteHeader': {
          const i = find(e.name, e.index);
          if (i >= 0) this.headers.splice(i, 1);
          break;
        }
        case 'replaceBody': {
          const limit = this.host.messageSizeLimit;
          if (limit > 0 && e.size > limit) return this.tooBig(milter, saved);
          let text = Buffer.concat(e.body).toString('latin1').replace(/\r\n/g, '\n');
          if (text && !text.endsWith('\n')) text += '\n';
          this.body = Buffer.from(text, 'latin1');
          this.separator = true;
          break;
        }
        case 'changeSender': {
          const a = stripAngle(e.address);
          // Postfix cleanup_chg_from(): RET= and ENVID= are kept with the sender; others are ignored.
          for (const arg of e.args.split(/\s+/).filter(Boolean)) {
            const eq = arg.indexOf('=');
            const k = arg.slice(0, eq).toUpperCase();
            const v = arg.slice(eq + 1);
            const envid = k === 'ENVID' ? decodeXtext(v) : undefined;
            if (k === 'RET' && /^(FULL|HDRS)$/i.test(v)) this.host.setAttr(ATTR.DSN_RET, v.toUpperCase());
            else if (envid !== undefined && /^[\x20-\x7e\t]*$/.test(envid)) this.host.setAttr(ATTR.DSN_ENVID, envid);
            else log.warn(`Ignoring bad ESMTP parameter "${arg.slice(0, 100)}" in SMFI_CHGFROM request`);
          }
          log.info(`${qid}: milter ${milter}: sender changed to <${a}>`);
          await this.host.changeSender(a);
          break;
        }
        case 'addRecipient': {
          const r: QueueRecipient = { address: stripAngle(e.address) };
          r.orig = r.address;
          for (const arg of e.args.split(/\s+/).filter(Boolean)) {
            const eq = arg.indexOf('=');
            const k = arg.slice(0, eq).toUpperCase();
            const v = arg.slice(eq + 1);
            if (k === 'NOTIFY') {
              let n = 0;
              for (const w of v.toUpperCase().split(',')) n |= (DSN_NOTIFY as Record<string, number>)[w] ?? 0;
              if (n) r.notify = n; else log.warn(`${qid}: Bad NOTIFY parameter from Milter or header/body_checks: "${arg.slice(0, 100)}"`);
            } else if (k === 'ORCPT') {
              const semi = v.indexOf(';');
              const dec = semi > 0 ? decodeXtext(v.slice(semi + 1)) : undefined;
              if (dec !== undefined) r.orcpt = `${v.slice(0, semi)};${dec}`;
              else log.warn(`${qid}: Bad ORCPT parameter from Milter or header/body_checks: "${arg.slice(0, 100)}"`);
            } else {
              log.warn(`${qid}: ignoring ESMTP argument from Milter or header/body_checks: "${arg.slice(0, 100)}"`);
            }
          }
          await this.host.addRecipient(r);
          break;
        }
        case 'deleteRecipient':
          this.host.deleteRecipient(stripAngle(e.address));
          break;
        case 'tooBig':
          return this.tooBig(milter, saved);
      }
      if (this.total() > this.host.messageSizeLimit && this.host.messageSizeLimit > 0) return this.tooBig(milter, saved);
    }
    return undefined;
  }

  private tooBig(milter: string, saved: { headers: Header[]; body: Buffer; separator: boolean }): string {
    log.warn(`${this.host.queueId}: queue file size limit exceeded (edits of milter ${milter})`);
    this.headers = saved.headers; this.body = saved.body; this.separator = saved.separator;
    this.sizeError = true;
    return `${STAT_SIZE.code} ${STAT_SIZE.enh} ${STAT_SIZE.text}`;
  }
  private sizeError = false;

  /** Send the message through the milters and return what to queue, or the refusal. */
  async run(): Promise<MilterOutcome> {
    this.parse();
    let reply: string | undefined;
    let stage = 'END-OF-MESSAGE';
    try {
      const e = this.own ? await this.emulate() : undefined;
      if (e) { reply = e.reply; stage = e.stage; } else reply = await this.milters.message(this);
    } finally {
      // smtpd aborts its own milters' transaction when the message is done (Postfix mail_reset).
      if (this.own) await this.own.quit();
    }
    const ctx = this.host.logContext();
    const who = `${ctx.clientName ?? 'localhost'}[${ctx.clientAddr ?? '127.0.0.1'}]`;
    // Postfix logs the last recipient (state->recip).
    const rcpt = this.host.recipients().at(-1) ?? ctx.recipient;
    const tail = `${ctx.sender !== undefined ? ` from=<${ctx.sender}>` : ''}${rcpt ? ` to=<${rcpt}>` : ''}${ctx.proto ? ` proto=${ctx.proto}` : ''}${ctx.helo ? ` helo=<${ctx.helo}>` : ''}`;
    if (this.sizeError) return { reject: STAT_SIZE };
    if (this.hbcReject) return { reject: this.hbcReject };
    if (reply !== undefined && !this.discard) {
      const c = reply[0];
      if (c === 'H') {
        this.hold ??= reply.slice(1) || 'milter triggers HOLD action';
        log.info(`${this.host.queueId}: milter-hold: ${stage} from ${who}: ${this.hold};${tail}`);
      } else if (c === 'D') {
        log.info(`${this.host.queueId}: milter-discard: ${stage} from ${who}: milter triggers DISCARD action;${tail}`);
        this.discard = true;
      } else {
        const r = c === 'S' ? '421 4.7.0 Service unavailable' : /^[45]\d\d/.test(reply) ? reply : '451 4.3.0 Server configuration error';
        const code = Number(r.slice(0, 3));
        const rest = r.slice(4);
        log.info(`${this.host.queueId}: milter-reject: ${stage} from ${who}: ${rest.replace(/\r\n/g, ' ')};${tail}`);
        const m = /^(\d\.\d{1,3}\.\d{1,3}) ?/.exec(rest);
        const lines = r.split('\r\n').map((l, i) => {
          let t = i === 0 ? rest.split('\r\n')[0]! : l.slice(4);
          if (m && t.startsWith(m[1]!)) t = t.slice(m[1]!.length).replace(/^ /, '');
          return t;
        });
        return { reject: { code, enh: m ? m[1]! : (code >= 500 ? '5.7.1' : '4.7.1'), text: lines.join('\n') }, disconnect: code === 421 };
      }
    }
    const head = this.headers.map((h) => h.raw).join('');
    const content = Buffer.concat([Buffer.from(head, 'latin1'), this.separator ? NL : EMPTY, this.body]);
    return { content, hold: this.hold, discard: this.discard };
  }

  /** non_smtpd_milters: connect, HELO, MAIL, RCPT, DATA as Postfix's cleanup_milter_emul_*(). */
  private async emulate(): Promise<{ reply: string; stage: string } | undefined> {
    const m = this.own!;
    const a = this.attrs;
    const addr = a[ATTR.CLIENT_ADDR] ?? '127.0.0.1';
    const fam = addr.includes(':') ? 'inet6' : 'inet';
    let r = await m.connect(a[ATTR.CLIENT_NAME] ?? 'localhost', addr, Number(a[ATTR.CLIENT_PORT] ?? 0) || 0, fam);
    if (r !== undefined) return { reply: r, stage: 'CONNECT' };
    r = await m.helo(a[ATTR.HELO_NAME] ?? a[ATTR.CLIENT_NAME] ?? 'localhost');
    if (r !== undefined) return { reply: r, stage: 'EHLO' };
    // Postfix sends the addresses without <> here (quote_821_local only).
    r = await m.mail([this.host.sender()]);
    if (r !== undefined) return { reply: r, stage: 'MAIL' };
    for (const rc of this.host.recipients()) {
      this.emulRcpt = rc;
      r = await m.rcpt([rc], false);
      this.emulRcpt = undefined;
      if (r !== undefined) return { reply: r, stage: 'RCPT' };
    }
    r = await m.data();
    return r === undefined ? undefined : { reply: r, stage: 'DATA' };
  }
}

const NL = Buffer.from('\n');
const EMPTY = Buffer.alloc(0);

/**
 * Postfix cleanup_out_header(): a header over header_size_limit is cut at its last line boundary
 * before the limit when that keeps 90% of it, else at the limit itself.
 */
export function cutHeader(h: string, limit: number): string {
  if (limit <= 0 || h.length <= limit) return h;
  const nl = h.lastIndexOf('\n', limit);
  return nl > 0.9 * limit ? h.slice(0, nl) : h.slice(0, limit);
}

function stripAngle(a: string): string {
  const t = a.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t;
}

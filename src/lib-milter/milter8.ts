/**
 * milter8 - the MTA side of one connection to one Sendmail 8 milter application, protocol
 * version 6 (Postfix src/milter/milter8.c): connect (inet:host:port, unix:/path), option
 * negotiation, one event at a time with its macros, and the milter's reply.
 *
 * SUMMARY
 *   const m = new Milter8(settings, log);
 *   await m.connect();                                   // at the SMTP connection
 *   await m.event(SMFIC.HELO, SMFIP.NOHELO, SMFIP.NR_HELO, macros, cstr(helo))   → reply
 *   await m.message(msg, eohMacros, eodMacros)           → { reply, edits }
 *   await m.abort(); await m.quit();
 *
 * DESCRIPTION
 *   A reply is Postfix's internal form: undefined (go on), "4xx ..." / "5xx ..." (an SMTP reply,
 *   possibly multi-line with CRLF), "D" (discard), "H<reason>" (quarantine: hold queue),
 *   "S" (shutdown: 421 and disconnect). Negotiation follows milter_protocol: events the chosen
 *   version does not define are never sent; events the milter declined (SMFIP_NO*) are not sent
 *   but their macros are; replies it declined (SMFIP_NR_*) are not waited for; SMFIR_SKIP stops
 *   the body chunks; SMFIP_HDR_LEADSPC keeps the space after a header's colon; SMFIP_RCPT_REJ
 *   asks for rejected recipients too. Accept/reject/tempfail/reply-code at CONNECT or HELO hold
 *   for the whole connection; at later stages for the transaction only.
 *
 *   Editing requests (add/insert/change/delete header, replace body, add/delete recipient with
 *   ESMTP arguments, change sender) are allowed only after end-of-message and are collected
 *   until the milter's final reply: when the milter then fails, none of them is applied (the
 *   message is never half-modified), and the default action decides.
 *
 *   Any failure (connect, timeout, EOF, malformed or unexpected reply) closes the socket, is
 *   logged with the milter's name, and turns into milter_default_action for the rest of the
 *   connection: accept → no reply; reject → "550 5.5.0 Service unavailable"; tempfail →
 *   "451 4.7.1 Service unavailable - try again later"; shutdown → "421 4.7.1 ..."; quarantine
 *   → hold. A bad configuration (protocol, endpoint, reply syntax) gives "451 4.3.5 Server
 *   configuration problem - try again later" unless the default action is accept or quarantine.
 *
 * SECURITY
 *   The milter is another program on the network: every packet length is bounded
 *   (milter-protocol.ts), every wait has milter_command_timeout or milter_content_timeout.
 */
import { connect as netConnect, type Socket } from 'node:net';
import {
  cstr, encodePacket, MilterIoError, MilterStream, MILTER_CHUNK_SIZE, MTA_ACTIONS, NOSEND_MASK, SMFIA, SMFIC,
  SMFIF, SMFIM, SMFIP, SMFIR, splitStrings, u32, VERSION_MASKS,
} from './milter-protocol.ts';
import type { MilterEdit, MilterHeader } from '../global/milter-message.ts';

export interface MilterSettings {
  /** The endpoint as configured: inet:host:port, unix:/path (also the milter's name in logs). */
  name: string;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  contentTimeoutMs: number;
  /** milter_protocol: "6", "4", "3", "2", optionally with "no_header_reply". */
  protocol: string;
  /** milter_default_action: accept, reject, tempfail, shutdown, quarantine. */
  defaultAction: string;
}

/** A reply in Postfix's internal form (see DESCRIPTION). */
export type MilterReply = string | undefined;

/** The message as the milter sees it at the message stage. */
export interface MilterMessageInput {
  /** Headers in order, without the MTA's own hidden Received: header. */
  headers: MilterHeader[];
  /** Body, LF line endings (sent as CRLF). */
  body: Buffer;
}

type State = 'closed' | 'ready' | 'envelope' | 'message' | 'accept_con' | 'accept_msg' | 'reject_con' | 'error';

/** Postfix's milter8_event_masks/milter8_versions for milter_protocol. */
function parseProtocol(p: string): { version: number; events: number } | undefined {
  let version = 0;
  let events = 0;
  for (const w of p.split(/[\s,]+/).filter(Boolean)) {
    if (w === 'no_header_reply') { events |= SMFIP.NR_HDR; continue; }
    const v = Number(w);
    if (!VERSION_MASKS[v] || version) return undefined;
    version = v;
    events |= VERSION_MASKS[v]!;
  }
  return version ? { version, events } : undefined;
}

export class Milter8 {
  readonly s: MilterSettings;
  private stream: MilterStream | undefined;
  private state: State = 'closed';
  /** The persistent reply after an error or a connection-level decision. */
  private defReply: MilterReply;
  /** SMFIP options of the milter (what it does not want / will not answer). */
  private evMask = 0;
  /** Events our protocol version (or the milter's) does not define. */
  private npMask = 0;
  private skipEvent: string | undefined;
  /** message_size_limit during the message stage: a body replacement is not kept beyond it. */
  private sizeLimit = 0;
  /** Macro lists the milter asked for in the negotiation (SMFIR_SETSYMLIST), by SMFIM stage. */
  readonly macroOverride = new Map<number, string>();
  private readonly warn: (text: string) => void;

  constructor(s: MilterSettings, warn: (text: string) => void) {
    this.s = s;
    this.warn = warn;
  }

  get name(): string { return this.s.name; }
  /** The milter asked for rejected recipients too (SMFIP_RCPT_REJ). */
  get wantsRejectedRcpt(): boolean { return (this.evMask & SMFIP.RCPT_REJ) !== 0; }
  /** Still taking events in this connection (Postfix milter8_active). */
  get active(): boolean { return !!this.stream && (this.state === 'envelope' || this.state === 'ready'); }

  /** A communication failure (logged unless `why` is undefined: already said). */
  private commError(why: string | undefined): MilterReply {
    if (why !== undefined) this.warn(`milter ${this.name}: ${why}`);
    this.closeStream();
    const a = this.s.defaultAction.toLowerCase();
    this.defReply = a === 'accept' ? undefined
      : a === 'reject' ? '550 5.5.0 Service unavailable'
        : a === 'tempfail' ? '451 4.7.1 Service unavailable - try again later'
          : a === 'shutdown' ? '421 4.7.1 Service unavailable - try again later'
            : a === 'quarantine' ? 'Hdefault_action'
              : (this.warn(`milter ${this.name}: unrecognized default action: ${this.s.defaultAction}`), '451 4.3.5 Server configuration problem - try again later');
    this.state = 'error';
    return this.defReply;
  }

  private confError(why: string): MilterReply {
    this.warn(`milter ${this.name}: ${why}`);
    this.closeStream();
    const a = this.s.defaultAction.toLowerCase();
    this.defReply = a === 'accept' ? undefined
      : a === 'shutdown' ? '421 4.3.5 Server configuration problem - try again later'
        : a === 'quarantine' ? 'Hdefault_action'
          : '451 4.3.5 Server configuration problem - try again later';
    this.state = 'error';
    return this.defReply;
  }

  private closeStream(): void {
    this.stream?.close();
    this.stream = undefined;
  }

  /** Connect and negotiate (Postfix milter8_connect); a failure sets the default action. */
  async connect(): Promise<void> {
    const proto = parseProtocol(this.s.protocol);
    if (!proto) { this.confError(`bad protocol information: ${this.s.protocol}`); return; }
    this.npMask = NOSEND_MASK & ~proto.events;
    const colon = this.name.indexOf(':');
    const transport = colon > 0 ? this.name.slice(0, colon) : '';
    const endpoint = colon > 0 ? this.name.slice(colon + 1) : '';
    let sock: Socket;
    if (transport === 'inet') {
      const at = endpoint.lastIndexOf(':');
      let host = at > 0 ? endpoint.slice(0, at) : '';
      const port = Number(endpoint.slice(at + 1));
      if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
      if (!host || !(port > 0 && port < 65536)) { this.confError(`Milter service needs transport:endpoint instead of "${this.name}"`); return; }
      sock = netConnect({ host, port });
    } else if (transport === 'unix' || transport === 'local') {
      if (!endpoint) { this.confError(`Milter service needs transport:endpoint instead of "${this.name}"`); return; }
      sock = netConnect({ path: endpoint });
    } else {
      this.confError(`invalid transport name: ${transport} in Milter service: ${this.name}`);
      return;
    }
    sock.setNoDelay?.(true);
    const ok = await new Promise<string | undefined>((res) => {
      const t = setTimeout(() => { sock.destroy(); res('timeout'); }, this.s.connectTimeoutMs);
      sock.once('connect', () => { clearTimeout(t); res(undefined); });
      sock.once('error', (e: Error) => { clearTimeout(t); res(e.message); });
    });
    if (ok) { sock.destroy(); this.warn(`connect to Milter service ${this.name}: ${errnoText(ok)}`); this.commError(undefined); return; }
    sock.on('error', () => {});
    this.stream = new MilterStream(sock);
    try {
      await this.stream.write(encodePacket(SMFIC.OPTNEG, u32(proto.version), u32(MTA_ACTIONS), u32(proto.events)), this.s.connectTimeoutMs);
      const p = await this.stream.read(this.s.connectTimeoutMs);
      if (p.cmd !== SMFIC.OPTNEG) { this.commError(`unexpected reply "${p.cmd}" in initial handshake`); return; }
      if (p.data.length < 12) { this.commError('read error in initial handshake'); return; }
      const version = p.data.readUInt32BE(0);
      const actions = p.data.readUInt32BE(4);
      this.evMask = p.data.readUInt32BE(8);
      if (version > proto.version) { this.commError(`protocol version ${version} conflict with MTA protocol version ${proto.version}`); return; }
      if ((actions & MTA_ACTIONS) !== actions) { this.commError(`request mask 0x${actions.toString(16)} conflict with MTA request mask 0x${MTA_ACTIONS.toString(16)}`); return; }
      if (version < proto.version) {
        // An older milter: do not send it events its version does not define.
        const v = [6, 4, 3, 2].find((x) => x <= version);
        if (v) this.npMask |= NOSEND_MASK & ~VERSION_MASKS[v]!;
      }
      // Secondary negotiation: macro lists the milter asks for, per stage.
      let off = 12;
      while (off + 4 < p.data.length && (actions & SMFIF.SETSYMLIST)) {
        const stage = p.data.readUInt32BE(off);
        let end = p.data.indexOf(0, off + 4);
        if (end < 0) end = p.data.length;
        const list = p.data.toString('latin1', off + 4, end);
        if (Object.values(SMFIM).includes(stage as never)) this.macroOverride.set(stage, list);
        else this.warn(`milter ${this.name}: ignoring unknown macro type ${stage}`);
        off = end + 1;
      }
      this.state = 'ready';
      this.defReply = undefined;
      this.skipEvent = undefined;
    } catch (e) {
      this.commError(`read error in initial handshake: ${errnoText((e as Error).message)}`);
    }
  }

  /**
   * Send one event (with its macros first) and read the reply (Postfix milter8_event).
   * `noSend`: the SMFIP_NO* bit of the event; `noReply`: its SMFIP_NR_* bit.
   */
  async event(cmd: string, noSend: number, noReply: number, macros: [string, string][] | undefined, ...data: Buffer[]): Promise<MilterReply> {
    const r = await this.exchange(cmd, noSend, noReply, macros, this.s.commandTimeoutMs, undefined, data);
    return r.reply;
  }

  private async exchange(cmd: string, noSend: number, noReply: number, macros: [string, string][] | undefined,
    timeoutMs: number, edits: MilterEdit[] | undefined, data: Buffer[]): Promise<{ reply: MilterReply; done: boolean }> {
    const st = this.stream;
    if (!st || this.state === 'error') return { reply: this.defReply, done: true };
    if (noSend & this.npMask) return { reply: this.defReply, done: false };
    if (this.skipEvent !== undefined) {
      if (this.skipEvent === cmd) return { reply: this.defReply, done: false };
      this.skipEvent = undefined;
    }
    try {
      const out: Buffer[] = [];
      if (macros) {
        const kv = macros.flatMap(([k, v]) => [cstr(k), cstr(v)]);
        out.push(encodePacket(SMFIC.MACRO, Buffer.from(cmd, 'latin1'), ...kv));
      }
      const send = !(noSend & this.evMask);
      if (send) out.push(encodePacket(cmd, ...data));
      if (out.length) await st.write(out.length === 1 ? out[0]! : Buffer.concat(out), timeoutMs);
      if (!send || (noReply && (noReply & this.evMask))) return { reply: this.defReply, done: false };
    } catch (e) {
      if (e instanceof MilterIoError) return { reply: this.commError(`error writing command: ${errnoText(e.message)}`), done: true };
      throw e;
    }
    try {
      return await this.replies(cmd, st, timeoutMs, edits);
    } catch (e) {
      // Postfix's words: "milter NAME: can't read SMFIC_BODYEOB reply packet header: Connection timed out".
      if (e instanceof MilterIoError) return { reply: this.commError(`can't read ${eventName(cmd)} reply packet header: ${errnoText(e.message)}`), done: true };
      throw e;
    }
  }

  /** Read replies until a decision: progress and (after end-of-message) edits come before it. */
  private async replies(cmd: string, st: MilterStream, timeoutMs: number, edits: MilterEdit[] | undefined): Promise<{ reply: MilterReply; done: boolean }> {
    const inConnect = cmd === SMFIC.CONNECT || cmd === SMFIC.HELO;
    let bodyParts: Buffer[] | undefined;
    let bodySize = 0;
    /** Bytes of all editing requests: past sizeLimit nothing more is kept (memory stays bounded). */
    let editBytes = 0;
    let bodyDone = false;
    for (let n = 0; ; n++) {
      const p = await st.read(timeoutMs);
      const empty = p.data.length === 0;
      if (bodyParts && p.cmd !== SMFIR.REPLBODY) {
        edits!.push({ kind: 'replaceBody', body: bodyParts, size: bodySize });
        bodyParts = undefined;
        bodyDone = true;
      }
      switch (p.cmd) {
        case SMFIR.PROGRESS:
          if (!empty) break;
          continue;
        case SMFIR.CONTINUE:
          if (!empty) break;
          return { reply: this.defReply, done: false };
        case SMFIR.ACCEPT:
          if (!empty) break;
          this.state = inConnect ? 'accept_con' : 'accept_msg';
          return { reply: this.defReply, done: true };
        case SMFIR.DISCARD:
          if (!empty) break;
          if (inConnect) { this.warn(`milter ${this.name}: DISCARD action is not allowed for connect or helo`); return { reply: this.defReply, done: false }; }
          this.state = 'accept_msg';
          return { reply: 'D', done: true };
        case SMFIR.REJECT:
          if (!empty) break;
          return this.decide(inConnect, '550 5.7.1 Command rejected');
        case SMFIR.TEMPFAIL:
          if (!empty) break;
          return this.decide(inConnect, '451 4.7.1 Service unavailable - try again later');
        case SMFIR.SHUTDOWN:
          if (!empty) break;
          this.state = 'reject_con';
          this.defReply = 'S';
          return { reply: 'S', done: true };
        case SMFIR.REPLYCODE: {
          let text = p.data.toString('latin1');
          if (text.endsWith('\0')) text = text.slice(0, -1);
          if (!validSmtpReply(text)) return { reply: this.confError(`malformed reply: ${text.slice(0, 200)}`), done: true };
          // Sendmail uses the reply as a format string: "%%" means "%", a lone "%" is dropped.
          text = text.replace(/%(%?)/g, '$1');
          return this.decide(inConnect, text);
        }
        case SMFIR.QUARANTINE: {
          const reason = splitStrings(p.data)[0] ?? '';
          this.defReply = 'H' + reason.slice(0, 100);
          continue;
        }
        case SMFIR.SKIP:
          if (!empty) break;
          this.skipEvent = cmd;
          return { reply: this.defReply, done: false };
        default:
          if (cmd === SMFIC.BODYEOB && edits) {
            const e = this.edit(p.cmd, p.data, bodyDone);
            if (typeof e === 'string') return { reply: this.confError(e), done: true };
            if (e && this.sizeLimit > 0 && (editBytes += p.data.length) > this.sizeLimit) {
              // Keep reading (the final reply follows), keep nothing: the message will be refused.
              if (edits[0]?.kind !== 'tooBig') { edits.length = 0; bodyParts = undefined; edits.push({ kind: 'tooBig', size: editBytes }); }
              (edits[0] as { size: number }).size = editBytes;
              continue;
            }
            if (e) {
              if (e.kind === 'replaceBody') {
                bodyParts ??= [];
                bodySize += e.size;
                // Past the size limit only the count is kept: the edit will be refused anyway.
                if (!(this.sizeLimit > 0 && bodySize > this.sizeLimit)) bodyParts.push(...e.body);
                else bodyParts.length = 0;
              } else edits.push(e);
              continue;
            }
          }
          return { reply: this.commError(`unexpected filter response ${replyName(p.cmd)} after event ${eventName(cmd)}`), done: true };
      }
      return { reply: this.commError(`reply ${replyName(p.cmd)} was followed by ${p.data.length} data bytes`), done: true };
    }
  }

  private decide(inConnect: boolean, reply: string): { reply: MilterReply; done: boolean } {
    if (inConnect) { this.state = 'reject_con'; this.defReply = reply; }
    return { reply, done: true };
  }

  /** One editing request; a string is a protocol error, undefined an unknown request. */
  private edit(cmd: string, data: Buffer, bodyDone: boolean): MilterEdit | string | undefined {
    const lead = (this.evMask & SMFIP.HDR_LEADSPC) ? '' : ' ';
    switch (cmd) {
      case SMFIR.CHGHEADER: {
        if (data.length < 4) return 'bad change header request';
        let index = data.readInt32BE(0);
        const [name = '', value = ''] = splitStrings(data.subarray(4));
        if (index === 0) index = 1; // Sendmail compatibility
        if (index < 1) return `bad change header index: ${index}`;
        if (!name) return 'null change header name';
        return value ? { kind: 'changeHeader', index, name, value: lead + value } : { kind: 'deleteHeader', index, name };
      }
      case SMFIR.ADDHEADER: {
        const [name = '', value = ''] = splitStrings(data);
        if (!name) return 'null add header name';
        return { kind: 'addHeader', name, value: lead + value };
      }
      case SMFIR.INSHEADER: {
        if (data.length < 4) return 'bad insert header request';
        const index = data.readInt32BE(0);
        const [name = '', value = ''] = splitStrings(data.subarray(4));
        if (index + 1 < 1) return `bad insert header index: ${index}`;
        if (!name) return 'null insert header name';
        return { kind: 'insertHeader', index: index + 1, name, value: lead + value };
      }
      case SMFIR.CHGFROM: {
        const [address = '', args = ''] = splitStrings(data);
        return { kind: 'changeSender', address, args };
      }
      case SMFIR.ADDRCPT: {
        const [address = ''] = splitStrings(data);
        return { kind: 'addRecipient', address, args: '' };
      }
      case SMFIR.ADDRCPT_PAR: {
        const [address = '', args = ''] = splitStrings(data);
        return { kind: 'addRecipient', address, args };
      }
      case SMFIR.DELRCPT: {
        const [address = ''] = splitStrings(data);
        return { kind: 'deleteRecipient', address };
      }
      case SMFIR.REPLBODY:
        if (bodyDone) return 'body replacement requests can\'t currently be mixed with other requests';
        return { kind: 'replaceBody', body: [data], size: data.length };
    }
    return undefined;
  }

  /**
   * The message stage (Postfix milter8_message): headers, end of headers, body chunks, end of
   * message under milter_content_timeout; the edits come back only with a final reply.
   */
  async message(msg: MilterMessageInput, eoh: [string, string][] | undefined, eod: [string, string][] | undefined, sizeLimit = 0): Promise<{ reply: MilterReply; edits: MilterEdit[] }> {
    if (this.state !== 'envelope' || !this.stream) return { reply: this.defReply, edits: [] };
    this.sizeLimit = sizeLimit;
    this.state = 'message';
    const t = this.s.contentTimeoutMs;
    const none = { reply: this.defReply, edits: [] as MilterEdit[] };
    const leadSpace = (this.evMask & SMFIP.HDR_LEADSPC) !== 0;
    const finish = (r: { reply: MilterReply; edits: MilterEdit[] }) => {
      if (this.state === 'message' || this.state === 'accept_msg') this.state = 'envelope';
      // A quarantine request holds this message only (Postfix: cleanup's copy of the milter).
      if (this.state !== 'error' && this.defReply?.startsWith('H')) this.defReply = undefined;
      return r;
    };
    for (const h of msg.headers) {
      let value = h.value;
      if (!leadSpace && value.startsWith(' ')) value = value.slice(1);
      const r = await this.exchange(SMFIC.HEADER, SMFIP.NOHDRS, SMFIP.NR_HDR, eoh, t, undefined, [cstr(h.name), cstr(value.replace(/\r?\n/g, '\n'))]);
      if (r.done || r.reply) return finish({ reply: r.reply, edits: [] });
      if (this.skipEvent === SMFIC.HEADER) break;
    }
    let r = await this.exchange(SMFIC.EOH, SMFIP.NOEOH, SMFIP.NR_EOH, eoh, t, undefined, []);
    if (r.done || r.reply) return finish({ reply: r.reply, edits: [] });
    if (!(this.evMask & SMFIP.NOBODY)) {
      const crlf = toCrlf(msg.body);
      for (let off = 0; off < crlf.length; off += MILTER_CHUNK_SIZE) {
        r = await this.exchange(SMFIC.BODY, SMFIP.NOBODY, SMFIP.NR_BODY, eod, t, undefined, [crlf.subarray(off, off + MILTER_CHUNK_SIZE)]);
        if (r.done || r.reply) return finish({ reply: r.reply, edits: [] });
        if (this.skipEvent === SMFIC.BODY) break;
      }
    }
    if (!this.stream) return finish(none);
    const edits: MilterEdit[] = [];
    r = await this.exchange(SMFIC.BODYEOB, 0, 0, eod, t, edits, []);
    if ((this.state as State) === 'error') return finish({ reply: this.defReply, edits: [] });
    return finish({ reply: r.reply, edits });
  }

  /** A transaction ended (RSET, MAIL after HELO, end of message): SMFIC_ABORT. */
  async abort(): Promise<void> {
    if (!this.stream) return;
    if (this.state === 'envelope' || this.state === 'message' || this.state === 'accept_msg') {
      try { await this.stream.write(encodePacket(SMFIC.ABORT), this.s.commandTimeoutMs); } catch (e) { this.commError((e as Error).message); return; }
      this.state = 'envelope';
    }
  }

  /** The SMTP connection ends: SMFIC_QUIT, then close. */
  async quit(): Promise<void> {
    const st = this.stream;
    this.stream = undefined;
    this.state = 'closed';
    if (!st) return;
    try {
      await st.write(encodePacket(SMFIC.QUIT), this.s.commandTimeoutMs);
      // A half-close lets QUIT reach the milter; the socket goes away in any case.
      st.sock.end();
      setTimeout(() => st.close(), 1000).unref();
    } catch {
      st.close();
    }
  }

  /** CONNECT event (Postfix milter8_conn_event): family 4, 6, or unknown. */
  async connectEvent(clientName: string, clientAddr: string, port: number, family: 'inet' | 'inet6' | 'unix' | 'unknown', macros: [string, string][] | undefined): Promise<MilterReply> {
    if (this.state !== 'ready') return this.defReply;
    this.state = 'envelope';
    // An unknown host name is sent in Sendmail's form, "[address]".
    const smName = clientName !== 'unknown' || clientAddr === 'unknown' ? clientName : `[${clientAddr}]`;
    const fam = family === 'inet' ? SMFIA.INET : family === 'inet6' ? SMFIA.INET6 : family === 'unix' ? SMFIA.UNIX : SMFIA.UNKNOWN;
    const portBuf = Buffer.alloc(2);
    portBuf.writeUInt16BE(family === 'unix' ? 0 : port);
    const data = fam === SMFIA.UNKNOWN ? [cstr(smName), Buffer.from(fam)] : [cstr(smName), Buffer.from(fam), portBuf, cstr(clientAddr)];
    return this.event(SMFIC.CONNECT, SMFIP.NOCONNECT, SMFIP.NR_CONN, macros, ...data);
  }

  /** Is an envelope event (HELO, MAIL, RCPT, DATA, unknown) to be sent now? */
  takes(cmd: string): boolean {
    if (this.state === 'envelope') return true;
    // HELO after an accepted message still goes to the milter (Postfix milter8_helo_event).
    return cmd === SMFIC.HELO && this.state === 'accept_msg';
  }

  /** The reply of a milter that takes no more events (error, accepted or rejected connection). */
  get reply(): MilterReply { return this.defReply; }
}

/** Postfix milter8_valid_smtp_reply(): 4xx/5xx lines, "-" between, CRLF-separated, no NUL. */
export function validSmtpReply(text: string): boolean {
  if (text.includes('\0')) return false;
  const lines = text.split('\r\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const final = i === lines.length - 1;
    if (/[\r\n]/.test(l)) return false;
    if (l.length < 4 || !/^[45]\d\d/.test(l) || l[3] !== (final ? ' ' : '-')) return false;
    if (l.length > 4 && /\d/.test(l[4]!) && l[4] !== l[0]) return false;
  }
  return true;
}

/** Node's error texts in the words of Postfix's %m (strerror). */
function errnoText(m: string): string {
  if (m === 'timeout') return 'Connection timed out';
  if (/ECONNREFUSED/.test(m)) return 'Connection refused';
  if (/ENOENT/.test(m)) return 'No such file or directory';
  if (/EACCES/.test(m)) return 'Permission denied';
  if (/ECONNRESET|EPIPE/.test(m)) return 'Connection reset by peer';
  if (/closed/.test(m)) return 'Unexpected end of file';
  return m;
}

function toCrlf(b: Buffer): Buffer {
  if (b.length === 0) return b;
  const parts: Buffer[] = [];
  let start = 0;
  for (;;) {
    const i = b.indexOf(0x0a, start);
    if (i < 0) { parts.push(b.subarray(start)); break; }
    parts.push(b.subarray(start, i), CRLF);
    start = i + 1;
  }
  return Buffer.concat(parts);
}
const CRLF = Buffer.from('\r\n');

const EVENT_NAMES: Record<string, string> = Object.fromEntries(Object.entries(SMFIC).map(([k, v]) => [v, `SMFIC_${k}`]));
const REPLY_NAMES: Record<string, string> = Object.fromEntries(Object.entries(SMFIR).map(([k, v]) => [v, `SMFIR_${k}`]));
function eventName(c: string): string { return EVENT_NAMES[c] ?? '(unknown MTA event)'; }
function replyName(c: string): string { return REPLY_NAMES[c] ?? `(unknown filter reply 0x${c.charCodeAt(0).toString(16)})`; }

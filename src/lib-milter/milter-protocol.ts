/**
 * milter-protocol - the wire format of the Sendmail 8 mail filter ("milter") protocol, version 6,
 * as the MTA side speaks it (Postfix src/milter/milter8.c; libmilter's mfdef.h names): the
 * command, reply, protocol-option and action codes, packet framing, and a packet reader with
 * a deadline per packet on a socket to one milter.
 *
 * SUMMARY
 *   encodePacket(SMFIC.HELO, cstr('client.example'))        → Buffer
 *   const p = await stream.read(timeoutMs)                  → { cmd: 'c', data: Buffer }
 *
 * DESCRIPTION
 *   A packet is a 32-bit big-endian length (the command byte plus its data), the command byte,
 *   then the data: NUL-terminated strings, 32-bit big-endian integers, a 16-bit port.
 *
 *   MilterStream wraps the socket: read() resolves with one whole packet, or rejects with a
 *   MilterIoError when the milter closed the connection, sent a packet longer than
 *   MILTER_MAX_PACKET ("unreasonable packet length", as Postfix) or sent nothing whole within
 *   the deadline. write() waits for the socket to drain within its deadline, so a milter that
 *   stops reading cannot make the MTA buffer a whole message.
 *
 * SECURITY
 *   Everything read here comes from another program: every length is checked before memory is
 *   given to it.
 */
import type { Socket } from 'node:net';

/** MTA → milter commands (SMFIC_*). */
export const SMFIC = {
  ABORT: 'A', BODY: 'B', CONNECT: 'C', MACRO: 'D', BODYEOB: 'E', HELO: 'H', HEADER: 'L',
  MAIL: 'M', EOH: 'N', OPTNEG: 'O', QUIT: 'Q', RCPT: 'R', DATA: 'T', UNKNOWN: 'U', QUIT_NC: 'K',
} as const;

/** milter → MTA replies (SMFIR_*). */
export const SMFIR = {
  ADDRCPT: '+', DELRCPT: '-', ACCEPT: 'a', REPLBODY: 'b', CONTINUE: 'c', DISCARD: 'd',
  CONN_FAIL: 'f', CHGHEADER: 'm', PROGRESS: 'p', REJECT: 'r', TEMPFAIL: 't', SHUTDOWN: '4',
  ADDHEADER: 'h', INSHEADER: 'i', REPLYCODE: 'y', QUARANTINE: 'q', SKIP: 's', CHGFROM: 'e',
  ADDRCPT_PAR: '2', SETSYMLIST: 'l',
} as const;

/** Protocol options (SMFIP_*): events the milter does not want, replies it will not send. */
export const SMFIP = {
  NOCONNECT: 1 << 0, NOHELO: 1 << 1, NOMAIL: 1 << 2, NORCPT: 1 << 3, NOBODY: 1 << 4,
  NOHDRS: 1 << 5, NOEOH: 1 << 6, NR_HDR: 1 << 7, NOUNKNOWN: 1 << 8, NODATA: 1 << 9,
  SKIP: 1 << 10, RCPT_REJ: 1 << 11, NR_CONN: 1 << 12, NR_HELO: 1 << 13, NR_MAIL: 1 << 14,
  NR_RCPT: 1 << 15, NR_DATA: 1 << 16, NR_UNKN: 1 << 17, NR_EOH: 1 << 18, NR_BODY: 1 << 19,
  HDR_LEADSPC: 1 << 20,
} as const;

/** Actions the milter may ask for (SMFIF_*). */
export const SMFIF = {
  ADDHDRS: 1 << 0, CHGBODY: 1 << 1, ADDRCPT: 1 << 2, DELRCPT: 1 << 3, CHGHDRS: 1 << 4,
  QUARANTINE: 1 << 5, CHGFROM: 1 << 6, ADDRCPT_PAR: 1 << 7, SETSYMLIST: 1 << 8,
} as const;

/** Everything Postfix lets a milter do, announced in the negotiation. */
export const MTA_ACTIONS = SMFIF.ADDHDRS | SMFIF.ADDRCPT | SMFIF.DELRCPT | SMFIF.CHGHDRS | SMFIF.CHGBODY
  | SMFIF.QUARANTINE | SMFIF.CHGFROM | SMFIF.ADDRCPT_PAR | SMFIF.SETSYMLIST;

/** The events a milter may decline (SMFIP_NO*), and the replies it may decline to send. */
export const NOSEND_MASK = SMFIP.NOCONNECT | SMFIP.NOHELO | SMFIP.NOMAIL | SMFIP.NORCPT | SMFIP.NOBODY
  | SMFIP.NOHDRS | SMFIP.NOEOH | SMFIP.NOUNKNOWN | SMFIP.NODATA;
export const NOREPLY_MASK = SMFIP.NR_CONN | SMFIP.NR_HELO | SMFIP.NR_MAIL | SMFIP.NR_RCPT | SMFIP.NR_DATA
  | SMFIP.NR_UNKN | SMFIP.NR_HDR | SMFIP.NR_EOH | SMFIP.NR_BODY;

/** What each protocol version defines (Postfix milter8_event_masks). */
const V2 = SMFIP.NOCONNECT | SMFIP.NOHELO | SMFIP.NOMAIL | SMFIP.NORCPT | SMFIP.NOBODY | SMFIP.NOHDRS | SMFIP.NOEOH;
const V3 = V2 | SMFIP.NOUNKNOWN;
const V4 = V3 | SMFIP.NODATA;
const V6 = V4 | SMFIP.SKIP | SMFIP.RCPT_REJ | NOREPLY_MASK | SMFIP.HDR_LEADSPC;
export const VERSION_MASKS: Record<number, number> = { 6: V6, 4: V4, 3: V3, 2: V2 };

/** Macro stages of SMFIR_SETSYMLIST / SMFIC_MACRO (SMFIM_*). */
export const SMFIM = { CONNECT: 0, HELO: 1, ENVFROM: 2, ENVRCPT: 3, DATA: 4, EOM: 5, EOH: 6 } as const;

/** Address families of SMFIC_CONNECT (SMFIA_*). */
export const SMFIA = { UNKNOWN: 'U', UNIX: 'L', INET: '4', INET6: '6' } as const;

/** Body chunks sent to the milter (libmilter MILTER_CHUNK_SIZE). */
export const MILTER_CHUNK_SIZE = 65535;
/** The longest packet accepted from a milter (a 1 MB header fits; a body arrives in chunks). */
export const MILTER_MAX_PACKET = 16 * 1024 * 1024;

/** A NUL-terminated string. */
export function cstr(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  return Buffer.concat([b, Buffer.alloc(1)]);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

export function encodePacket(cmd: string, ...parts: Buffer[]): Buffer {
  const data = Buffer.concat(parts);
  const head = Buffer.alloc(5);
  head.writeUInt32BE(data.length + 1);
  head[4] = cmd.charCodeAt(0);
  return Buffer.concat([head, data]);
}

/** The NUL-terminated strings of a packet's data (a missing final NUL ends the last one). */
export function splitStrings(data: Buffer): string[] {
  const out: string[] = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0, start);
    if (end < 0) end = data.length;
    out.push(data.toString('latin1', start, end));
    start = end + 1;
  }
  return out;
}

export interface MilterPacket { cmd: string; data: Buffer }

/** The connection failed, was closed, timed out, or the milter broke the protocol. */
export class MilterIoError extends Error {}

/** One socket to one milter: whole packets in, writes with back-pressure, per-call deadlines. */
export class MilterStream {
  private buf: Buffer = Buffer.alloc(0);
  private readonly chunks: Buffer[] = [];
  /** Bytes in `chunks` (arrived, not yet concatenated). */
  private have = 0;
  private ended: string | undefined;
  private wake: (() => void) | undefined;
  readonly sock: Socket;

  constructor(sock: Socket) {
    this.sock = sock;
    sock.on('data', (b: Buffer) => {
      this.chunks.push(b);
      this.have += b.length;
      // A milter sending more than one packet's worth unasked is stopped by TCP, not our memory.
      if (this.buf.length + this.have > MILTER_MAX_PACKET + 5) sock.pause();
      this.wake?.();
    });
    sock.on('end', () => { this.ended ??= 'connection closed by milter'; this.wake?.(); });
    sock.on('error', (e: Error) => { this.ended ??= e.message; this.wake?.(); });
    sock.on('close', () => { this.ended ??= 'connection closed'; this.wake?.(); });
  }

  private gather(): void {
    if (this.chunks.length === 0) return;
    this.buf = Buffer.concat([this.buf, ...this.chunks.splice(0)]);
    this.have = 0;
  }

  /** One whole packet within `timeoutMs`. */
  async read(timeoutMs: number): Promise<MilterPacket> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Concatenate what arrived only when the buffer lacks a whole packet (no copying per packet).
      if (this.buf.length < 4 || this.buf.length < 4 + this.buf.readUInt32BE(0)) this.gather();
      if (this.buf.length >= 4) {
        const len = this.buf.readUInt32BE(0);
        if (len < 1) throw new MilterIoError(`bad packet length: ${len}`);
        if (len > MILTER_MAX_PACKET) throw new MilterIoError(`unreasonable packet length: ${len} > ${MILTER_MAX_PACKET}`);
        if (this.buf.length >= 4 + len) {
          const cmd = String.fromCharCode(this.buf[4]!);
          const data = Buffer.from(this.buf.subarray(5, 4 + len));
          this.buf = this.buf.subarray(4 + len);
          if (this.sock.isPaused()) this.sock.resume();
          return { cmd, data };
        }
        if (this.sock.isPaused()) this.sock.resume();
      }
      if (this.ended) throw new MilterIoError(this.ended);
      const left = deadline - Date.now();
      if (left <= 0) throw new MilterIoError('timeout');
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.wake = () => { clearTimeout(t); res(); };
      });
      this.wake = undefined;
    }
  }

  /** Write, then wait (within `timeoutMs`) until the socket takes more. */
  async write(b: Buffer, timeoutMs: number): Promise<void> {
    if (this.ended) throw new MilterIoError(this.ended);
    if (this.sock.write(b)) return;
    await new Promise<void>((res, rej) => {
      const done = (e?: Error) => {
        clearTimeout(t);
        this.sock.off('drain', ok); this.sock.off('close', closed);
        if (e) rej(e); else res();
      };
      const ok = () => done();
      const closed = () => done(new MilterIoError(this.ended ?? 'connection closed'));
      const t = setTimeout(() => done(new MilterIoError('timeout')), timeoutMs);
      this.sock.once('drain', ok);
      this.sock.once('close', closed);
    });
  }

  close(): void {
    this.ended ??= 'closed';
    this.sock.destroy();
  }
}

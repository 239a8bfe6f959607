/**
 * rec-type - CONTRACT 1 of DESIGN.md: the queue file, the only thing the receive path (cleanup)
 * and the delivery path (qmgr and the agents) share. Keep every reader and writer on this file.
 *
 * The layout is Postfix's (global/rec_type.h, cleanup/cleanup_envelope.c, cleanup_message.c,
 * cleanup_extracted.c, cleanup_final.c), so that Postfix's qmgr, postcat and postsuper read a
 * Postern queue file and Postern reads one written by Postfix's cleanup. Each record is framed by
 * src/global/record.ts as
 *
 *     record = type:u8  len (7 bits a byte, low-order first, high bit = more; 1-5 bytes)  payload[len]
 *
 * in this order (segments as in Postfix: envelope, content, extracted):
 *
 *     C            fixed-width size record, rewritten in place when the file is finished:
 *                  "%15d %15d %15d %15d %15d %15d" = content size (bytes from the first content
 *                  record to the X record), content offset (the first byte after the M record),
 *                  recipient count, qmgr flags (DSN NOTIFY bits << 1: QMGR_READ_FLAG_*), content
 *                  length (the same size again, Postfix 2.4), SMTPUTF8 flags (1 = requested)
 *     T            arrival time "sec usec"
 *     {A}          "name=value" attributes under Postfix's names (mail_proto.h MAIL_ATTR_*):
 *                  create_time, client_name, client_address, helo_name, protocol_name,
 *                  sasl_*, envelope_id and ret_flags (DSN ENVID and RET: 1 = FULL, 2 = HDRS),
 *                  encoding (7bit / 8bit: the BODY= of MAIL FROM), log_ident, ...
 *     [W]          delay warning time "%15d"
 *     S            envelope sender ('' = null sender <>)
 *     { [A notify_flags=N] [A dsn_orig_rcpt=type;addr] O R|D }   one group per recipient: the
 *                  DSN NOTIFY bits, the DSN ORCPT, O = original recipient (as the client wrote
 *                  it, before rewriting), then R = the recipient (D = done: R is rewritten to D
 *                  in place, one byte, then fsync — so a crash never re-delivers a recipient
 *                  already done). Postfix's n / o record types are read as well.
 *     M            start of the content, empty payload
 *     {N|L|w|p}    the message, one record per line without its LF: N = a line, L = a piece of
 *                  a long line (continued by the next record; cleanup cuts lines every 2048
 *                  bytes), w = padding (skipped), p = pointer "%15d" (reading continues at that
 *                  offset; 0 = none: a placeholder that can later point at added records)
 *     X            start of the extracted segment: more recipient groups (sendmail -t), A
 *                  attributes, [L] the content filter "transport:nexthop" (REC_TYPE_FILT),
 *                  [>] a redirect address (REC_TYPE_RDR): qmgr delivers to it instead of every
 *                  recipient (and ignores L then)
 *     E            end of file: a file without E is incomplete and is never delivered
 *
 * Postern's cleanup writes one pointer placeholder right after the M record: header lines known
 * only once the content is written (Authentication-Results) are appended after E, followed by a
 * pointer back, and the placeholder is rewritten to point at them (as Postfix's cleanup inserts
 * a milter's header). Older Postern versions kept the content as one M record with a 6-byte
 * padded length, and a prepend_headers attribute; the reader still reads those
 * (queue-file-reader.ts), nothing writes them any more.
 */

export const REC = {
  SIZE: 'C',
  TIME: 'T',
  WARN: 'W',
  FROM: 'S',
  ATTR: 'A',
  ORCP: 'O',
  DSN_NOTIFY: 'n',
  DSN_ORCPT: 'o',
  RCPT: 'R',
  DONE: 'D',
  MESG: 'M',
  /** A line of the content (without its LF). */
  NORM: 'N',
  /** A piece of a long line, continued by the next record (same letter as FILT, in another segment). */
  CONT: 'L',
  /** Padding in the content (skipped). */
  DTXT: 'w',
  /** Pointer "%15d": reading goes on at that offset (0 = a placeholder). */
  PTR: 'p',
  XTRA: 'X',
  /** Content filter transport:nexthop (Postfix REC_TYPE_FILT). */
  FILT: 'L',
  /** Redirect every recipient to this address (Postfix REC_TYPE_RDR). */
  RDR: '>',
  END: 'E',
} as const;
export type RecType = (typeof REC)[keyof typeof REC];

/**
 * Record types Postfix's qmgr accepts outside the content (qmgr_message.c: REC_TYPE_ENVELOPE and
 * REC_TYPE_EXTRACT of rec_type.h); any other type there makes the file corrupt.
 */
export const ENVELOPE_TYPES: ReadonlySet<string> = new Set('MCTcFILSDRO/WVA>K<ion' + 'EDRO/PreAFIL>Kon');
/** DSN NOTIFY bits (RFC 3461 §4.1), as Postfix's DSN_NOTIFY_*. 0 = not specified. */
export const DSN_NOTIFY = { NEVER: 1, SUCCESS: 2, FAILURE: 4, DELAY: 8 } as const;

/**
 * Flags of a queue file as Postern's code sees them (QueueEnvelope.flags). In the file they are
 * where Postfix keeps them: SMTPUTF8 in the C record's sixth field (SMTPUTF8_FLAG_REQUESTED),
 * EIGHTBIT as the attribute encoding=8bit.
 */
export const QF = {
  /** Message came with SMTPUTF8 (RFC 6531): agents must not deliver to a non-SMTPUTF8 server. */
  SMTPUTF8: 1,
  /** Content is 8-bit (8BITMIME body): the smtp client may need to downgrade. */
  EIGHTBIT: 2,
} as const;

/** Width of each number in the C record; the record is rewritten in place with the same length. */
export const SIZE_FIELD_WIDTH = 15;
export const SIZE_FIELDS = 6;
/** SMTPUTF8_FLAG_REQUESTED in the C record's sixth field (Postfix smtputf8.h). */
export const SMTPUTF8_FLAG_REQUESTED = 1;
/** The longest N record cleanup writes; longer lines go out as L pieces (line_length_limit). */
export const TEXT_RECORD_MAX = 2048;

/** The well-known attribute names of A records (Postfix mail_proto.h MAIL_ATTR_*). */
export const ATTR = {
  CLIENT_NAME: 'client_name',
  CLIENT_ADDR: 'client_address',
  CLIENT_PORT: 'client_port',
  HELO_NAME: 'helo_name',
  PROTO_NAME: 'protocol_name',
  SASL_USERNAME: 'sasl_username',
  SASL_METHOD: 'sasl_method',
  /** DSN ENVID (file: envelope_id). */
  DSN_ENVID: 'dsn_envid',
  /** DSN RET, FULL or HDRS (file: ret_flags=1 or 2). */
  DSN_RET: 'dsn_ret',
  LOG_IDENT: 'log_ident',
  MESSAGE_ID: 'message_id',
  /** BODY= of MAIL FROM, 7BIT or 8BITMIME (file: encoding=7bit or 8bit). */
  ENCODING: 'encoding',
  /**
   * Header fields cleanup adds once the content is written (Authentication-Results, which needs
   * the whole message first). Written into the content with a pointer record (see the header);
   * an attribute of this name is read from files of older Postern versions only.
   */
  PREPEND_HEADERS: 'prepend_headers',
} as const;

/** Postfix's attribute names for the per-recipient DSN attributes (mail_proto.h). */
export const FILE_ATTR = {
  CREATE_TIME: 'create_time',
  DSN_ENVID: 'envelope_id',
  DSN_RET: 'ret_flags',
  DSN_NOTIFY: 'notify_flags',
  DSN_ORCPT: 'dsn_orig_rcpt',
} as const;

/** DSN RET as Postfix stores it (dsn_mask.h DSN_RET_FULL / DSN_RET_HDRS). */
const RET_TO_FILE: Record<string, string> = { FULL: '1', HDRS: '2' };
const RET_FROM_FILE: Record<string, string> = { 1: 'FULL', 2: 'HDRS' };

/** An attribute as the file holds it (Postfix's name and value form). */
export function attrToFile(name: string, value: string): [string, string] {
  if (name === ATTR.DSN_ENVID) return [FILE_ATTR.DSN_ENVID, value];
  if (name === ATTR.DSN_RET) return [FILE_ATTR.DSN_RET, RET_TO_FILE[value.toUpperCase()] ?? value];
  if (name === ATTR.ENCODING) {
    const v = value.toUpperCase();
    return [name, v === '8BITMIME' || v === '8BIT' ? '8bit' : v === '7BIT' ? '7bit' : value];
  }
  return [name, value];
}

/** An attribute as Postern's code uses it, from the file's form (attrToFile() reversed). */
export function attrFromFile(name: string, value: string): [string, string] {
  if (name === FILE_ATTR.DSN_ENVID) return [ATTR.DSN_ENVID, value];
  if (name === FILE_ATTR.DSN_RET) return [ATTR.DSN_RET, RET_FROM_FILE[value] ?? value];
  if (name === ATTR.ENCODING) return [name, value === '8bit' ? '8BITMIME' : value === '7bit' ? '7BIT' : value];
  return [name, value];
}

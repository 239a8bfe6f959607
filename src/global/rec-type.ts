/**
 * rec-type - CONTRACT 1 of DESIGN.md: the queue file, the only thing the receive path (cleanup)
 * and the delivery path (qmgr and the agents) share. Keep every reader and writer on this file.
 *
 * A queue file is a sequence of typed records (Postfix global/rec_type.h:27), each framed by
 * src/global/record.ts as
 *
 *     record = type:u8  len:varint (7 bits a byte, low-order first, high bit = more)  payload[len]
 *
 * in this order (segments as in Postfix: envelope, content, extracted, end):
 *
 *     C            fixed-width size record, rewritten in place when the file is finished:
 *                  "%15d %15d %15d %15d %15d" = content offset, content length, recipient count,
 *                  flags (QF_*), reserved
 *     T            arrival time "sec usec"
 *     [W]          delay warning time "sec" (0 = none)
 *     S            envelope sender ('' = null sender <>)
 *     {A}          "name=value" attributes: client, protocol, helo, sasl, DSN envid/ret, log_ident
 *     { [O] [n] [o] R|D }   one group per recipient: O = original recipient (as the client wrote
 *                  it, before rewriting), n = DSN NOTIFY bits (decimal), o = DSN ORCPT
 *                  ("rfc822;addr"), then R = the recipient (D = done: R is rewritten to D in place,
 *                  one byte, then fsync — so a crash never re-delivers a recipient already done)
 *     M            message content: the payload IS the whole message, header and body, exactly as
 *                  cleanup produced it, with LF line endings (agents add CR for SMTP/LMTP)
 *     X            start of the extracted segment (recipients cleanup found after the content,
 *                  e.g. sendmail -t): more { [O] [n] [o] R|D } groups may follow, and {A}
 *                  attributes known only after the content (ATTR.PREPEND_HEADERS), and
 *                  [L] the content filter "transport:nexthop" (Postfix REC_TYPE_FILT: main.cf or
 *                  -o content_filter, or the last FILTER action of smtpd or header/body checks);
 *                  qmgr sends every recipient there instead of its normal route;
 *                  [>] a redirect address (Postfix REC_TYPE_RDR: the last REDIRECT action):
 *                  qmgr delivers to it instead of every recipient (and ignores L then)
 *     E            end of file: a file without E is incomplete and is never delivered
 *
 * Postern differs from Postfix on purpose in one place: Postfix keeps the content as one record
 * per line (N/L); Postern keeps it as one M record so agents stream it with one read and no
 * per-line parsing. The letters are Postfix's.
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
  XTRA: 'X',
  /** Content filter transport:nexthop (Postfix REC_TYPE_FILT). */
  FILT: 'L',
  /** Redirect every recipient to this address (Postfix REC_TYPE_RDR). */
  RDR: '>',
  END: 'E',
} as const;
export type RecType = (typeof REC)[keyof typeof REC];

/** Record types allowed before the content (REC_TYPE_ENVELOPE). */
export const ENVELOPE_TYPES: ReadonlySet<string> = new Set([REC.SIZE, REC.TIME, REC.WARN, REC.FROM, REC.ATTR, REC.FILT, REC.RDR, REC.ORCP, REC.DSN_NOTIFY, REC.DSN_ORCPT, REC.RCPT, REC.DONE]);
/** Record types allowed in the extracted segment (REC_TYPE_EXTRACT). */
export const EXTRACT_TYPES: ReadonlySet<string> = new Set([REC.ATTR, REC.FILT, REC.RDR, REC.ORCP, REC.DSN_NOTIFY, REC.DSN_ORCPT, REC.RCPT, REC.DONE]);

/** DSN NOTIFY bits (RFC 3461 §4.1), as Postfix's DSN_NOTIFY_*. 0 = not specified. */
export const DSN_NOTIFY = { NEVER: 1, SUCCESS: 2, FAILURE: 4, DELAY: 8 } as const;

/** Flags in the C record (Postfix QMGR_* / CLEANUP_FLAG_* that qmgr must know). */
export const QF = {
  /** Message came with SMTPUTF8 (RFC 6531): agents must not deliver to a non-SMTPUTF8 server. */
  SMTPUTF8: 1,
  /** Content is 8-bit (8BITMIME body): the smtp client may need to downgrade. */
  EIGHTBIT: 2,
} as const;

/** Width of each number in the C record; the record is rewritten in place with the same length. */
export const SIZE_FIELD_WIDTH = 15;
export const SIZE_FIELDS = 5;

/** The well-known attribute names of A records (Postfix mail_proto.h MAIL_ATTR_*). */
export const ATTR = {
  CLIENT_NAME: 'client_name',
  CLIENT_ADDR: 'client_address',
  CLIENT_PORT: 'client_port',
  HELO_NAME: 'helo_name',
  PROTO_NAME: 'protocol_name',
  SASL_USERNAME: 'sasl_username',
  SASL_METHOD: 'sasl_method',
  DSN_ENVID: 'dsn_envid',
  DSN_RET: 'dsn_ret',
  LOG_IDENT: 'log_ident',
  MESSAGE_ID: 'message_id',
  ENCODING: 'encoding',
  /**
   * Header fields cleanup adds once the content is written (Authentication-Results, which needs
   * the whole message first), in the extracted segment: whole header lines with LF endings.
   * The reader (queue-file-reader.ts content(), contentStream()) gives them before the content,
   * so every delivery agent sees them at the top of the message (as Postfix's cleanup splices
   * milter-added headers in with pointer records).
   */
  PREPEND_HEADERS: 'prepend_headers',
} as const;

/**
 * smtp-dot-stuff - the DATA payload the smtp/lmtp client sends for a queue file's content
 * (Postfix smtp_proto.c smtp_text_out() + smtp_fputs()): each queue line goes out followed by
 * CRLF, a line that starts with "." gets one more "." (RFC 5321 §4.5.2), and ".<CRLF>" ends the
 * data. Queue content has LF line endings (smtpd turned every CRLF into LF), so a CR left in a
 * line is part of the message, including a CR that sits right before the LF (a client that sent
 * CR CR LF): Postfix copies the line as it is, so "x\r" goes out as "x\r\r\n", never "x\r\n".
 * (lib-smtp's dotStuff() drops that CR on purpose: POP3 reads Maildir files that may already have
 * CRLF line endings.) A last line without LF is ended with CRLF, as Postfix does.
 */

const LF = 0x0a;
const DOT = 0x2e;
const DOT_BUF = Buffer.from('.');
const CRLF_BUF = Buffer.from('\r\n');
const END_BUF = Buffer.from('.\r\n');

/** LF-terminated queue content → CRLF lines, dot-stuffed, ending with ".\r\n". */
export function smtpDotStuff(content: Buffer): Buffer {
  const parts: Buffer[] = [];
  let pos = 0;
  let lineStart = true;
  while (pos < content.length) {
    const nl = content.indexOf(LF, pos);
    const end = nl < 0 ? content.length : nl;
    if (lineStart && content[pos] === DOT) parts.push(DOT_BUF);
    parts.push(content.subarray(pos, end));
    if (nl >= 0) parts.push(CRLF_BUF);
    pos = nl < 0 ? content.length : nl + 1;
    lineStart = nl >= 0;
  }
  if (!lineStart) parts.push(CRLF_BUF);
  parts.push(END_BUF);
  return Buffer.concat(parts);
}

/**
 * smtp-get - the next SMTP line from an input buffer (Postfix global/smtp_stream.c smtp_get()
 * with SMTP_GET_FLAG_SKIP), for smtpd's commands and the smtp client's replies: a line ends at
 * LF, a CR before the LF is removed, and a line longer than `limit` bytes is cut to its first
 * `limit` bytes while the rest of it, up to and including its LF, is skipped. NUL bytes are data
 * (smtpd answers them itself). At most `limit` bytes of one line are ever kept.
 *
 * smtpGet(buf, limit, state, early) returns the line (undefined when no line is complete yet)
 * and leaves what is left of buf in state.rest; `state` also carries a cut line across calls. `early` says when a cut
 * line is returned: at once, when more than `limit` bytes of it are in (smtpd, which answers
 * without waiting for the end of the line), or when its LF arrives, as smtp_get() does (the
 * smtp client).
 */

const EMPTY = Buffer.alloc(0);

/** A line longer than the limit, being skipped up to its LF. */
export class SmtpLineState {
  /** What smtpGet() left of the buffer it was given. */
  rest: Buffer = EMPTY;
  skipping = false;
  /** Its first `limit` bytes, kept until the LF when not `early`. */
  head: Buffer | undefined = undefined;
}

/** The next line of buf, or undefined; what is left of buf goes to state.rest. */
export function smtpGet(buf: Buffer, limit: number, state: SmtpLineState, early: boolean): string | undefined {
  for (;;) {
    const nl = buf.indexOf(0x0a);
    if (state.skipping) {
      if (nl < 0) { state.rest = EMPTY; return undefined; }
      buf = buf.subarray(nl + 1);
      state.skipping = false;
      const head = state.head;
      if (head !== undefined) { state.head = undefined; state.rest = buf; return head.toString('utf8'); }
      continue;
    }
    if (nl < 0) {
      if (buf.length <= limit) { state.rest = buf; return undefined; }
      const head = buf.subarray(0, limit);
      state.skipping = true;
      state.rest = EMPTY;
      if (early) return head.toString('utf8');
      state.head = head;
      return undefined;
    }
    let end = nl;
    if (end > 0 && buf[end - 1] === 0x0d) end--;
    state.rest = buf.subarray(nl + 1);
    return buf.subarray(0, Math.min(end, limit)).toString('utf8');
  }
}

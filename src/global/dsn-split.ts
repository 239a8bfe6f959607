/**
 * dsn-split - split "X.Y.Z text" into an RFC 3463 enhanced status code and the free text
 * (Postfix global/dsn_split.c). One implementation for every reader of such text: the
 * discard(8) and error(8) nexthop, smtpd access(5) actions (REJECT, DEFER, 4NN/5NN ...) and
 * cleanup header/body REJECT actions.
 *
 * DESCRIPTION
 *   dsnSplit(defaultDsn, text) takes a leading code only when it is well formed (class 2, 4 or
 *   5, then one to three digits twice) and followed by white space or the end of the text; the
 *   white space after it is skipped and the rest is the text, unchanged. Otherwise the code is
 *   defaultDsn and the text is returned as given.
 *
 *   Unlike dsn_split(), leading white space is not skipped here: each caller strips the text as
 *   its own parser does (discard and error trim the nexthop; smtpd and cleanup pass the value
 *   after the action word, already stripped).
 */

/** The code (or defaultDsn) and the text after it. */
export function dsnSplit(defaultDsn: string, text: string): { dsn: string; text: string } {
  const m = /^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)/.exec(text);
  if (m) return { dsn: `${m[1]}.${m[2]}.${m[3]}`, text: text.slice(m[0].length) };
  return { dsn: defaultDsn, text };
}

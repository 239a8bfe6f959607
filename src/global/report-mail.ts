/**
 * report-mail - the mail that carries an aggregate report (DMARC, RFC 7489 §7.2.1.1; SMTP TLS
 * reporting, RFC 8460 §5.3): a multipart message with a short human-readable text part and the
 * report itself gzip-compressed as a base64 attachment. dmarcrep(8) and tlsrpt(8) build their
 * report mails here and differ only in headers, media types and file name.
 *
 * SUMMARY
 *   gzipReportMail({ headers, contentType, boundaryPrefix, text, attachmentType, fileName, report })
 *     headers          the top headers (From, To, Subject, ...) before MIME-Version
 *     contentType      "multipart/mixed" or "multipart/report; report-type=\"tlsrpt\""
 *     text             the lines of the text/plain part (us-ascii)
 *     attachmentType   "application/gzip", "application/tlsrpt+gzip"
 *     report           the report before compression
 *   Lines end in LF (the queue's form); base64 lines are 76 characters (RFC 2045 §6.8).
 */
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export interface ReportMail {
  headers: string[];
  contentType: string;
  boundaryPrefix: string;
  text: string[];
  attachmentType: string;
  fileName: string;
  report: string | Buffer;
}

export function gzipReportMail(m: ReportMail): Buffer {
  const gz = gzipSync(Buffer.from(m.report));
  const b = `${m.boundaryPrefix}-${randomBytes(8).toString('hex')}`;
  return Buffer.from([
    ...m.headers,
    'MIME-Version: 1.0',
    `Content-Type: ${m.contentType}; boundary="${b}"`,
    '',
    `--${b}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    ...m.text,
    '',
    `--${b}`,
    `Content-Type: ${m.attachmentType}`,
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment; filename="${m.fileName}"`,
    '',
    ...(gz.toString('base64').match(/.{1,76}/g) ?? []),
    '',
    `--${b}--`,
    '',
  ].join('\n'));
}

/**
 * delivered-hdr - the Delivered-To: header of final delivery (Postfix global/delivered_hdr.c,
 * and the Return-Path:/Delivered-To: pair mail_copy.c prepends for virtual(8)): the loop check
 * every final delivery agent makes ("mail forwarding loop for X": the primary header block
 * already holds `Delivered-To: <recipient>`), and the two headers virtual(8) prepends.
 * Used by virtual(8), local(8) and pipe(8) (flag D).
 */

export function deliveryHeaders(sender: string, recipient: string): Buffer {
  return Buffer.from(`Return-Path: <${sender}>\nDelivered-To: ${recipient}\n`, 'utf8');
}

/** Does the primary header block already hold `Delivered-To: <recipient>` (case-insensitive)? */
export function hasDeliveredTo(content: Buffer, recipient: string): boolean {
  const end = headerEnd(content);
  const head = content.subarray(0, end).toString('latin1');
  const want = Buffer.from(recipient.toLowerCase(), 'utf8').toString('latin1');
  for (const m of head.matchAll(/^delivered-to:[ \t]*(.*)$/gim)) {
    if (m[1]!.trim().toLowerCase() === want) return true;
  }
  return false;
}

function headerEnd(b: Buffer): number {
  const i = b.indexOf('\n\n');
  return i < 0 ? b.length : i + 1;
}

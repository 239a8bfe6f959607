/**
 * virtual-headers - the headers a final delivery agent prepends (Postfix virtual(8)/local(8)):
 * `Return-Path: <sender>` and `Delivered-To: recipient`, and the Delivered-To loop check
 * ("mail forwarding loop for X", Postfix delivered_hdr.c looks at the primary header block).
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

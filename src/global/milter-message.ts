/**
 * milter-message - the contract between cleanup(8) and the milters of a message: what cleanup
 * shows the milters at the end of the message (headers, body) and the edits they ask for
 * (Postfix's milter_edit_callback() in src/milter/milter.c, implemented by
 * src/cleanup/cleanup_milter.c).
 *
 * SUMMARY
 *   const reply = await milters.message(editor);   // undefined, "4xx ...", "5xx ...", "D", "H<reason>", "S"
 *
 * DESCRIPTION
 *   In Postfix, smtpd(8) opens the connections to smtpd_milters, sends the connect, HELO, MAIL,
 *   RCPT and DATA events itself, and passes the open connections to cleanup(8), which sends the
 *   message as it will be queued and edits the queue file. Postern does the same in one process:
 *   smtpd's MessageMilters (src/lib-milter/milters.ts) travels to cleanup in the cleanup request
 *   (CleanupOpenOptions.milters, global/cleanup-client.ts); cleanup calls message() with a
 *   MilterMessageEditor over its message, and each milter in turn sees the message as the
 *   milters before it left it. A milter's edits are applied only after its final reply, all at
 *   once (apply()), so a milter that fails half-way changes nothing.
 *
 *   Header indexes are Postfix's: changeHeader/deleteHeader count the headers of that name as
 *   the milters saw them (the MTA's own Received: header is hidden); insertHeader counts all
 *   headers as delivered (1 = before the first).
 */

/** One header as a milter sees it: the value is what follows the colon, lines joined by LF. */
export interface MilterHeader { name: string; value: string }

export type MilterEdit =
  | { kind: 'addHeader'; name: string; value: string }
  | { kind: 'insertHeader'; index: number; name: string; value: string }
  | { kind: 'changeHeader'; index: number; name: string; value: string }
  | { kind: 'deleteHeader'; index: number; name: string }
  /**
   * The new body in the milter's CRLF form, in the pieces it came in; `size` counts every byte
   * sent, the pieces stop once it passes the editor's sizeLimit (memory stays bounded).
   */
  | { kind: 'replaceBody'; body: Buffer[]; size: number }
  | { kind: 'changeSender'; address: string; args: string }
  | { kind: 'addRecipient'; address: string; args: string }
  | { kind: 'deleteRecipient'; address: string }
  /** The milter's edits together passed the editor's sizeLimit: they were not kept (refuse). */
  | { kind: 'tooBig'; size: number };

/** cleanup's side: the message as it stands, and the application of one milter's edits. */
export interface MilterMessageEditor {
  /** message_size_limit (0: none): no edit is kept beyond it. */
  readonly sizeLimit: number;
  /** Headers (without the hidden Received:) and the body (LF line endings) as they stand. */
  current(): { headers: MilterHeader[]; body: Buffer };
  /** Apply one milter's edits at once; returns an error reply ("552 5.3.4 ...") or undefined. */
  apply(milter: string, edits: MilterEdit[]): Promise<string | undefined>;
}

/** The milters of one message (smtpd's connections, or cleanup's own non_smtpd_milters). */
export interface MessageMilters {
  /**
   * Headers, end of headers, body and end of message to each milter in turn; the first
   * decision other than "go on" ends the round: undefined (accept), "4xx/5xx ..." (reject),
   * "D" (discard), "H<reason>" (quarantine: the hold queue), "S" (421 and disconnect).
   */
  message(editor: MilterMessageEditor): Promise<string | undefined>;
  /** The transaction is over (SMFIC_ABORT to each milter). */
  abort(): Promise<void>;
}

/**
 * queue-file - what a queue file is, between the process that writes it and those that read it:
 * the recipient and envelope as both sides see them, the mode of a finished file and the form of
 * a queue ID. The record format itself is CONTRACT 1,
 * documented in rec-type.ts; the writer (cleanup, postdrop) is queue-file-writer.ts, the reader
 * (qmgr, the delivery agents, postcat) queue-file-reader.ts.
 *
 * Queue IDs (newQueueId): not derived from the inode (that needed a temporary name, an fstat
 * and a rename before the first byte), but from the creation time, like Postfix's long queue
 * IDs, in the short form's upper-case hex: 5 digits of microseconds, 8 digits of seconds, then
 * the process ID. A process's IDs strictly increase (a monotonic clock, bumped by one
 * microsecond when two fall in the same one), and the process ID separates processes, so an ID
 * is unique among live queue files; O_EXCL on the final name (retried with the next ID) covers
 * the rest (a pid reused after the clock went backwards). qmgr reads the writer's process ID
 * back (queueIdWriterPid) to tell a file still being written from a dead writer's leftover.
 */

export interface QueueRecipient {
  /** The recipient address after rewriting ('' never occurs: the null address is sender-only). */
  address: string;
  /** The address as the client gave it (RFC 3461 Original-Recipient when no ORCPT). */
  orig?: string;
  /** DSN NOTIFY bits (DSN_NOTIFY), 0 = unspecified. */
  notify?: number;
  /** DSN ORCPT "type;address" (RFC 3461 §4.2). */
  orcpt?: string;
  /** Offset of the R/D record's type byte (reading only). */
  offset?: number;
  /** Already delivered (D record). */
  done?: boolean;
}

export interface QueueEnvelope {
  queueId: string;
  /** Arrival time, ms since the epoch. */
  arrival: number;
  sender: string;
  attrs: Map<string, string>;
  recipients: QueueRecipient[];
  /** Offset of the first content record (after M): Postfix's data offset. */
  contentOffset: number;
  /** Bytes of content records up to X (the C record's content size; more than the message). */
  contentLength: number;
  flags: number;
}

/** Mode of a finished queue file in incoming; a file being written is 0600 (Postfix). */
export const COMMITTED_MODE = 0o700;

/** The last queue ID time of this process, µs since the epoch: IDs strictly increase. */
let lastIdMicros = 0;

/**
 * A new queue ID (see the header): µs (5 hex digits) + seconds (8) + process ID, upper-case hex,
 * so it passes isQueueId() and the first character still spreads hashed queue directories.
 */
export function newQueueId(): string {
  // timeOrigin + now(): wall-clock time that never goes backwards within the process.
  let us = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  if (us <= lastIdMicros) us = lastIdMicros + 1;
  lastIdMicros = us;
  const secs = Math.floor(us / 1_000_000);
  const usec = us - secs * 1_000_000;
  return (usec.toString(16).padStart(5, '0') + secs.toString(16).padStart(8, '0') + process.pid.toString(16)).toUpperCase();
}

/**
 * The process ID inside a queue ID made by newQueueId() (what follows the 13 digits of time),
 * or undefined for another form (a Postfix queue ID, a migrated queue).
 */
export function queueIdWriterPid(queueId: string): number | undefined {
  if (!/^[0-9A-F]{14,21}$/.test(queueId)) return undefined;
  const pid = parseInt(queueId.slice(13), 16);
  return pid > 0 && pid <= 4_194_304 ? pid : undefined;  // Linux pid_max is at most 2^22
}

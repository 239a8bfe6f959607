/**
 * queue-cat - `postern queue show ID`: print a queue file as postcat -q does (Postfix postcat.c):
 * the envelope records by name, the message content, the extracted segment, the end marker.
 *
 *   *** ENVELOPE RECORDS deferred/4F1C52A0A1E ***
 *   message_size:             312             199               1               0             312
 *   message_arrival_time: Fri Nov 27 19:00:00 2026
 *   sender: alice@example.org
 *   named_attribute: client_name=localhost
 *   original_recipient: Bob@example.com
 *   recipient: bob@example.com           (done_recipient: when delivered)
 *   *** MESSAGE CONTENTS deferred/4F1C52A0A1E ***
 *   ...the message...
 *   *** HEADER EXTRACTED deferred/4F1C52A0A1E ***
 *   *** MESSAGE FILE END deferred/4F1C52A0A1E ***
 *
 * The content is streamed, never read whole into memory.
 */
import { promises as fsp, constants as C } from 'node:fs';
import { decodeRecords } from './record.ts';
import { REC } from './rec-type.ts';
import type { MailQueue, QueueName } from './mail-queue.ts';
import { QueueFile } from './queue-file-reader.ts';
import { asctime } from '../util/asctime.ts';

const NAMES: Record<string, string> = {
  [REC.SIZE]: 'message_size', [REC.TIME]: 'message_arrival_time', [REC.WARN]: 'warning_message_time',
  [REC.FROM]: 'sender', [REC.ATTR]: 'named_attribute', [REC.ORCP]: 'original_recipient',
  [REC.DSN_NOTIFY]: 'dsn_notify_flags', [REC.DSN_ORCPT]: 'dsn_orig_rcpt', [REC.RCPT]: 'recipient', [REC.DONE]: 'done_recipient', [REC.FILT]: 'content_filter', [REC.RDR]: 'redirect_address',
};

function recordLine(type: string, data: Buffer): string {
  const name = NAMES[type] ?? `record_type_${type.charCodeAt(0)}`;
  let v = data.toString('utf8');
  if (type === REC.TIME) v = asctime(new Date(Number(v.split(' ')[0]) * 1000));
  return `${name}: ${v.replace(/[\0-\x08\x0b-\x1f]/g, '?')}\n`;
}

export async function showQueueFile(queue: MailQueue, q: QueueName, qid: string, write: (s: string) => void): Promise<void> {
  const path = queue.path(q, qid);
  const qf = await QueueFile.open(path, qid);
  const where = `${q}/${qid}`;
  const fh = await fsp.open(path, C.O_RDONLY);
  try {
    const env = Buffer.alloc(qf.contentOffset);
    await fh.read(env, 0, env.length, 0);
    write(`*** ENVELOPE RECORDS ${where} ***\n`);
    // The envelope ends with the M record's header: its type byte and a 6-byte padded length
    // (queue-file.ts MESG_LEN_BYTES); the content follows.
    for (const r of decodeRecords(env.subarray(0, Math.max(0, qf.contentOffset - 7)))) {
      if (r.type === REC.MESG) break;
      write(recordLine(r.type, r.data));
    }
    write(`*** MESSAGE CONTENTS ${where} ***\n`);
    let pos = qf.contentOffset;
    const end = qf.contentOffset + qf.contentLength;
    const buf = Buffer.alloc(65536);
    while (pos < end) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, end - pos), pos);
      if (bytesRead === 0) break;
      write(buf.subarray(0, bytesRead).toString('utf8'));
      pos += bytesRead;
    }
    write(`*** HEADER EXTRACTED ${where} ***\n`);
    const st = await fh.stat();
    const tail = Buffer.alloc(st.size - end);
    await fh.read(tail, 0, tail.length, end);
    for (const r of decodeRecords(tail)) {
      if (r.type === REC.END) break;
      if (r.type === REC.XTRA) continue;
      write(recordLine(r.type, r.data));
    }
    write(`*** MESSAGE FILE END ${where} ***\n`);
  } finally {
    await fh.close();
  }
}

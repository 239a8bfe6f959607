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
import { FILE_ATTR, REC } from './rec-type.ts';
import type { MailQueue, QueueName } from './mail-queue.ts';
import { QueueFile } from './queue-file-reader.ts';
import { asctime } from '../util/asctime.ts';

const NAMES: Record<string, string> = {
  [REC.SIZE]: 'message_size', [REC.TIME]: 'message_arrival_time', [REC.WARN]: 'warning_message_time',
  [REC.FROM]: 'sender', [REC.ATTR]: 'named_attribute', [REC.ORCP]: 'original_recipient',
  [REC.DSN_NOTIFY]: 'dsn_notify_flags', [REC.DSN_ORCPT]: 'dsn_orig_rcpt', [REC.RCPT]: 'recipient', [REC.DONE]: 'done_recipient', [REC.FILT]: 'content_filter', [REC.RDR]: 'redirect_address',
  c: 'create_time', F: 'full_name', I: 'content_inspector', '/': 'canceled_recipient', V: 'verp_delimiters',
  K: 'killed_recipient', i: 'dsn_envelope_id', '<': 'dsn_ret_flags', P: 'priority', r: 'return_receipt', e: 'errors_to',
};

function recordLine(type: string, data: Buffer): string {
  const name = NAMES[type] ?? `record_type_${type.charCodeAt(0)}`;
  let v = data.toString('utf8');
  if (type === REC.TIME || type === REC.WARN) return `${name}: ${asctime(new Date(Number(v.trim().split(' ')[0]) * 1000))}\n`;
  if (type === REC.ATTR && v.startsWith(`${FILE_ATTR.CREATE_TIME}=`)) {
    return `${FILE_ATTR.CREATE_TIME}: ${asctime(new Date(Number(v.slice(FILE_ATTR.CREATE_TIME.length + 1)) * 1000))}\n`;
  }
  v = v.replace(/[\0-\x08\x0b-\x1f]/g, '?');
  return `${name}: ${v}\n`;
}

/** Print the records of buf (at file offset `base`) up to M, X or E; pointers are skipped. */
function printRecords(buf: Buffer, write: (s: string) => void, stop: string): void {
  for (const r of decodeRecords(buf)) {
    if (r.type === stop || r.type === REC.END) return;
    if (r.type === REC.PTR || r.type === REC.XTRA || r.type === REC.MESG) continue;
    write(recordLine(r.type, r.data));
  }
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
    // An older Postern file ends its envelope with the M record's type and 6-byte length.
    printRecords(qf.legacy ? env.subarray(0, Math.max(0, qf.contentOffset - 7)) : env, write, REC.MESG);
    write(`*** MESSAGE CONTENTS ${where} ***\n`);
    for await (const c of qf.contentStream()) write((c as Buffer).toString('utf8'));
    write(`*** HEADER EXTRACTED ${where} ***\n`);
    const end = qf.contentOffset + qf.contentLength;
    const st = await fh.stat();
    const tail = Buffer.alloc(st.size - end);
    await fh.read(tail, 0, tail.length, end);
    printRecords(tail, write, REC.END);
    write(`*** MESSAGE FILE END ${where} ***\n`);
  } finally {
    await fh.close();
  }
}

/**
 * qmqpd - qmqpd(8), the QMQP server (Postfix src/qmqpd/qmqpd.c): one message per connection,
 * netstring-encoded (qmqpd-packet.ts), through cleanup(8) into `incoming`, for master.cf lines
 * such as `628 inet n - n - - qmqpd`.
 *
 * DESCRIPTION
 *   Only clients in qmqpd_authorized_clients may use it (default: none); others get
 *   `D Error: NAME[ADDR] is not authorized to use this service`. The whole request is read
 *   before the reply, as the protocol requires; the message is held in memory up to
 *   message_size_limit (as Postfix does), then written through cleanup (global/cleanup-client.ts) with a
 *   Received: header
 *       Received: from NAME (NAME [ADDR])
 *               by $myhostname ($mail_name) with QMQP id QID
 *               for <rcpt>; DATE            (one recipient; else "id QID; DATE" on its own line)
 *   and the reply `KOk: queued as QID` is sent only after the queue file is durable (fsync,
 *   rename, directory fsync) — the same path as smtpd. A leading "From " line becomes
 *   X-Mailbox-Line:, as Postfix does.
 *
 *   Replies (one netstring): K = accepted, Z = temporary failure, D = permanent failure
 *   (soft_bounce = yes turns D into Z). A negative reply waits qmqpd_error_delay first.
 *   Format errors ("netstring format error while receiving sender address", "netstring length
 *   exceeds storage limit while receiving message content" for an announced length above the
 *   limit — nothing of it is read) are answered with D at once and the connection is closed.
 *   A client silent for qmqpd_timeout is disconnected.
 *
 * SECURITY
 *   Talks to QMQP clients on the network: every byte is hostile. Lengths are checked before
 *   data is buffered; the sender's VERP form "prefix@origin-@[]" is reduced to the address
 *   (Postern has no VERP).
 *
 * DIAGNOSTICS
 *   `connect from NAME[ADDR]`, `QID: client=NAME[ADDR]`, `QID: NAME[ADDR]: Error: ...`
 *   (warning), `QID: NAME[ADDR]: lost connection while receiving ...`,
 *   `disconnect from NAME[ADDR]`.
 *
 * PARAMETERS
 *   qmqpd_authorized_clients, qmqpd_timeout, qmqpd_error_delay, message_size_limit,
 *   line_length_limit, soft_bounce, myhostname, mail_name; cleanup's parameters.
 */
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { MainConfig } from '../global/mail-conf.ts';
import { MailQueue } from '../global/mail-queue.ts';
import { ATTR } from '../global/rec-type.ts';
import { mailDate } from '../global/mail-date.ts';
import { Maps } from '../global/maps.ts';
import { NamadrList } from '../global/namadr-list.ts';
import { cleanupSettings, type CleanupClient, type CleanupSettings } from '../global/cleanup-client.ts';
import { logger, type Logger } from '../util/msg.ts';
import { serveSessions } from '../lib-master/master-session.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { QmqpFormatError, QmqpReader, type QmqpRequest } from './qmqpd-packet.ts';

export interface QmqpdSettings {
  clients: NamadrList;
  timeoutMs: number;
  errorDelayMs: number;
  messageSizeLimit: number;
  lineLimit: number;
  softBounce: boolean;
  myhostname: string;
  mailName: string;
  cleanup: CleanupSettings;
  /** The cleanup service (global/cleanup-client.ts), passed in by the master. */
  cleanupClient: CleanupClient;
  queue: MailQueue;
  log: Logger;
}

/**
 * qmqpd_authorized_clients, a Postfix namadr_list (default empty: no client may use the
 * service, qmqpd.c: "There is no default authorization"). Bad patterns are warned about and
 * skipped. Postern never queries DNS, so the client host name is "localhost" for loopback
 * clients and "unknown" otherwise: name patterns match only `localhost`.
 */
export function qmqpdClients(config: MainConfig, warn: (message: string) => void): Promise<NamadrList> {
  const param = 'qmqpd_authorized_clients';
  const parent = config.list('parent_domain_matches_subdomains').includes(param);
  return NamadrList.create(param, config.get(param), parent, (spec) => Maps.open(spec, { configDir: config.configDir }), config.file, warn);
}

export async function qmqpdSettings(config: MainConfig, cleanupClient: CleanupClient, log: Logger = logger('qmqpd')): Promise<QmqpdSettings> {
  const clients = await qmqpdClients(config, (w) => log.warn(w));
  return {
    clients,
    timeoutMs: (config.time('qmqpd_timeout') || 300) * 1000,
    errorDelayMs: config.time('qmqpd_error_delay') * 1000,
    messageSizeLimit: config.int('message_size_limit'),
    lineLimit: config.int('line_length_limit') || 2048,
    softBounce: config.bool('soft_bounce'),
    myhostname: config.get('myhostname'),
    mailName: config.get('mail_name') || 'Postern',
    cleanup: cleanupSettings(config),
    cleanupClient,
    queue: MailQueue.fromConfig(config),
    log,
  };
}

/** Netstring of one reply: status letter + text (qmqpd_reply()). */
function netstring(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([Buffer.from(`${b.length}:`), b, Buffer.from(',')]);
}

function ownAddresses(): Set<string> {
  const s = new Set<string>(['127.0.0.1', '::1']);
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) s.add(i.address);
  return s;
}

const OWN = ownAddresses();

/** Serve one QMQP connection; resolves when the connection is finished. */
export function qmqpdSession(st: QmqpdSettings, sock: Socket): Promise<void> {
  const addr = (sock.remoteAddress ?? 'unknown').replace(/^::ffff:(?=\d+\.)/i, '');
  const name = addr === '127.0.0.1' || addr === '::1' ? 'localhost' : 'unknown';
  const namaddr = `${name}[${addr}]`;
  const log = st.log;
  let queueId = 'NOQUEUE';
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  const reader = new QmqpReader(st.messageSizeLimit, st.lineLimit);

  return new Promise<void>((resolveSession) => {
    const finish = (): void => {
      if (closed) return;
      closed = true;
      if (timer) clearTimeout(timer);
      sock.removeAllListeners('data');
      log.info(`disconnect from ${namaddr}`);
      resolveSession();
    };
    const end = (): void => { sock.end(); finish(); };
    const reply = async (code: 'K' | 'Z' | 'D', text: string, doLog: boolean): Promise<void> => {
      if (code === 'D' && st.softBounce) code = 'Z';
      if (doLog) (code === 'K' ? log.info.bind(log) : log.warn.bind(log))(`${queueId}: ${namaddr}: ${text}`);
      if (code !== 'K' && st.errorDelayMs > 0) await new Promise((r) => setTimeout(r, st.errorDelayMs));
      if (!sock.destroyed) sock.write(netstring(code + text));
    };
    const armTimer = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => {
        log.info(`${queueId}: ${namaddr}: read/write timeout while ${reader.stage}`);
        sock.destroy();
        finish();
      }, st.timeoutMs);
    };

    sock.on('error', () => {});
    sock.on('close', () => {
      if (!closed && !reader.done) log.info(`${queueId}: ${namaddr}: lost connection while ${reader.stage}`);
      finish();
    });
    log.info(`connect from ${namaddr}`);

    void (async () => {
      let ok: boolean;
      try {
        ok = await st.clients.match(name, addr);
      } catch (e) {
        await reply('Z', `Error: temporary lookup failure: ${(e as Error).message}`, true);
        return end();
      }
      if (!ok) {
        sock.pause();
        await reply('D', `Error: ${namaddr} is not authorized to use this service`, false);
        return end();
      }
      armTimer();
      sock.on('data', (b: Buffer) => {
        if (closed || reader.done) return;
        armTimer();
        let req: QmqpRequest | undefined;
        try {
          req = reader.feed(b);
        } catch (e) {
          if (!(e instanceof QmqpFormatError)) throw e;
          sock.pause();
          if (timer) clearTimeout(timer);
          void reply('D', e.message, false).then(() => {
            log.info(`${queueId}: ${namaddr}: ${e.message}`);
            end();
          });
          return;
        }
        if (!req) return;
        sock.pause();
        if (timer) clearTimeout(timer);
        void receive(req).then(end, (err: unknown) => {
          log.error(`${queueId}: ${namaddr}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
          sock.destroy();
          finish();
        });
      });
    })();

    /** qmqpd_receive(): the request is complete; queue it and reply. */
    const receive = async (req: QmqpRequest): Promise<void> => {
      let sender = req.sender;
      // VERP request "prefix@origin-@[]": keep the plain address (no VERP in Postern).
      if (sender.endsWith('-@[]') && sender.indexOf('@') < sender.length - 4) sender = sender.slice(0, -4);
      // eslint-disable-next-line no-control-regex
      const bad = (s: string): boolean => /[\x00-\x1f\x7f]/.test(s);
      if (bad(sender) || req.recipients.some((r) => bad(r) || r === '')) {
        return reply('D', 'Error: malformed address', true);
      }
      if (req.recipients.length === 0) return reply('D', 'Error: no recipients specified', true);
      const filter = st.cleanup.config?.get('content_filter').trim();
      const c = await st.cleanupClient.open(st.cleanup, st.queue, {
        sender,
        nonSmtpdMilters: true,
        ...(filter ? { filter } : {}),
        attrs: {
          [ATTR.CLIENT_NAME]: name,
          [ATTR.CLIENT_ADDR]: addr,
          [ATTR.CLIENT_PORT]: String(sock.remotePort ?? 0),
          [ATTR.PROTO_NAME]: 'QMQP',
        },
        addMissingHeaders: OWN.has(addr),
        origin: 'local',   // qmqpd_authorized_clients: a trusted submitter (list managers)
      }).catch((e: Error) => { log.warn(`${namaddr}: cannot open a queue file: ${e.message}`); return undefined; });
      if (!c) return reply('Z', 'Error: queue file write error', true);
      queueId = c.queueId;
      log.info(`${queueId}: client=${namaddr}`);
      for (const r of req.recipients) c.addRecipient({ address: r, orig: r });
      try {
        await c.write(Buffer.from(receivedHeader(st, name, addr, queueId, req.recipients), 'utf8'));
        await c.write(contentOf(req.message));
      } catch (e) {
        await c.abort();
        log.warn(`${queueId}: ${namaddr}: ${(e as Error).message}`);
        return reply('Z', 'Error: queue file write error', true);
      }
      const r = await c.finish();
      if ('reject' in r) {
        const text = r.reject.code === 552 ? 'Error: message too large' : r.reject.code >= 500 ? `Error: ${r.reject.text.replace(/^Error: /, '')}` : 'Error: queue file write error';
        return reply(r.reject.code >= 500 ? 'D' : 'Z', text, true);
      }
      return reply('K', `Ok: queued as ${r.queueId}`, false);
    };
  });
}

function receivedHeader(st: QmqpdSettings, name: string, addr: string, qid: string, rcpts: string[]): string {
  const rfcAddr = addr.includes(':') ? `IPv6:${addr}` : addr;
  let h = `Received: from ${name} (${name} [${rfcAddr}])\n`;
  if (rcpts.length === 1) h += `\tby ${st.myhostname} (${st.mailName}) with QMQP id ${qid}\n\tfor <${rcpts[0]}>; ${mailDate()}\n`;
  else h += `\tby ${st.myhostname} (${st.mailName}) with QMQP\n\tid ${qid}; ${mailDate()}\n`;
  return h;
}

/** qmqpd_write_content(): From_ line → X-Mailbox-Line:, leading white space, final newline. */
function contentOf(m: Buffer): Buffer {
  let out = m;
  const nl = out.indexOf(0x0a);
  const firstLine = out.subarray(0, nl < 0 ? out.length : nl).toString('latin1');
  if (/^>*From /.test(firstLine)) out = Buffer.concat([Buffer.from('X-Mailbox-Line: '), out]);
  else if (out[0] === 0x20 || out[0] === 0x09) out = Buffer.concat([Buffer.from('\n'), out]);
  if (out.length > 0 && out[out.length - 1] !== 0x0a) out = Buffer.concat([out, Buffer.from('\n')]);
  return out;
}

/** The master.cf `qmqpd` service, writing through `cleanup` (the master passes it in). */
export function qmqpdService(cleanup: CleanupClient): ServiceImpl {
  return {
    name: 'qmqpd',
    async start(ctx: ServiceContext): Promise<RunningService> {
      let st = await qmqpdSettings(ctx.config, cleanup, ctx.log);
      const server = serveSessions(ctx, (sock) => qmqpdSession(st, sock));
      return {
        async reload(next: ServiceContext) {
          const old = st;
          st = await qmqpdSettings(next.config, cleanup, next.log);
          await old.clients.close();
        },
        async stop() {
          await server.stop();
          await st.clients.close();
        },
      };
    },
  };
}

/**
 * httpd - Postern's small HTTP(S) service: the port-80 listener of the ACME http-01 challenge,
 * the HTTPS host of the MTA-STS policy, and a place where other features hang their pages.
 *
 * SUMMARY
 *   main.cf:  postern_http_listen = 80                  (plain HTTP; host:port or [host]:port too)
 *             postern_https_listen = 443                (HTTPS, the mail services' certificate)
 *   The master starts this service when either list is not empty (master/master-plan.ts) and
 *   binds its sockets; nothing is served over HTTP by default.
 *
 * ADDING A ROUTE (another feature: a metrics page, a web console, client autoconfig)
 *   1. Write the route in your own module, on the contract of lib-http/http-route.ts:
 *        export function metricsRoutes(ctx: ServiceContext): HttpRoute[] {
 *          if (!ctx.config.bool('postern_metrics')) return [];
 *          return [{ name: 'metrics', path: '/metrics', handle: () => ({ status: 200, body: text() }) }];
 *        }
 *   2. Add ONE line to HTTP_ROUTES in master/master-httpd.ts (the literal table of route
 *      providers, in match order):
 *        async (ctx) => (await import('../metrics/metrics-route.ts')).metricsRoutes(ctx),
 *   Nothing in this file changes. The route gets a bounded, normalised request (no path
 *   traversal, Host checked, body already read up to its limit) and returns status/type/body.
 *   Restrict it with `host`, `scheme: 'https'`, `methods`, `maxBody` (http-route.ts).
 *
 * DESCRIPTION
 *   One node:http server parses every connection; the master's sockets hand it plain
 *   connections directly and HTTPS ones after the TLS handshake (lib-tls/tls-server.ts, with the
 *   certificate of smtpd_tls_cert_file/smtpd_tls_key_file or smtpd_tls_chain_files and SNI by
 *   tls_server_sni_maps, reloaded with the mail services' on `postern reload` or a new ACME
 *   certificate). HTTP/1.1 and 1.0 only; keep-alive within the limits below.
 *   Before the TLS handshake, a hook may take the connection (the ACME tls-alpn-01 answer,
 *   RFC 8737, given by master-httpd.ts as `tlsIntercept`).
 *
 * SECURITY
 *   Talks to anyone on the network, before any authentication. Bounds: header size
 *   (postern_http_header_limit), body size (postern_http_body_limit, and 0 for routes that take
 *   none), whole-request time and idle keep-alive time (postern_http_timeout), TLS handshake
 *   time (the same), simultaneous connections (postern_http_connection_limit: more are closed
 *   at once). Paths with "..", ".", NUL, backslash or encoded "/" are refused with 400 before
 *   any route sees them. No file is ever served from a path in a request.
 *
 * DIAGNOSTICS
 *   "refused GET /x/../y from ADDR: a "." or ".." segment in the path" (info), "route NAME
 *   failed: ..." (warning, answered 500), "connection limit N reached, ADDR refused" (warning).
 *
 * PARAMETERS
 *   postern_http_listen, postern_https_listen, postern_http_header_limit,
 *   postern_http_body_limit, postern_http_timeout, postern_http_connection_limit,
 *   smtpd_tls_cert_file, smtpd_tls_key_file, smtpd_tls_chain_files, tls_server_sni_maps.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';
import type { MainConfig } from '../global/mail-conf.ts';
import type { RunningService, ServiceContext, ServiceImpl } from '../lib-master/master-service.ts';
import { findRoute, normalizeHost, normalizePath, type HttpRequest, type HttpResponse, type HttpRoute } from '../lib-http/http-route.ts';
import { startServerTls } from '../lib-tls/tls-server.ts';
import { fileTlsProvider, type TlsContextProvider } from '../lib-tls/tls-provider.ts';
import { postfixSniMaps } from '../lib-tls/tls-sni-maps.ts';
import type { Logger } from '../util/msg.ts';

export interface HttpdSettings {
  headerLimit: number;
  bodyLimit: number;
  timeoutMs: number;
  connectionLimit: number;
}

export function httpdSettings(c: MainConfig): HttpdSettings {
  return {
    headerLimit: Math.max(1024, c.size('postern_http_header_limit')),
    bodyLimit: Math.max(0, c.size('postern_http_body_limit')),
    timeoutMs: Math.max(1, c.time('postern_http_timeout')) * 1000,
    connectionLimit: Math.max(1, c.int('postern_http_connection_limit')),
  };
}

/** The certificate HTTPS listeners present: the mail services' (smtpd's files, SNI maps). */
export function httpsTlsProvider(c: MainConfig, log: Logger): TlsContextProvider {
  const base = { protocols: c.get('smtpd_tls_protocols') };
  return fileTlsProvider({
    certFile: c.get('smtpd_tls_cert_file'),
    keyFile: c.get('smtpd_tls_key_file'),
    chainFiles: c.list('smtpd_tls_chain_files'),
    ...base,
  }, 'smtpd_tls', log, postfixSniMaps(c.get('tls_server_sni_maps'), c.configDir, base));
}

/**
 * Takes an HTTPS connection before the handshake when it is not an ordinary one (true = taken;
 * the hook then owns the socket). Used for ACME tls-alpn-01 (RFC 8737 §3).
 */
export type TlsIntercept = (sock: Socket) => Promise<boolean>;

export interface HttpdParts {
  routes: (ctx: ServiceContext) => Promise<HttpRoute[]>;
  tlsIntercept?: (ctx: ServiceContext) => TlsIntercept | undefined;
}

const peerOf = (s: Socket | undefined) => (s?.remoteAddress ?? 'unknown').replace(/^::ffff:(?=\d)/, '');

export function httpdService(parts: HttpdParts): ServiceImpl {
  return {
    name: 'httpd',
    async start(ctx: ServiceContext): Promise<RunningService> {
      const log = ctx.log;
      const st = httpdSettings(ctx.config);
      const routes = await parts.routes(ctx);
      const intercept = parts.tlsIntercept?.(ctx);
      const needTls = ctx.listeners.some((l) => l.ssl);
      const tls = needTls ? httpsTlsProvider(ctx.config, log) : undefined;
      const secure = new WeakSet<Socket>();

      const server = createServer({
        maxHeaderSize: st.headerLimit,
        requestTimeout: st.timeoutMs,
        headersTimeout: st.timeoutMs,
        keepAliveTimeout: st.timeoutMs,
        connectionsCheckingInterval: Math.min(1000, st.timeoutMs),
        requireHostHeader: false,
        joinDuplicateHeaders: true,
      }, (req, res) => { void serve(req, res); });
      // RFC 9110 §10.1.1: a client that sent Expect: 100-continue waits for 100 before its body.
      // Node sends 100 at once unless 'checkContinue' is handled; handled here, a refusal (404,
      // 405, 413 on a declared Content-Length) is the final answer before any body is sent, and
      // the client is not left writing into a connection we close (its RST lost our 413).
      server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => { void serve(req, res, true); });
      server.on('clientError', (err: NodeJS.ErrnoException, sock: Socket) => {
        const code = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
        if (sock.writable && !sock.destroyed) {
          sock.end(`HTTP/1.1 ${code} ${STATUS_CODES[code]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        } else {
          sock.destroy();
        }
        log.info(`${peerOf(sock)}: bad HTTP request (${code}): ${err.code ?? err.message}`);
      });
      // Idle sockets (no request yet, or between keep-alive requests) past the time limit.
      server.timeout = st.timeoutMs;
      server.on('timeout', (sock: Socket) => sock.destroy());

      const sockets = new Set<Socket>();
      const admit = (sock: Socket): boolean => {
        if (sockets.size >= st.connectionLimit) {
          log.warn(`connection limit ${st.connectionLimit} reached (postern_http_connection_limit), ${peerOf(sock)} refused`);
          sock.destroy();
          return false;
        }
        sockets.add(sock);
        sock.once('close', () => sockets.delete(sock));
        sock.on('error', () => {});
        return true;
      };

      const plain = (sock: Socket) => { if (admit(sock)) server.emit('connection', sock); };
      const https = (sock: Socket) => {
        if (!admit(sock)) return;
        void (async () => {
          try {
            if (intercept && await intercept(sock)) return;
            const t = await startServerTls(sock, tls!, st.timeoutMs);
            secure.add(t);
            t.on('error', () => {});
            server.emit('connection', t);
          } catch (e) {
            log.info(`${peerOf(sock)}: TLS handshake failed: ${(e as Error).message}`);
            sock.destroy();
          }
        })();
      };
      for (const l of ctx.listeners) l.accept(l.ssl ? https : plain);

      async function serve(req: IncomingMessage, res: ServerResponse, expectsContinue = false): Promise<void> {
        const scheme = secure.has(req.socket) ? 'https' : 'http';
        const peer = peerOf(req.socket);
        const method = (req.method ?? 'GET').toUpperCase();
        const target = req.url ?? '';
        const qm = target.indexOf('?');
        const rawPath = qm < 0 ? target : target.slice(0, qm);
        const send = (r: HttpResponse, head = false) => {
          const body = r.body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body, 'utf8');
          res.writeHead(r.status, {
            'Content-Type': r.type ?? 'text/plain; charset=utf-8',
            'Content-Length': String(body.length),
            'Cache-Control': 'no-store',
            'X-Content-Type-Options': 'nosniff',
            ...r.headers,
          });
          res.end(head ? undefined : body);
        };
        const refuse = (status: number, why: string) => {
          log.info(`refused ${method} ${clip(target)} from ${peer}: ${why}`);
          req.resume();
          send({ status, body: `${STATUS_CODES[status]}\n`, headers: { Connection: 'close' } }, method === 'HEAD');
        };
        const np = normalizePath(rawPath);
        if ('error' in np) return refuse(400, np.error);
        const host = normalizeHost(typeof req.headers.host === 'string' ? req.headers.host : undefined);
        if (host === undefined) return refuse(400, 'malformed Host header');
        const route = findRoute(routes, scheme, host, np.path);
        if (!route) { req.resume(); send({ status: 404, body: 'Not Found\n' }, method === 'HEAD'); return; }
        const methods = route.methods ?? ['GET', 'HEAD'];
        if (!methods.includes(method)) {
          req.resume();
          send({ status: 405, body: 'Method Not Allowed\n', headers: { Allow: methods.join(', ') } }, method === 'HEAD');
          return;
        }
        const maxBody = Math.min(route.maxBody ?? 0, st.bodyLimit);
        const declared = Number(req.headers['content-length'] ?? 0);
        if (declared > maxBody) return refuse(413, `body of ${declared} bytes, route ${route.name} takes at most ${maxBody}`);
        let body: Buffer;
        if (expectsContinue) res.writeContinue();
        try {
          body = await readBody(req, maxBody);
        } catch (e) {
          return refuse(413, (e as Error).message);
        }
        const request: HttpRequest = {
          method, path: np.path, query: new URLSearchParams(qm < 0 ? '' : target.slice(qm + 1)), host,
          headers: req.headers, body, remoteAddress: peer, scheme,
        };
        let answer: HttpResponse;
        try {
          answer = await route.handle(request);
        } catch (e) {
          log.warn(`route ${route.name} failed: ${(e as Error).message}`);
          answer = { status: 500, body: 'Internal Server Error\n' };
        }
        if (!res.headersSent && !res.destroyed) send(answer, method === 'HEAD');
      }

      return {
        async stop() {
          server.closeIdleConnections();
          const deadline = setTimeout(() => { for (const s of sockets) s.destroy(); }, Math.min(st.timeoutMs, 10_000));
          deadline.unref();
          while (sockets.size > 0) {
            await new Promise((r) => setTimeout(r, 50));
            server.closeIdleConnections();
          }
          clearTimeout(deadline);
          tls?.close();
        },
      };
    },
  };
}

/** The body, refused past `max` bytes (chunked bodies have no Content-Length to check first). */
function readBody(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    req.on('data', (d: Buffer) => {
      n += d.length;
      if (n > max) { req.removeAllListeners('data'); req.resume(); reject(new Error(`body over ${max} bytes`)); return; }
      parts.push(d);
    });
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function clip(s: string): string {
  const t = s.replace(/[^\x20-\x7e]/g, '?');
  return t.length > 120 ? `${t.slice(0, 120)}...` : t;
}

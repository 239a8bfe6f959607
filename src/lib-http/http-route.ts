/**
 * http-route - THE ROUTE CONTRACT of Postern's HTTP service (httpd/httpd.ts): what a feature
 * gives the HTTP listener to answer some of its requests (the ACME http-01 challenge, the
 * MTA-STS policy, a metrics page, client autoconfiguration, ...).
 *
 *   const route: HttpRoute = {
 *     name: 'mta-sts',                                   // for log lines
 *     host: (h) => h.startsWith('mta-sts.'),             // optional: any host when absent
 *     path: '/.well-known/mta-sts.txt',                  // exact; `prefix: true` for a subtree
 *     scheme: 'https',                                   // 'http' | 'https' | 'any' (default)
 *     handle: async (req) => ({ status: 200, type: 'text/plain', body: policyText }),
 *   };
 *
 * The service does everything protocol-level before a route sees the request, so that a route
 * is a pure function of a small, already-checked request:
 *   - the request line and header are limited by postern_http_header_limit (431 above it), the
 *     body by postern_http_body_limit and by the route's own `maxBody` (default 0: a route that
 *     takes no body gets 413 for one); the whole request must arrive within postern_http_timeout
 *     (408), an idle keep-alive connection is closed after the same time;
 *   - the path is percent-decoded once and refused (400) when it holds NUL, a backslash, an
 *     encoded "/" or a "." or ".." segment: a route never has to think about path traversal;
 *   - Host is lowercased, without port or trailing dot, and checked to be a host name or an
 *     IP literal (400 otherwise);
 *   - methods other than the route's (`methods`, default GET and HEAD) get 405 with Allow;
 *     HEAD is answered from the GET answer without its body.
 * A route that throws gets 500 (logged with the route's name); the connection goes on.
 *
 * Matching: the first route in table order whose scheme, host and path match; exact paths
 * match only themselves, a `prefix: true` path "/a/b/" matches "/a/b/" and anything below it.
 * No route → 404.
 */

/** A request as a route sees it (already bounded and normalised by the service). */
export interface HttpRequest {
  method: string;
  /** The decoded path, always starting with "/", never with "." or ".." segments. */
  path: string;
  query: URLSearchParams;
  /** Lowercase host name or IP literal without port; '' when the request had no Host. */
  host: string;
  /** Header fields, lowercase names (node:http's IncomingMessage.headers). */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
  /** Client address (IPv4-mapped IPv6 addresses unmapped). */
  remoteAddress: string;
  scheme: 'http' | 'https';
}

export interface HttpResponse {
  status: number;
  /** Content-Type (default text/plain; charset=utf-8). */
  type?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface HttpRoute {
  /** Short name for log lines ("acme-http-01", "mta-sts", "metrics"). */
  name: string;
  host?: string | ((host: string) => boolean);
  path: string;
  /** `path` (ending in "/") names a subtree. */
  prefix?: boolean;
  scheme?: 'http' | 'https' | 'any';
  /** Accepted methods, uppercase (default GET, HEAD). */
  methods?: readonly string[];
  /** Largest body this route accepts, in bytes (default 0); capped by postern_http_body_limit. */
  maxBody?: number;
  handle(req: HttpRequest): HttpResponse | Promise<HttpResponse>;
}

/** Why a request path was refused, or its decoded form. */
export function normalizePath(raw: string): { path: string } | { error: string } {
  if (!raw.startsWith('/')) return { error: 'the request target is not an absolute path' };
  if (/%2f|%5c|%00/i.test(raw)) return { error: 'encoded "/", "\\" or NUL in the path' };
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return { error: 'bad percent-encoding in the path' };
  }
  if (path.includes('\0') || path.includes('\\')) return { error: 'NUL or "\\" in the path' };
  // RFC 3986 §5.2.4 would remove dot segments; a server that is only ever asked for fixed
  // paths refuses them instead (a path traversal attempt is never a legitimate request here).
  if (path.split('/').some((s) => s === '.' || s === '..')) return { error: 'a "." or ".." segment in the path' };
  if (/[\x00-\x1f\x7f]/.test(path)) return { error: 'a control character in the path' };
  return { path };
}

/** The Host header → lowercase name without port and trailing dot, or undefined when malformed. */
export function normalizeHost(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return '';
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(raw.trim());
  if (!m) return undefined;
  return m[1]!.toLowerCase().replace(/\.$/, '');
}

/** The first route that matches (table order), or undefined. */
export function findRoute(routes: readonly HttpRoute[], scheme: 'http' | 'https', host: string, path: string): HttpRoute | undefined {
  for (const r of routes) {
    const s = r.scheme ?? 'any';
    if (s !== 'any' && s !== scheme) continue;
    if (r.host !== undefined && !(typeof r.host === 'string' ? r.host.toLowerCase() === host : r.host(host))) continue;
    if (r.prefix ? path.startsWith(r.path) : path === r.path) return r;
  }
  return undefined;
}

/**
 * tls-provider - the server certificate a service hands to NEW TLS handshakes, re-read on
 * `postern reload` without a restart, with per-name certificates chosen by SNI.
 *
 *   const tls = new TlsContextProvider('smtpd_tls_cert_file', () => ({ context, names, files }), log);
 *   startServerTls(sock, tls, timeoutMs)   // uses tls.secureContext() and tls.sniCallback
 *
 * Reload: the master calls reloadTlsContexts() on every reload (SIGHUP), whether or not the
 * configuration text changed — replacing a certificate file is not a configuration change; the
 * ACME client calls it after installing a certificate. Threads and child processes of services
 * are asked to reload theirs through the forwarders the master registers.
 * Each live provider hashes its files; when any byte changed it rebuilds its contexts, and new
 * handshakes get the new certificate. Sessions already established keep theirs (the TLS session
 * holds its own reference to the old context). A file that cannot be read or a key that does not
 * match keeps the previous certificate, with a warning naming the parameter (as the master keeps
 * the running configuration on a configuration error).
 * Postfix and Dovecot re-read certificates only in new processes (`postfix reload` /
 * `doveadm reload` restart their daemons); the effect for a client is the same.
 *
 * SNI (RFC 6066 §3): `names` maps a lowercase host name, or `*.domain` (one label), to its own
 * context: Dovecot `local_name NAME { ssl_cert ssl_key }`, Postfix tls_server_sni_maps. A client
 * that sends no name or an unknown one gets the default certificate.
 *
 * The registry of live providers holds weak references, so a stopped service's provider goes
 * away with it even when nobody calls close().
 */
import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { SecureContext } from 'node:tls';
import type { Logger } from '../util/msg.ts';
import { serverContext, TlsConfigError, type TlsContextSource, type TlsServerFiles } from './tls-server.ts';

/** What a provider's loader builds from the configuration. */
export interface TlsContexts {
  context: SecureContext;
  /** SNI name (lowercase, or `*.example.com`) → context. */
  names?: Map<string, SecureContext>;
  /** Every file the contexts were read from (change detection on reload). */
  files: string[];
  /**
   * Names not in `names`: an asynchronous lookup (Postfix tls_server_sni_maps); undefined =
   * the default certificate. Its results may be cached; `flush()` is called on every reload.
   */
  lookup?: { find(name: string): Promise<SecureContext | undefined>; flush(): void };
}

export type TlsReloadResult = 'unchanged' | 'reloaded' | 'failed';

const live = new Set<WeakRef<TlsContextProvider>>();

export class TlsContextProvider implements TlsContextSource {
  /** For log lines: the parameter the certificate comes from ("smtpd_tls_cert_file", "ssl_cert"). */
  readonly label: string;
  private readonly load: () => TlsContexts;
  private readonly log: Logger | undefined;
  private current: TlsContexts;
  private digest: string;
  private readonly ref = new WeakRef(this);
  /** Number of successful reloads that changed the certificate (tests, diagnostics). */
  generation = 0;

  /** Loads now: a bad certificate throws (TlsConfigError) as at start-up. */
  constructor(label: string, load: () => TlsContexts, log?: Logger) {
    this.label = label;
    this.load = load;
    this.log = log;
    this.current = load();
    this.digest = filesDigest(this.current.files) ?? '';
    live.add(this.ref);
  }

  /** The default context for the next handshake. */
  secureContext(): SecureContext { return this.current.context; }

  /** Has per-name certificates (the TLS socket then gets an SNICallback). */
  get hasNames(): boolean { return (this.current.names?.size ?? 0) > 0 || this.current.lookup !== undefined; }

  /** The context for an SNI name: exact, then `*.parent`, else the default. */
  contextFor(servername: string | undefined): SecureContext {
    const names = this.current.names;
    if (!servername || !names || names.size === 0) return this.current.context;
    const n = servername.toLowerCase().replace(/\.$/, '');
    const exact = names.get(n);
    if (exact) return exact;
    const dot = n.indexOf('.');
    if (dot > 0) {
      const wild = names.get(`*${n.slice(dot)}`);
      if (wild) return wild;
    }
    return this.current.context;
  }

  /** node:tls SNICallback shape. */
  readonly sniCallback = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    const names = this.current.names;
    const lookup = this.current.lookup;
    const n = (servername ?? '').toLowerCase().replace(/\.$/, '');
    if (!lookup || !n || names?.has(n)) { cb(null, this.contextFor(servername)); return; }
    const fallback = this.contextFor(servername);
    lookup.find(n).then((c) => cb(null, c ?? fallback), (e: Error) => {
      // A broken table or file: the default certificate, and the administrator is told.
      this.log?.warn(`TLS SNI lookup of ${n}: ${e.message}; using the default certificate`);
      cb(null, fallback);
    });
  };

  /** Re-read the files when they changed. Never throws. */
  reload(): TlsReloadResult {
    this.current.lookup?.flush();
    const d = filesDigest(this.current.files);
    if (d !== undefined && d === this.digest) return 'unchanged';
    let next: TlsContexts;
    try {
      next = this.load();
    } catch (e) {
      this.log?.warn(`TLS certificate reload failed: ${(e as Error).message}; keeping the previous certificate`);
      return 'failed';
    }
    this.current = next;
    this.digest = filesDigest(next.files) ?? '';
    this.generation++;
    this.log?.info(`TLS certificate reloaded (${this.label}): ${certSummary(next.files[0])}`);
    return 'reloaded';
  }

  /** Stop taking part in reloads (service stopped). */
  close(): void { live.delete(this.ref); }
}

const forwarders = new Set<() => void>();

/**
 * Services in other threads or processes have providers of their own: the master registers a
 * forwarder per thread or child process that asks it to reload too (master-thread.ts,
 * master-process.ts). Returns the remover.
 */
export function addTlsReloadForwarder(fn: () => void): () => void {
  forwarders.add(fn);
  return () => { forwarders.delete(fn); };
}

/**
 * Re-read the certificate files of every live provider (the master's reload, a new ACME
 * certificate), and ask every other thread and process of services to do the same. Returns the
 * number of providers of this thread whose certificate changed.
 */
export function reloadTlsContexts(): number {
  for (const f of forwarders) { try { f(); } catch { /* a thread or child that is going away */ } }
  let changed = 0;
  for (const ref of [...live]) {
    const p = ref.deref();
    if (!p) { live.delete(ref); continue; }
    if (p.reload() === 'reloaded') changed++;
  }
  return changed;
}

/** SHA-256 over every file's bytes; undefined when one is unreadable (forces a reload attempt). */
function filesDigest(files: string[]): string | undefined {
  const h = createHash('sha256');
  try {
    for (const f of files) { h.update(f); h.update('\0'); h.update(readFileSync(f)); h.update('\0'); }
  } catch {
    return undefined;
  }
  return h.digest('hex');
}

/** "subject CN=mail.example.com, serial 0A1B..., SHA256 fingerprint AB:CD:..." of a PEM file's first certificate. */
export function certSummary(file: string | undefined): string {
  if (!file) return 'no certificate file';
  try {
    const pem = readFileSync(file, 'latin1');
    const m = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(pem);
    if (!m) return `${file}: no certificate`;
    const x = new X509Certificate(m[0]);
    return `${file}: subject ${x.subject.replace(/\n/g, ', ')}, serial ${x.serialNumber}, SHA256 fingerprint ${x.fingerprint256}`;
  } catch (e) {
    return `${file}: ${(e as Error).message}`;
  }
}

/**
 * A provider over fixed files (Postfix's smtpd_tls_cert_file/key_file/chain_files): reloaded
 * when any of them changes.
 */
export function fileTlsProvider(f: TlsServerFiles, paramPrefix: string, log?: Logger, sni?: TlsContexts['lookup']): TlsContextProvider {
  const files = [...(f.chainFiles && f.chainFiles.length ? f.chainFiles : [f.certFile, f.keyFile || f.certFile].filter(Boolean)), ...(f.caFile ? [f.caFile] : [])];
  return new TlsContextProvider(`${paramPrefix}_cert_file`, () => ({ context: serverContext(f, paramPrefix), files, ...(sni ? { lookup: sni } : {}) }), log);
}

/** A host name as SNI may carry it (RFC 6066 §3: a DNS name, no IP literal, no trailing dot). */
function validSniName(n: string): boolean {
  return n.length > 0 && n.length <= 253 && /^[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?)*$/.test(n);
}

/**
 * Postfix's tls_server_sni_maps (3.4+): the SNI name is looked up, then each parent domain
 * with its leading dot (mail.example.com, .example.com, .com — tls_server.c
 * server_sni_callback()); the result is a list of PEM files in smtpd_tls_chain_files form (key,
 * then its certificate chain). Postern reads the files named in the table (Postfix's `postmap
 * -F` form, with the file contents inside an indexed table, is not supported). Contexts are
 * cached per result until the next reload. A name that is not a valid host name is not looked
 * up (the default certificate).
 */
export function postfixSniLookup(
  find: (key: string) => Promise<string | undefined>,
  base: Omit<TlsServerFiles, 'certFile' | 'keyFile' | 'chainFiles'>,
  param = 'tls_server_sni_maps',
): NonNullable<TlsContexts['lookup']> {
  let cache = new Map<string, Promise<SecureContext | undefined>>();
  const byName = async (name: string): Promise<SecureContext | undefined> => {
    if (!validSniName(name)) return undefined;
    let value: string | undefined;
    for (let key = name; ; ) {
      value = await find(key);
      if (value !== undefined) break;
      const dot = key.indexOf('.', key.startsWith('.') ? 1 : 0);
      if (dot < 0) return undefined;
      key = key.slice(dot);
    }
    const files = value.split(/[\s,]+/).filter(Boolean);
    if (files.length === 0) throw new TlsConfigError(`${param}: ${name}: empty result (expected the key and certificate chain file names)`);
    let c = cache.get(value);
    if (!c) {
      const v = value;
      c = Promise.resolve().then(() => {
        try {
          return serverContext({ ...base, certFile: files[0]!, keyFile: files[0]!, chainFiles: files }, param);
        } catch (e) {
          throw new TlsConfigError(`${param}: ${name} → ${v}: ${(e as Error).message.replace(/^[^:]*\([^)]*\): /, '')}`);
        }
      });
      cache.set(value, c);
      c.catch(() => cache.delete(value!));
    }
    return c;
  };
  return { find: byName, flush: () => { cache = new Map(); } };
}

/**
 * policy-client - the client side of Postfix's SMTP access policy delegation
 * (SMTPD_POLICY_README; smtpd/smtpd_check.c check_policy_service() and policy_client_register()):
 * one request per restriction evaluation, the server's `action=` answered back.
 *
 * SUMMARY
 *   const s = policySettings('{ inet:127.0.0.1:10023, timeout=10s, default_action=DUNNO }', config);
 *   const pc = new PolicyClient(s, config.get('queue_directory'));
 *   const action = await pc.query(request);   // "DUNNO", "DEFER_IF_PERMIT Greylisted", ...
 *
 * REQUEST
 *   The attributes Postfix 3.7 sends, in its order (policyAttributes(); measured against the
 *   real smtpd by test/interop/policy-vs-postfix.test.ts), then compatibility_level and
 *   mail_version (Postfix 3.8; policy servers ignore attributes they do not know):
 *     request=smtpd_access_policy, protocol_state, protocol_name, client_address, client_name,
 *     client_port, reverse_client_name, server_address, server_port, helo_name, sender,
 *     recipient, recipient_count, queue_id, instance, size, etrn_domain, stress, sasl_method,
 *     sasl_username, sasl_sender, ccert_subject, ccert_issuer, ccert_fingerprint,
 *     ccert_pubkey_fingerprint, encryption_protocol, encryption_cipher, encryption_keysize,
 *     policy_context, compatibility_level, mail_version.
 *
 * SETTINGS (main.cf, or per service in the `{ server, name=value, ... }` form of Postfix 3.0)
 *   smtpd_policy_service_timeout (timeout=), _max_idle (max_idle=), _max_ttl (max_ttl=),
 *   _request_limit (request_limit=), _try_limit (try_limit=), _retry_delay (retry_delay=),
 *   _default_action (default_action=), _policy_context (policy_context=). Values with white
 *   space or commas go in braces: `default_action={450 4.7.1 try again}`.
 *
 * FAILURES
 *   query() throws AttrClientError (attr-clnt.ts) when the server cannot be reached, times
 *   out, closes, answers garbage or too much, or answers without `action=`, after
 *   smtpd_policy_service_try_limit attempts; the caller then applies the default action.
 */
import { AttrClient, AttrClientError, type AttrClientOptions } from './attr-clnt.ts';
import type { MainConfig } from './mail-conf.ts';

/** The smtpd_policy_service_* connection settings (attr-clnt.ts) and what to do with the answer. */
export interface PolicySettings extends Omit<AttrClientOptions, 'baseDir'> {
  /** inet:host:port or unix:path. */
  server: string;
  /** The action used when the service fails (smtpd_policy_service_default_action). */
  defaultAction: string;
  policyContext: string;
}

/** What smtpd knows when it asks (SMTPD_POLICY_README "Protocol description"). */
export interface PolicyRequest {
  protocolState: string;
  protocolName: string;
  heloName: string;
  queueId: string;
  sender: string;
  recipient: string;
  recipientCount: number;
  clientAddress: string;
  clientName: string;
  reverseClientName: string;
  clientPort: number;
  serverAddress: string;
  serverPort: number;
  instance: string;
  size: number;
  etrnDomain: string;
  stress: string;
  saslMethod: string;
  saslUsername: string;
  saslSender: string;
  ccertSubject: string;
  ccertIssuer: string;
  ccertFingerprint: string;
  ccertPubkeyFingerprint: string;
  encryptionProtocol: string;
  encryptionCipher: string;
  encryptionKeysize: number;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** "10s", "2m", "30" (seconds) → ms; undefined when malformed. */
function timeMs(v: string): number | undefined {
  const m = /^(\d+)([smhdw]?)$/.exec(v.trim());
  return m ? Number(m[1]) * (UNITS[m[2] || 's'] ?? 1) * 1000 : undefined;
}

/** Split at commas and white space outside braces; strip one level of braces from each token. */
function tokens(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let depth = 0;
  for (const ch of s) {
    if (depth === 0 && /[\s,]/.test(ch)) { if (cur) out.push(cur); cur = ''; continue; }
    if (ch === '{') depth++;
    else if (ch === '}' && depth > 0) depth--;
    cur += ch;
  }
  if (cur) out.push(cur);
  return out;
}

function unbrace(s: string): string {
  const t = s.trim();
  return t.startsWith('{') && t.endsWith('}') ? t.slice(1, -1).trim() : t;
}

/**
 * The settings of one check_policy_service argument: main.cf's smtpd_policy_service_*, with the
 * per-service overrides of the `{ server, name=value, ... }` form. Throws Error with the text to
 * log for a malformed argument (smtpd answers it as a configuration error).
 */
export function policySettings(spec: string, config: MainConfig): PolicySettings {
  const s: PolicySettings = {
    server: spec.trim(),
    timeoutMs: config.time('smtpd_policy_service_timeout') * 1000,
    maxIdleMs: config.time('smtpd_policy_service_max_idle') * 1000,
    maxTtlMs: config.time('smtpd_policy_service_max_ttl') * 1000,
    requestLimit: config.int('smtpd_policy_service_request_limit'),
    tryLimit: config.int('smtpd_policy_service_try_limit'),
    retryDelayMs: config.time('smtpd_policy_service_retry_delay') * 1000,
    defaultAction: config.get('smtpd_policy_service_default_action'),
    policyContext: config.get('smtpd_policy_service_policy_context'),
  };
  const t = spec.trim();
  if (!t.startsWith('{')) return s;
  if (!t.endsWith('}')) throw new Error(`check_policy_service: missing '}' in "${t}"`);
  const parts = tokens(t.slice(1, -1));
  if (parts.length === 0) throw new Error(`check_policy_service: no server address in "${t}"`);
  s.server = unbrace(parts[0]!);
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Error(`check_policy_service: missing '=' in "${p}" in "${t}"`);
    const name = p.slice(0, eq).trim();
    const value = unbrace(p.slice(eq + 1));
    const time = () => {
      const v = timeMs(value);
      if (v === undefined || v <= 0) throw new Error(`check_policy_service: bad ${name} value "${value}" in "${t}"`);
      return v;
    };
    const int = () => {
      if (!/^\d+$/.test(value)) throw new Error(`check_policy_service: bad ${name} value "${value}" in "${t}"`);
      return Number(value);
    };
    switch (name) {
      case 'timeout': s.timeoutMs = time(); break;
      case 'max_idle': s.maxIdleMs = time(); break;
      case 'max_ttl': s.maxTtlMs = time(); break;
      case 'retry_delay': s.retryDelayMs = time(); break;
      case 'request_limit': s.requestLimit = int(); break;
      case 'try_limit': s.tryLimit = int(); break;
      case 'default_action': s.defaultAction = value; break;
      case 'policy_context': s.policyContext = value; break;
      default: throw new Error(`check_policy_service: unknown attribute "${name}" in "${t}"`);
    }
  }
  return s;
}

/** The request as Postfix writes it: names and values, in order. */
export function policyAttributes(r: PolicyRequest, s: PolicySettings, compatibilityLevel: string, mailVersion: string): [string, string][] {
  return [
    ['request', 'smtpd_access_policy'],
    ['protocol_state', r.protocolState],
    ['protocol_name', r.protocolName],
    ['client_address', r.clientAddress],
    ['client_name', r.clientName],
    ['client_port', String(r.clientPort)],
    ['reverse_client_name', r.reverseClientName],
    ['server_address', r.serverAddress],
    ['server_port', String(r.serverPort)],
    ['helo_name', r.heloName],
    ['sender', r.sender],
    ['recipient', r.recipient],
    ['recipient_count', String(r.recipientCount)],
    ['queue_id', r.queueId],
    ['instance', r.instance],
    ['size', String(r.size)],
    ['etrn_domain', r.etrnDomain],
    ['stress', r.stress],
    ['sasl_method', r.saslMethod],
    ['sasl_username', r.saslUsername],
    ['sasl_sender', r.saslSender],
    ['ccert_subject', r.ccertSubject],
    ['ccert_issuer', r.ccertIssuer],
    ['ccert_fingerprint', r.ccertFingerprint],
    ['ccert_pubkey_fingerprint', r.ccertPubkeyFingerprint],
    ['encryption_protocol', r.encryptionProtocol],
    ['encryption_cipher', r.encryptionCipher],
    ['encryption_keysize', String(r.encryptionKeysize)],
    ['policy_context', s.policyContext],
    ['compatibility_level', compatibilityLevel],
    ['mail_version', mailVersion],
  ];
}

/** One policy service (one check_policy_service argument): its connections and its settings. */
export class PolicyClient {
  readonly settings: PolicySettings;
  private readonly client: AttrClient;
  private readonly compat: string;
  private readonly version: string;

  constructor(settings: PolicySettings, config: MainConfig) {
    this.settings = settings;
    this.compat = config.get('compatibility_level');
    this.version = config.get('mail_version');
    this.client = new AttrClient(settings.server, {
      timeoutMs: settings.timeoutMs, maxIdleMs: settings.maxIdleMs, maxTtlMs: settings.maxTtlMs,
      requestLimit: settings.requestLimit, tryLimit: settings.tryLimit, retryDelayMs: settings.retryDelayMs,
      baseDir: config.get('queue_directory'),
    });
  }

  /** The server's action. Throws AttrClientError (naming the server) when the service fails. */
  async query(r: PolicyRequest): Promise<string> {
    const reply = await this.client.request(policyAttributes(r, this.settings, this.compat, this.version));
    const action = reply.get('action');
    if (action === undefined) throw new AttrClientError(`missing attribute action in input from ${this.settings.server}`);
    return action;
  }

  close(): Promise<void> { return this.client.close(); }
}

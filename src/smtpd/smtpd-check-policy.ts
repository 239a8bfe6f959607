/**
 * smtpd-check-policy - the check_policy_service restriction (Postfix smtpd_check.c
 * check_policy_service(); SMTPD_POLICY_README): ask a policy server about the current stage and
 * act on its `action=` exactly as on an access(5) table value (smtpd-check-table.ts
 * tableResult(): OK, DUNNO, REJECT, DEFER, DEFER_IF_PERMIT, 4NN/5NN text, HOLD, DISCARD, WARN,
 * restriction names ...).
 *
 * Contract: `check_policy_service SERVER` or `check_policy_service { SERVER, name=value, ... }`
 * (global/policy-client.ts parses the per-service settings). The request carries what the
 * session knows (SmtpdState): protocol_state is the stage (CONNECT, EHLO/HELO, MAIL, RCPT,
 * DATA, END-OF-MESSAGE), recipient_count is the number of accepted recipients at DATA and
 * END-OF-MESSAGE and 0 before, size the SIZE= of MAIL FROM (0 without), queue_id the queue file
 * once the first recipient was accepted, instance one value per mail transaction. When the
 * service fails (global/attr-clnt.ts: timeout, refused, closed, garbage, too long, no action=;
 * after smtpd_policy_service_try_limit attempts) the warning names the server and
 * smtpd_policy_service_default_action ("451 4.3.5 Server configuration problem") is used
 * as the action. A malformed argument logs a warning and answers 451 4.3.5 Server
 * configuration error, as any other restriction configuration error.
 */
import { createHash } from 'node:crypto';
import { logger } from '../util/msg.ts';
import { AttrClientError } from '../global/attr-clnt.ts';
import type { PolicyClient, PolicyRequest } from '../global/policy-client.ts';
import { cipherBits } from '../lib-tls/tls-describe.ts';
import { serverError, type CheckContext, type CheckState, type Restriction, type Status } from './smtpd-check-reject.ts';
import type { SmtpdState } from './smtpd-state.ts';
import { tableResult } from './smtpd-check-table.ts';

const log = logger('smtpd');

/** One instance per transaction (or per session before MAIL): "pid.sec.usec.seq" in hex, as Postfix. */
const instances = new WeakMap<object, string>();
let seq = 0;
function instanceOf(s: SmtpdState): string {
  const key: object = s.tx ?? s;
  let v = instances.get(key);
  if (!v) {
    const now = Date.now();
    v = `${process.pid.toString(16)}.${Math.floor(now / 1000).toString(16)}.${((now % 1000) * 1000).toString(16)}.${(seq++).toString(16)}`;
    instances.set(key, v);
  }
  return v;
}

/** ccert_* and encryption_* from the TLS connection ("" and 0 without TLS, as Postfix). */
function tlsAttributes(s: SmtpdState, digest: string): Pick<PolicyRequest, 'ccertSubject' | 'ccertIssuer' | 'ccertFingerprint' | 'ccertPubkeyFingerprint' | 'encryptionProtocol' | 'encryptionCipher' | 'encryptionKeysize'> {
  const t = s.tlsSocket;
  const none = { ccertSubject: '', ccertIssuer: '', ccertFingerprint: '', ccertPubkeyFingerprint: '', encryptionProtocol: '', encryptionCipher: '', encryptionKeysize: 0 };
  if (!t || !s.tls) return none;
  const cipher = t.getCipher()?.name ?? '';
  const out = { ...none, encryptionProtocol: t.getProtocol() ?? '', encryptionCipher: cipher, encryptionKeysize: cipherBits(cipher) };
  const cert = t.getPeerCertificate?.(false);
  if (cert && cert.raw) {
    const alg = /^(md5|sha1|sha256|sha512)$/i.test(digest) ? digest.toLowerCase() : 'sha256';
    const colon = (b: Buffer) => b.toString('hex').toUpperCase().replace(/(..)(?!$)/g, '$1:');
    out.ccertSubject = String(cert.subject?.CN ?? '');
    out.ccertIssuer = String(cert.issuer?.CN ?? '');
    out.ccertFingerprint = colon(createHash(alg).update(cert.raw).digest());
    if (cert.pubkey) out.ccertPubkeyFingerprint = colon(createHash(alg).update(cert.pubkey).digest());
  }
  return out;
}

/** The request for the current stage of this session. */
export function policyRequest(cx: CheckContext, st: CheckState): PolicyRequest {
  const s = st.s;
  const where = st.where;
  const tx = s.tx;
  const counting = where === 'DATA' || where === 'END-OF-MESSAGE';
  return {
    protocolState: where,
    protocolName: s.protocol,
    heloName: st.helo ?? s.helo ?? '',
    queueId: s.queueId ?? '',
    sender: st.sender ?? tx?.sender ?? '',
    recipient: st.recipient ?? '',
    recipientCount: counting ? tx?.recipients.length ?? 0 : 0,
    clientAddress: s.clientAddr,
    clientName: s.clientName,
    reverseClientName: s.clientName,
    clientPort: s.clientPort,
    serverAddress: s.serverAddr,
    serverPort: s.serverPort,
    instance: instanceOf(s),
    size: tx?.declaredSize ?? 0,
    etrnDomain: '',
    stress: cx.p.stress,
    saslMethod: s.saslMethod ?? '',
    saslUsername: s.saslUsername ?? '',
    saslSender: '',
    ...tlsAttributes(s, cx.p.tlsFingerprintDigest),
  };
}

/** check_policy_service: the next list entry names the server. */
export const checkPolicyService: Restriction = async (cx, st, r): Promise<Status> => {
  const spec = r.list[r.i + 1];
  if (spec === undefined) {
    log.warn('restriction check_policy_service: missing server argument');
    serverError(cx, st);
  }
  r.skip();
  let pc: PolicyClient;
  try {
    pc = cx.policy(spec);
  } catch (e) {
    log.warn((e as Error).message);
    serverError(cx, st);
  }
  let action: string;
  try {
    action = await pc.query(policyRequest(cx, st));
  } catch (e) {
    if (!(e instanceof AttrClientError)) throw e;
    log.warn(`${e.message}; using default action "${pc.settings.defaultAction}"`);
    action = pc.settings.defaultAction;
  }
  return tableResult(cx, st, pc.settings.server, action, r.replyName, r.replyClass, r.defAcl);
};

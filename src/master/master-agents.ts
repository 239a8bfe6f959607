/**
 * master-agents - the registry of delivery agents qmgr calls in-process, by master.cf command
 * name (the literal table of STYLE §9: explicit imports, no self-registration), and qmgr given
 * that table: `service`, what the master runs for master.cf's qmgr (SERVICES.qmgr inline, and
 * SERVICE_MODULES.qmgr, the module a worker thread or a child process loads). qmgr itself
 * imports no agent (qmgr/qmgr.ts qmgrService). A master.cf transport whose command is not here
 * defers with "mail transport unavailable".
 *
 * To add an agent, add one line: `name: async (config) => (await import('../x/x.ts')).createXAgent(config)`.
 * A factory is also given master.cf's entries as the master parsed them (pipe(8) runs its entry's
 * argv=): an agent never reads a configuration file itself. qmgr makes one agent per command,
 * and one more per master.cf entry with -o overrides, from main.cf plus those overrides
 * (qmgr/qmgr.ts loadTransportAgents()): `relay ... smtp -o smtp_helo_name=...` has its own smtp.
 */
import type { DeliveryAgentFactory } from '../global/deliver-request.ts';
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { qmgrService } from '../qmgr/qmgr.ts';
import { bounce, cleanup, openRewrite } from './master-clients.ts';
import { entryLogName, type MasterEntry } from '../global/master-cf.ts';
import type { MainConfig } from '../global/mail-conf.ts';

/** The log service of an agent made for one master.cf entry (`-o syslog_name=postfix/relay` → relay/smtp). */
function logName(config: MainConfig, entry: MasterEntry | undefined): string | undefined {
  return entry ? entryLogName(entry, config.get('syslog_name')) : undefined;
}

export const AGENTS: Readonly<Record<string, DeliveryAgentFactory>> = {
  discard: async () => (await import('../discard/discard.ts')).createDiscardAgent(),
  error: async () => (await import('../error/error.ts')).createErrorAgent(),
  smtp: async (config, _m, entry) => (await import('../smtp/smtp.ts')).createSmtpAgent(config, { name: logName(config, entry) }),
  lmtp: async (config, _m, entry) => (await import('../smtp/smtp.ts')).createLmtpAgent(config, { name: logName(config, entry) }),
  local: async (config, _m, _e, dovecot) => {
    const { createLocalAgent } = await import('../local/local.ts');
    const { cleanupSettings } = await import('../global/cleanup-client.ts');
    const { trigger } = await import('../global/mail-trigger.ts');
    // Pigeonhole for the LDA: dovecot.conf `protocol lda { mail_plugins = $mail_plugins sieve }`.
    const { sieveSettings } = await import('../lib-sieve/sieve-settings.ts');
    const sieve = dovecot ? { ...sieveSettings(dovecot, 'lda'), hostname: dovecot.getFor('hostname', { protocol: 'lda' }) || config.get('myhostname') } : undefined;
    return createLocalAgent(config, { cleanup: cleanupSettings(config, (q) => { trigger('qmgr', q); }), cleanupClient: cleanup, ...(sieve?.enabled ? { sieve } : {}) });
  },
  pipe: async (config, masterCf) => (await import('../pipe/pipe.ts')).createPipeAgent(config, { entries: masterCf }),
  virtual: async (config, _m, _e, dovecot) => {
    const { createVirtualAgent, virtualSettings } = await import('../virtual/virtual.ts');
    const s = await virtualSettings(config);
    if (dovecot) {
      // Pigeonhole for the LDA: dovecot.conf `protocol lda { mail_plugins = $mail_plugins sieve }`.
      const { sieveSettings } = await import('../lib-sieve/sieve-settings.ts');
      const sieve = { ...sieveSettings(dovecot, 'lda'), hostname: dovecot.getFor('hostname', { protocol: 'lda' }) || config.get('myhostname') };
      if (sieve.enabled) {
        const { cleanupSubmitter } = await import('../global/cleanup-submit.ts');
        const submitter = cleanupSubmitter(config, cleanup, 'virtual');
        s.sieve = sieve;
        s.submit = async (m) => { await submitter(m.sender, m.recipients, m.content); };
      }
    }
    return createVirtualAgent(s);
  },
};

/** master.cf `qmgr unix n - n 300 1 qmgr` with the agents above, trivial-rewrite and bounce. */
export const service: ServiceImpl = qmgrService(AGENTS, { openRewrite, bounce });

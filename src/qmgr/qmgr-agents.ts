/**
 * qmgr-agents - the registry of delivery agents qmgr calls in-process, by master.cf command
 * name (the literal table of STYLE §9: explicit imports, no self-registration). A master.cf
 * transport whose command is not here defers with "mail transport unavailable".
 *
 * To add an agent, add one line: `name: async (config) => (await import('../x/x.ts')).createXAgent(config)`.
 */
import type { MainConfig } from '../global/mail-conf.ts';
import type { DeliveryAgent } from '../global/deliver-request.ts';

type AgentFactory = (config: MainConfig) => Promise<DeliveryAgent>;

export const AGENTS: Record<string, AgentFactory> = {
  discard: async () => (await import('../discard/discard.ts')).createDiscardAgent(),
  error: async () => (await import('../error/error.ts')).createErrorAgent(),
  smtp: async (config) => (await import('../smtp/smtp.ts')).createSmtpAgent(config),
  lmtp: async (config) => (await import('../smtp/smtp.ts')).createLmtpAgent(config),
  local: async (config) => {
    const { createLocalAgent } = await import('../local/local.ts');
    const { cleanupSettings } = await import('../smtpd/smtpd.ts');
    const { trigger } = await import('../global/mail-trigger.ts');
    return createLocalAgent(config, { cleanup: cleanupSettings(config, (q) => { trigger('qmgr', q); }) });
  },
  pipe: async (config) => (await import('../pipe/pipe.ts')).createPipeAgent(config),
  virtual: async (config) => {
    const { createVirtualAgent, virtualSettings } = await import('../virtual/virtual.ts');
    return createVirtualAgent(await virtualSettings(config));
  },
};

/** Instantiate every known agent for this configuration. */
export async function loadAgents(config: MainConfig, table: Record<string, AgentFactory> = AGENTS): Promise<Map<string, DeliveryAgent>> {
  const out = new Map<string, DeliveryAgent>();
  for (const [name, make] of Object.entries(table)) out.set(name, await make(config));
  return out;
}


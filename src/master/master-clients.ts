/**
 * master-clients - the in-process implementations of the client contracts in global/, which the
 * master passes to the daemons it assembles: cleanup (global/cleanup-client.ts), trivial-rewrite
 * (resolve-client.ts), bounce (bounce-client.ts), anvil and the auth penalty (anvil-client.ts),
 * postscreen (postscreen-client.ts). Postfix daemons reach these services by name through the
 * master's sockets (private/cleanup, private/rewrite, private/bounce, private/anvil); here each
 * is one object per process (the master's, or that of the thread or child a service runs in),
 * and a call is a method call — except anvil and the auth penalty, whose one table is the
 * master's: a child process asks it over IPC (master-anvil.ts).
 *
 *   smtpdClients         what createSmtpd() needs (tests and sendmail build smtpd with it too)
 *   smtpdServiceClients  what smtpd's master service needs (master-smtpd.ts)
 *   cleanup, openRewrite, bounce  for pickup, qmqpd, qmgr and the local agent
 */
import type { CleanupClient } from '../global/cleanup-client.ts';
import type { ResolveOpener } from '../global/resolve-client.ts';
import type { BounceClientFactory } from '../global/bounce-client.ts';
import { TrivialRewrite } from '../trivial-rewrite/trivial-rewrite.ts';
import { cleanupClient } from '../cleanup/cleanup.ts';
import { BounceService } from '../bounce/bounce.ts';
import { sharedAnvil } from '../anvil/anvil.ts';
import { processAnvil, processAuthPenalty } from './master-anvil.ts';
import { openPostscreen } from '../postscreen/postscreen.ts';
import type { SmtpdClients } from '../smtpd/smtpd.ts';
import type { SmtpdServiceClients } from '../smtpd/smtpd-service.ts';

/** trivial-rewrite, one per configuration. */
export const openRewrite: ResolveOpener = (config) => TrivialRewrite.open(config);

/** cleanup, asking trivial-rewrite for its address mapping. */
export const cleanup: CleanupClient = cleanupClient(openRewrite);

/** bounce/defer/trace for qmgr, submitting its notices through cleanup. */
export const bounce: BounceClientFactory = (config, queue, wake) => BounceService.fromConfig(config, queue, cleanup, wake);

/** smtpd's clients: cleanup, the process-wide anvil table, postscreen. */
export const smtpdClients: SmtpdClients = { cleanup, anvil: sharedAnvil(), postscreen: openPostscreen };

/** smtpd's master service: the same, trivial-rewrite, anvil set up from main.cf, the auth penalty. */
export const smtpdServiceClients: SmtpdServiceClients = {
  cleanup,
  openRewrite,
  anvil: (config) => processAnvil(config),
  authPenalty: () => processAuthPenalty(),
  postscreen: openPostscreen,
};

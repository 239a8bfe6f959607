/**
 * master-console - the web console (console/console-route.ts) as the master's HTTP service runs
 * it: what only the master knows, the list of its services and whether each runs, comes from
 * the status file the master keeps for `postern status` (master-status.ts); the shared auth
 * penalty is the one SMTP AUTH, IMAP and POP3 use.
 */
import type { ServiceContext } from '../lib-master/master-service.ts';
import type { HttpRoute } from '../lib-http/http-route.ts';
import { pidFilePath } from './master-pid.ts';
import { readServiceStatus, statusFilePath } from './master-status.ts';

export async function consoleRoutesFor(ctx: ServiceContext): Promise<HttpRoute[]> {
  if (!ctx.config.bool('postern_console')) return [];
  const { consoleRoutes } = await import('../console/console-route.ts');
  const file = statusFilePath(pidFilePath(ctx.config.get('queue_directory'), ctx.config.get('process_id_directory')));
  return consoleRoutes({
    config: ctx.config, dovecot: ctx.dovecot, log: ctx.log,
    services: () => readServiceStatus(file).filter((s) => s.key !== '').map((s) => ({ key: s.key, impl: s.impl, mode: s.mode, running: s.running })),
    ...(ctx.authPenalty ? { authPenalty: ctx.authPenalty } : {}),
  });
}

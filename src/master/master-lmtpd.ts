/**
 * master-lmtpd - lmtpd as the master runs it: lmtpd/lmtpd.ts given cleanup (master-clients.ts),
 * through which Sieve's redirects, vacation replies and rejections are queued.
 * SERVICES.lmtpd inline, and SERVICE_MODULES.lmtpd, the module a worker thread or a child
 * process loads.
 */
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { lmtpdService } from '../lmtpd/lmtpd.ts';
import { cleanup } from './master-clients.ts';

export const service: ServiceImpl = lmtpdService(cleanup);

/**
 * master-smtpd - smtpd(8) as the master runs it: smtpd/smtpd-service.ts given its clients
 * (master-clients.ts). SERVICES.smtpd inline, and SERVICE_MODULES.smtpd, the module a worker
 * thread or a child process loads.
 */
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { smtpdService } from '../smtpd/smtpd-service.ts';
import { smtpdServiceClients } from './master-clients.ts';

export const service: ServiceImpl = smtpdService(smtpdServiceClients);

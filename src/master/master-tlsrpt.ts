/**
 * master-tlsrpt - the TLS-RPT report sender (tlsrpt/tlsrpt.ts) as the master runs it, given
 * cleanup (master-clients.ts) to submit the report mail. Planned from main.cf when
 * postern_tlsrpt_reporting = yes (master-plan.ts).
 */
import type { ServiceImpl } from '../lib-master/master-service.ts';
import { tlsrptService } from '../tlsrpt/tlsrpt.ts';
import { cleanup } from './master-clients.ts';

export const service: ServiceImpl = tlsrptService(cleanup);

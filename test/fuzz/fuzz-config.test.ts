/** Bounded CI fuzzing (issue 8) of the administrator's files and the queue: main.cf, master.cf, dovecot.conf, lookup tables, queue files. See fuzz-ci.ts. */
import { ciFuzz } from './fuzz-ci.ts';

ciFuzz(['main-cf', 'master-cf', 'dovecot-conf', 'dict-texthash', 'dict-regexp', 'dict-cidr', 'queue-file']);

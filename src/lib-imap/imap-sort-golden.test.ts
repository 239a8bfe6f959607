/**
 * Golden comparison with real Dovecot 2.3.19: for the messages of testdata/sort-corpus/ (tricky
 * subjects, encoded words, missing/unparsable/equal dates, broken and looping References,
 * duplicate Message-IDs; INTERNALDATEs from sort-corpus/INTERNALDATES), our SORT and THREAD
 * answers must equal Dovecot's byte for byte. Dovecot's answers are stored in
 * testdata/sort-golden/ (UPDATE_GOLDEN=1 rewrites them); when Dovecot is installed, a second test
 * runs it again and asserts that the stored goldens are still what it says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseSortCriteria, sortMessages, sortRecordFromMessage, type SortRecord } from './imap-sort.ts';
import { formatThreads, threadOrderedSubject, threadReferences } from './imap-thread.ts';
import { dovecotAvailable, readSortCorpus, runDovecotSort, SORT_GOLDEN } from '../../test/harness/imap-sort-oracle.ts';

/** [golden file, IMAP command]. */
const COMMANDS: [string, string][] = [
  ['sort-subject', 'SORT (SUBJECT) UTF-8 ALL'],
  ['sort-reverse-subject', 'SORT (REVERSE SUBJECT) UTF-8 ALL'],
  ['sort-date', 'SORT (DATE) UTF-8 ALL'],
  ['sort-reverse-date', 'SORT (REVERSE DATE) UTF-8 ALL'],
  ['sort-arrival', 'SORT (ARRIVAL) UTF-8 ALL'],
  ['sort-reverse-arrival', 'SORT (REVERSE ARRIVAL) UTF-8 ALL'],
  ['sort-from-arrival', 'SORT (FROM ARRIVAL) UTF-8 ALL'],
  ['sort-reverse-from', 'SORT (REVERSE FROM) UTF-8 ALL'],
  ['sort-to', 'SORT (TO) UTF-8 ALL'],
  ['sort-cc-reverse-date', 'SORT (CC REVERSE DATE) UTF-8 ALL'],
  ['sort-size', 'SORT (SIZE) UTF-8 ALL'],
  ['sort-reverse-size', 'SORT (REVERSE SIZE) UTF-8 ALL'],
  ['sort-displayfrom', 'SORT (DISPLAYFROM) UTF-8 ALL'],
  ['sort-displayto', 'SORT (DISPLAYTO) UTF-8 ALL'],
  ['sort-subject-reverse-date', 'SORT (SUBJECT REVERSE DATE) UTF-8 ALL'],
  ['uid-sort-subject-date', 'UID SORT (SUBJECT DATE) UTF-8 ALL'],
  ['thread-orderedsubject', 'THREAD ORDEREDSUBJECT UTF-8 ALL'],
  ['thread-references', 'THREAD REFERENCES UTF-8 ALL'],
  ['uid-thread-references', 'UID THREAD REFERENCES UTF-8 ALL'],
];

const corpus = readSortCorpus();
/** UIDs are deliberately not equal to sequence numbers on our side (Dovecot's are 1..n). */
const corpusRecords: SortRecord[] = corpus.map((m, i) =>
  sortRecordFromMessage(m.data, { seq: i + 1, uid: i + 1, internalDate: new Date(m.internalDate * 1000) }));

/** Our untagged answer to one of COMMANDS. */
function ours(command: string, records: SortRecord[] = corpusRecords): string {
  const uid = command.startsWith('UID ');
  const cmd = uid ? command.slice(4) : command;
  const num = (r: SortRecord): number => (uid ? r.uid : r.seq);
  let m = /^SORT \(([^)]*)\) UTF-8 ALL$/.exec(cmd);
  if (m) {
    const sorted = sortMessages(records, parseSortCriteria(m[1]!.split(' ')));
    return `* SORT${sorted.map((r) => ` ${num(r)}`).join('')}\r\n`;
  }
  m = /^THREAD (ORDEREDSUBJECT|REFERENCES) UTF-8 ALL$/.exec(cmd);
  assert.ok(m, command);
  const threads = m[1] === 'REFERENCES' ? threadReferences(records) : threadOrderedSubject(records);
  return `* THREAD ${formatThreads(threads, uid)}\r\n`;
}

/**
 * Second corpus, built here: one message per subject, each testing one step of Dovecot's
 * i;unicode-casemap folding (titlecase vs upper case, one-level canonical and compatibility
 * decompositions, Hangul, ligatures). THREAD ORDEREDSUBJECT shows which keys are equal.
 */
const CASEMAP_SUBJECTS = ['ǖx', 'U\u0308\u0304x', '\u00dc\u0304x', 'ﬁx', 'fix', 'FIX', 'ªq', 'aq', 'Aq', '한',
  '\u1112\u1161\u11ab', 'ǆ', 'ǅ', 'Dž', 'DŽ', 'é', 'E\u0301', 'É', 'ß', 'SS', '㌀', 'アパート', 'アハ\u309Aート', 'ᾳ', 'ᾼ',
  'ΑΙ', 'ſt', 'St', '\u212b', 'Å', 'A\u030a', '\u1f80', '\u1f88', '\u1f08\u0345', '\u1f08\u0399', 'ﬀ', 'ff', 'FF', '①',
  '1', '\u00bd', '1\u20442', 'ǰ', 'J\u030c', '\u0149', '\u02bcN', '\u02bcn', 'Ǆ', 'ｂ', 'B', 'Ⅻ', 'XII', 'ⅻ', 'xii'];
const casemapCorpus = CASEMAP_SUBJECTS.map((subj, i) => ({
  name: `casemap-${i + 1}`,
  data: Buffer.from(`Subject: ${subj}\r\nDate: Mon, 1 Jan 2024 10:${String(i).padStart(2, '0')}:00 +0000\r\n` +
    `Message-ID: <c${i}@x.example>\r\n\r\nbody\r\n`, 'utf8'),
  internalDate: 1700000000 + i,
}));
const casemapRecords = casemapCorpus.map((m, i) =>
  sortRecordFromMessage(m.data, { seq: i + 1, uid: i + 1, internalDate: new Date(m.internalDate * 1000) }));
const CASEMAP_COMMANDS: [string, string][] = [
  ['casemap-thread-orderedsubject', 'THREAD ORDEREDSUBJECT UTF-8 ALL'],
  ['casemap-sort-subject', 'SORT (SUBJECT) UTF-8 ALL'],
];

if (process.env.UPDATE_GOLDEN === '1') {
  const cm = runDovecotSort(casemapCorpus, CASEMAP_COMMANDS.map((c) => c[1]));
  mkdirSync(SORT_GOLDEN, { recursive: true });
  CASEMAP_COMMANDS.forEach(([file], i) => writeFileSync(join(SORT_GOLDEN, `${file}.txt`), cm[i]!));
}

if (process.env.UPDATE_GOLDEN === '1') {
  const answers = runDovecotSort(corpus, COMMANDS.map((c) => c[1]));
  mkdirSync(SORT_GOLDEN, { recursive: true });
  COMMANDS.forEach(([file], i) => writeFileSync(join(SORT_GOLDEN, `${file}.txt`), answers[i]!));
}

for (const [file, command] of COMMANDS) {
  test(`${command} equals Dovecot 2.3's answer (golden ${file}.txt)`, () => {
    const golden = readFileSync(join(SORT_GOLDEN, `${file}.txt`), 'utf8');
    assert.equal(ours(command), golden);
  });
}

for (const [file, command] of CASEMAP_COMMANDS) {
  test(`case folding: ${command} equals Dovecot 2.3's answer (golden ${file}.txt)`, () => {
    const golden = readFileSync(join(SORT_GOLDEN, `${file}.txt`), 'utf8');
    assert.equal(ours(command, casemapRecords), golden);
  });
}

test('the stored goldens are still what Dovecot answers', { skip: !dovecotAvailable() && 'Dovecot not installed' }, () => {
  const answers = runDovecotSort(corpus, COMMANDS.map((c) => c[1]));
  COMMANDS.forEach(([file], i) => {
    const p = join(SORT_GOLDEN, `${file}.txt`);
    assert.ok(existsSync(p), `${p} missing: run with UPDATE_GOLDEN=1`);
    assert.equal(answers[i], readFileSync(p, 'utf8'), `${file}.txt no longer matches Dovecot`);
  });
  const cm = runDovecotSort(casemapCorpus, CASEMAP_COMMANDS.map((c) => c[1]));
  CASEMAP_COMMANDS.forEach(([file], i) => {
    assert.equal(cm[i], readFileSync(join(SORT_GOLDEN, `${file}.txt`), 'utf8'), `${file}.txt no longer matches Dovecot`);
  });
});

/**
 * sieve-compile tests: the compile errors of bad scripts, line by line against the real
 * `sievec` of Pigeonhole (Debian dovecot-sieve) when it is installed, and against the text
 * sievec printed when these cases were written otherwise.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileSieve, formatSieveErrors, SIEVE_CAPABILITY, sieveExtensions } from './sieve-compile.ts';

/** [script, the first error line sievec prints]. */
const CASES: [string, string][] = [
  ['foo;\n', "line 1: error: unknown command 'foo' (only reported once at first occurrence)."],
  ['keep\n', "line 2: error: expected end of command ';' or the beginning of a compound block '{', but found end of file."],
  ['fileinto "x";\n', "line 1: error: unknown command 'fileinto' (only reported once at first occurrence)."],
  ['require "fileinto";\nfileinto;\n', 'line 2: error: the fileinto command requires 1 positional argument(s), but 0 is/are specified.'],
  ['require "fileinto";\nfileinto 1;\n', 'line 2: error: the fileinto command expects a string as argument 1 (folder), but a number was found.'],
  ['if header "a" { keep; }\n', 'line 1: error: the header test requires 2 positional argument(s), but 1 is/are specified.'],
  ['if header :foo "a" "b" { keep; }\n', "line 1: error: unknown tagged argument ':foo' for the header test (reported only once at first occurrence)."],
  ['keep "x";\n', 'line 1: error: the keep command requires 0 positional argument(s), but 1 is/are specified.'],
  ['if foo { keep; }\n', "line 1: error: unknown test 'foo' (only reported once at first occurrence)."],
  ['if true { keep; }\nelsif true { keep; }\n else { stop; } \nelse {keep;}\n', 'line 4: error: the else command must follow an if or elseif command.'],
  ['require "x";\n', "line 1: error: require command: unknown Sieve capability `x'."],
  ['keep;\nrequire "fileinto";\n', 'line 2: error: require commands can only be placed at top level at the beginning of the file.'],
  ['"abc\n', 'line 2: error: end of file before end of quoted string started at line 1.'],
  ['if header :is :contains "a" "b" {keep;}\n', 'line 1: error: encountered duplicate MATCH-TYPE argument (:contains) for the header test.'],
  ['require "vacation";\nvacation :days "x" "y";\n', 'line 2: error: the :days tag for the vacation command requires a number as parameter, but a string was found.'],
  ['if header :comparator "i;foo" "a" "b" {keep;}\n', "line 1: error: unknown comparator 'i;foo'."],
  ['require "regex";\nif header :regex "a" "(b" {keep;}\n', "line 2: error: invalid regular expression '(b' for regex match: unmatched ( or \\(."],
  ['require "variables";\nset "a" "${x";\nset "1a" "b";\n', "line 3: error: invalid variable name '1a'."],
  ['require "redirect";\n', "line 1: error: require command: `redirect' is not known as a Sieve capability, but it is known as a Sieve command that is always available."],
  ['redirect "stephan @example.org";\nredirect "@wrong.example.com";\n', "line 2: error: specified redirect address '@wrong.example.com' is invalid: invalid local part."],
  ['if anyof() {keep;}\n', "line 1: error: expecting test identifier after '(' in test list, but found ')'."],
  ['stop; }\n', "line 1: error: unexpected '}' found at (the presumed) end of file."],
  ['if true {\n', "line 2: error: expected end of compound block '}', but found end of file."],
  ['/* x\n', "line 2: error: end of file before end of bracket comment ('/* ... */') started at line 1."],
  ['if not {keep;}\n', 'line 1: error: the not test requires one sub-test, but none is specified.'],
  ['require "envelope";\nif envelope "frm" "x" {keep;}\n', "line 2: error: specified envelope part 'frm' is not supported by the envelope test."],
  ['redirect "not an address";\n', "line 1: error: specified redirect address 'not an address' is invalid: invalid or lonely local part 'not' (expecting '@')."],
  ['if size 10 {keep;}\n', 'line 1: error: the size test requires either the :under or the :over tag to be specified.'],
  ['if size :over "10" {keep;}\n', 'line 1: error: the size test expects a number as argument 1 (limit), but a string was found.'],
  ['require "relational";\nif header :value "foo" "a" "1" {keep;}\n', 'line 2: error: the :value match-type requires a constant string argument being one of "gt", "ge", "lt", "le", "eq" or "ne", but "foo" was found.'],
  ['keep; 99999999999999999;\n', 'line 1: error: unexpected number found at (the presumed) end of file.'],
  ['if size :over 99999999999G {keep;}\n', 'line 1: error: number exceeds integer limits (max 18446744073709551615).'],
  ['keep;;\n', "line 1: error: unexpected ';' found at (the presumed) end of file."],
  ['require "index";\nif header :last "a" "b" {keep;}\n', 'line 2: error: the :last tag for the header test cannot be specified without the :index tag.'],
  ['require "mime";\nif header :type "a" "b" {keep;}\n', 'line 2: error: the :type tag for the header test cannot be specified without the :mime tag.'],
  ['require ["foreverypart","mime"];\nbreak :name "x";\n', "line 2: error: the break command is not placed inside a foreverypart loop named `x'."],
  ['require "enotify";\nnotify "xmpp:foo";\n', "line 2: error: notify command: invalid method 'xmpp'."],
  ['require "enotify";\nnotify :importance "5" "mailto:a@b";\n', 'line 2: error: invalid :importance value for notify command: 5.'],
  ['require "variables";\nset :lower :upper "a" "b";\n', 'line 2: error: modifiers :lower and :upper specified for the set command conflict having equal precedence.'],
  ['require "include";\nreturn;\ninclude :personal :global "x";\n', "line 3: error: include: cannot use location tags ':personal' and ':global' multiple times."],
  ['require ["vacation"];\nvacation :from "not valid" "x";\n', "line 2: error: specified :from address 'not valid' is invalid for vacation action: invalid or lonely local part 'not' (expecting '@')."],
  ['require "include";\ninclude :personal "a/b";\n', "line 2: error: include: invalid script name 'a/b'."],
  ['require "vacation";\nvacation :days 1 :days 2 "x";\n', 'line 2: error: encountered duplicate :days argument for the vacation command.'],
  ['if size :over 10 { keep; }\nsize :over 1;\n', "line 2: error: attempted to use test 'size' as command."],
  ['if keep { stop; }\n', "line 1: error: attempted to use command 'keep' as test."],
  ['keep\nfileinto "x";\n', "line 1: error: missing semicolon ';' after keep command."],
  ['if address :comparator { keep; }\n', 'line 1: error: the :comparator tag for the address test requires a string as parameter, but no parameters were found.'],
  ['require;\n', 'line 1: error: the require command requires 1 positional argument(s), but 0 is/are specified.'],
  ['require "comparator-i;ascii-numeric";\nif header :contains :comparator "i;ascii-numeric" "a" "1" { keep; }\n', 'line 2: error: the specified i;ascii-numeric comparator does not support sub-string matching as required by the :contains match type.'],
  ['require ["regex","comparator-i;ascii-numeric"];\nif header :regex :comparator "i;ascii-numeric" "a" "1" { keep; }\n', 'line 2: error: regex match type only supports i;octet and i;ascii-casemap comparators.'],
  ['require "variables";\nset "c" "i;octet";\nif header :is :comparator "${c}" "a" "b" { keep; }\n', 'line 3: error: this Sieve implementation currently only supports a literal string argument for the :comparator tag.'],
  ['require "encoded-character";\nif header :is "a" "${unicode:200000}" { keep; }\n', 'line 2: error: invalid unicode character 0x00200000 in encoded character substitution.'],
  ['require "variables";\nset "namespace.frop" "v";\n', "line 2: error: referring to variable in unknown namespace 'namespace'."],
  [`require "variables";\nset "${'v'.repeat(70)}" "x";\n`, `line 2: error: invalid variable name '${'v'.repeat(70)}'.`],
  ['require ["extracttext","foreverypart"];\nkeep;\n', 'line 1: error: extracttext extension cannot be used without variables extension.'],
  ['require ["foreverypart","mime"];\nforeverypart { foreverypart { foreverypart { foreverypart { foreverypart { keep; } } } } }\n', 'line 2: error: the nested foreverypart loop exceeds the nesting limit (<= 4 levels).'],
  ['require "special-use";\nif specialuse_exists { keep; }\n', 'line 2: error: the specialuse_exists test expects at least one argument, but none was found.'],
  ['if address :is "from:" "a@b" { keep; }\n', "line 1: warning: specified header field name 'from:' is invalid."],
  ['if address :is "subject" "a@b" { keep; }\n', "line 1: error: specified header 'subject' is not allowed for the address test."],
  ['require "enotify";\nnotify :options ["", "x"] "mailto:a@b.test";\n', 'line 2: error: notify command: empty option specified.'],
  ['require "enotify";\nnotify :from "a#b" "mailto:a@b.test";\n', "line 2: error: notify command: specified :from address 'a#b' is invalid for the mailto method: invalid or lonely local part 'a#b' (expecting '@')."],
  ['if address :count "eq" ;\n', 'line 1: error: the if command requires a command block, but it is missing.'],
  [`if ${'not '.repeat(40)}true {keep;}\n`, 'line 1: error: cannot nest tests deeper than 32 levels.'],
  [`${'if true {'.repeat(40)}keep;${'}'.repeat(40)}\n`, 'line 1: error: cannot nest command blocks deeper than 32 levels.'],
];

const haveSievec = existsSync('/usr/bin/sievec');

test('compile errors match sievec, line and wording', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sievec-'));
  try {
    for (const [script, expected] of CASES) {
      const r = compileSieve(script, { extensions: sieveExtensions('+special-use') });
      assert.equal(r.ok, false, script);
      const ours = formatSieveErrors('e', r.ok ? [] : r.errors, r.warnings).split('\n')[0];
      let want = `e: ${expected}`;
      if (haveSievec) {
        const f = join(dir, 'e.sieve');
        writeFileSync(f, script);
        let out = '';
        try { execFileSync('/usr/bin/sievec', ['-x', '+special-use', f], { stdio: 'pipe' }); } catch (e) { out = String((e as { stderr: Buffer }).stderr); }
        want = out.split('\n')[0]!;
      }
      assert.equal(ours, want, JSON.stringify(script));
      assert.ok(!r.ok && r.errors[0]!.column >= 1, 'a column is given');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('good scripts compile; capability string and sieve_extensions', () => {
  const r = compileSieve('require ["fileinto","imap4flags","variables"];\nif header :contains "subject" "x" { fileinto :flags "\\\\Seen" "a"; }\n');
  assert.ok(r.ok);
  assert.match(SIEVE_CAPABILITY, /^fileinto reject envelope encoded-character vacation /);
  const ext = sieveExtensions('+editheader -regex');
  assert.ok(ext.has('editheader') && !ext.has('regex') && ext.has('fileinto'));
  assert.ok(!compileSieve('require "editheader";\n').ok);
  assert.ok(compileSieve('require "editheader";\n', { extensions: ext }).ok);
});

test('hostile scripts are refused with a clear message', () => {
  const big = compileSieve('# ' + 'x'.repeat(1024 * 1024) + '\nkeep;\n');
  assert.ok(!big.ok && /too large/.test(big.errors[0]!.message));
  const nested = compileSieve('if true {'.repeat(10_000) + 'keep;' + '}'.repeat(10_000));
  assert.ok(!nested.ok && /deeper than 32/.test(nested.errors[0]!.message));
  const tests = compileSieve('if ' + 'anyof('.repeat(10_000) + 'true' + ')'.repeat(10_000) + ' {keep;}');
  assert.ok(!tests.ok && /deeper than 32/.test(tests.errors[0]!.message));
  const regex = compileSieve('require "regex";\nif header :regex "a" "(a{255}){255}" {keep;}\n');
  assert.ok(!regex.ok && /too big/.test(regex.errors[0]!.message));
});

/**
 * smtp-rcpt-py - the RCPT TO reply a real client (Python's smtplib) gets for each (sender,
 * recipient) pair, one SMTP session per pair: EHLO client.example.org, MAIL FROM, RCPT TO, QUIT.
 * What the address verification and policy tests compare between Postfix and Postern.
 *
 *   await rcptReplies(port, [['sender@example.org', 'known@far.test']])  → ['250 2.1.5 Ok']
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

const PY = `
import smtplib, sys, json
out = []
pairs = sys.argv[2:]
for s, r in zip(pairs[0::2], pairs[1::2]):
    c = smtplib.SMTP("127.0.0.1", int(sys.argv[1]), timeout=60)
    c.ehlo("client.example.org")
    c.mail(s)
    code, msg = c.rcpt(r)
    out.append("%d %s" % (code, msg.decode()))
    c.quit()
print(json.dumps(out))
`;

/** "CODE TEXT" of the RCPT reply for each [sender, recipient], in order. */
export async function rcptReplies(port: number, pairs: [string, string][]): Promise<string[]> {
  const { stdout } = await run('python3', ['-c', PY, String(port), ...pairs.flat()], { timeout: 120_000 });
  return JSON.parse(stdout) as string[];
}

/** rcptReplies() with one sender for every recipient. */
export function rcptRepliesFrom(port: number, sender: string, rcpts: string[]): Promise<string[]> {
  return rcptReplies(port, rcpts.map((r) => [sender, r]));
}

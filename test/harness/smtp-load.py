#!/usr/bin/env python3
"""
smtp-load - a load of real SMTP clients (Python smtplib, which nobody here wrote) for the fault
tests: THREADS threads each send messages to HOST:PORT until COUNT messages were attempted or
STOPFILE exists, reconnecting after any failure (the server being SIGKILLed, a full disk).

Every message carries a unique token TAG-thread-seq in its Subject and as the last body line
("END token"), so a delivered copy can be counted and checked for truncation. One line per
outcome on stdout (flushed at once, so a reader sees it even if this process is killed):
  ACK token queueid        the server answered 250 to the end of DATA (the message is ours now)
  TEMP token code text     a 4xx reply at MAIL, RCPT or DATA (the client must retry: not acked)
  PERM token code text     a 5xx reply
  DROP token error         the connection failed before the final reply (fate unknown)

usage: smtp-load.py HOST PORT THREADS COUNT TAG SIZE STOPFILE RCPT[,RCPT...] [BIND_ADDR]
       (environment SMTP_LOAD_SENDER: the envelope sender, default load@example.org)
"""
import smtplib, socket, sys, threading, os, re

host, port, threads, count, tag, size, stopfile, rcpts = sys.argv[1:9]
port, threads, count, size = int(port), int(threads), int(count), int(size)
rcpts = rcpts.split(',')
bind = sys.argv[9] if len(sys.argv) > 9 else None
lock = threading.Lock()
sender = os.environ.get('SMTP_LOAD_SENDER', 'load@example.org')


def out(line):
    with lock:
        sys.stdout.write(line + '\n')
        sys.stdout.flush()


def body(token):
    filler = ('x' * 70 + '\r\n') * max(0, size // 72)
    return (f'From: load@example.org\r\nTo: {rcpts[0]}\r\nSubject: fault {token}\r\n'
            f'Message-Id: <{token}@example.org>\r\n\r\n{filler}END {token}\r\n').encode()


def pause(secs):
    # Not time.sleep(): from Python 3.11 it is clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME),
    # which libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 (npm run test:clock) turns
    # into EINVAL (libfaketime issue #426): every thread died at its first reconnect, silently.
    threading.Event().wait(secs)


errors = []


def worker(n):
    try:
        send_all(n)
    except BaseException as e:   # a dead thread must not pass for a finished one
        with lock:
            errors.append(f'thread {n}: {type(e).__name__}: {e}')
        raise


def send_all(n):
    seq = 0
    c = None
    while seq < count and not os.path.exists(stopfile):
        token = f'{tag}-{n}-{seq}'
        seq += 1
        try:
            if c is None:
                c = smtplib.SMTP(host, port, timeout=20, source_address=(bind, 0) if bind else None)
                c.ehlo('load.example.org')
            data = body(token)
            # Declare SIZE as smtplib.sendmail() and real clients do (RFC 1870), so a server
            # can refuse at MAIL FROM what would not fit (Postfix's smtpd_check_queue).
            code, msg = c.mail(sender, [f'SIZE={len(data)}'] if c.has_extn('size') else [])
            if code != 250:
                raise smtplib.SMTPResponseException(code, msg)
            for r in rcpts:
                code, msg = c.rcpt(r)
                if code != 250:
                    raise smtplib.SMTPResponseException(code, msg)
            code, msg = c.data(data)
            if code == 250:
                m = re.search(rb'queued as ([0-9A-Za-z]+)', msg)
                out(f'ACK {token} {m.group(1).decode() if m else "?"}')
            else:
                raise smtplib.SMTPResponseException(code, msg)
        except smtplib.SMTPResponseException as e:
            kind = 'TEMP' if 400 <= e.smtp_code < 500 else 'PERM'
            out(f'{kind} {token} {e.smtp_code} {e.smtp_error.decode("latin1", "replace")}')
            try:
                c.rset()
            except Exception:
                c = None
            pause(0.05)
        except Exception as e:
            out(f'DROP {token} {type(e).__name__}')
            try:
                c.close()
            except Exception:
                pass
            c = None
            pause(0.05)
    if c is not None:
        try:
            c.quit()
        except Exception:
            pass


ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
for t in ts:
    t.start()
for t in ts:
    t.join()
if errors:
    sys.stderr.write('smtp-load: ' + '; '.join(errors) + '\n')
    sys.exit(1)
out('DONE')

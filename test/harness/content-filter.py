#!/usr/bin/python3
"""content-filter - an after-queue content filter for tests, in the shape of Postfix
FILTER_README's "simple SMTP-based content filter" (what amavisd-new does): an SMTP server on a
loopback port that receives each message from the MTA's smtp client, adds one header at the top
(X-Content-Filter: scanned by content-filter.py), and re-injects it with smtplib into the MTA's
reinjection listener (127.0.0.1:10025 inet n - n - - smtpd -o content_filter= ...), passing on
the XFORWARD attributes it was given. It answers the final dot only after the reinjection
answered: 250 when it was accepted, the reinjection's own 4xx/5xx otherwise, 451 when it
cannot connect. So nothing is acknowledged that is not queued again.

Every message and every XFORWARD line is appended as one JSON object to LOGFILE.

Modes (the third argument, default "ok"):
  ok          as above
  hang        greets, then never answers anything (reads and waits)
  garbage     answers every command with "HELLO WORLD"
  close-data  answers up to DATA's 354, then closes the connection in the middle of the content

Usage: content-filter.py PORT REINJECT_PORT LOGFILE [MODE]
       (listens on 127.0.0.1:PORT, prints "ready" when it does)
"""
import json, smtplib, socketserver, sys, threading, time

PORT, REINJECT, LOG = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
MODE = sys.argv[4] if len(sys.argv) > 4 else "ok"
HEADER = b"X-Content-Filter: scanned by content-filter.py\r\n"
lock = threading.Lock()


def log(obj):
    with lock, open(LOG, "a") as f:
        f.write(json.dumps(obj) + "\n")


class Handler(socketserver.StreamRequestHandler):
    def send(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.send("220 filter.test ESMTP content-filter.py")
        if MODE == "hang":
            while self.rfile.readline():
                pass
            return
        sender, rcpts, xforward = None, [], []
        while True:
            line = self.rfile.readline(10000)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if MODE == "garbage":
                self.send("HELLO WORLD")
                continue
            if verb == "EHLO":
                self.send("250-filter.test")
                self.send("250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT")
                self.send("250 8BITMIME")
            elif verb == "HELO":
                self.send("250 filter.test")
            elif verb == "XFORWARD":
                xforward.append(cmd[9:])
                log({"xforward": cmd[9:]})
                self.send("250 2.0.0 Ok")
            elif verb == "MAIL":
                sender = cmd[10:].split(">", 1)[0].lstrip("<")
                rcpts = []
                self.send("250 2.1.0 Ok")
            elif verb == "RCPT":
                rcpts.append(cmd[8:].split(">", 1)[0].lstrip("<"))
                self.send("250 2.1.5 Ok")
            elif verb == "DATA":
                self.send("354 End data with <CR><LF>.<CR><LF>")
                if MODE == "close-data":
                    self.rfile.readline()
                    return
                data = []
                while True:
                    l = self.rfile.readline()
                    if not l:
                        return
                    if l == b".\r\n":
                        break
                    data.append(l[1:] if l.startswith(b".") else l)
                msg = HEADER + b"".join(data)
                self.send(self.reinject(sender, rcpts, xforward, msg))
                xforward = []
            elif verb == "RSET":
                sender, rcpts = None, []
                self.send("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.send("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 Bye")
                return
            else:
                self.send("502 5.5.2 Error: command not recognized")

    def reinject(self, sender, rcpts, xforward, msg):
        try:
            with smtplib.SMTP("127.0.0.1", REINJECT, timeout=30) as c:
                c.ehlo("filter.test")
                for x in xforward:
                    if c.has_extn("xforward"):
                        c.docmd("XFORWARD", x)
                refused = c.sendmail(sender, rcpts, msg)
            log({"sender": sender, "rcpts": rcpts, "refused": list(refused), "size": len(msg)})
            return "250 2.0.0 Ok: reinjected"
        except smtplib.SMTPRecipientsRefused as e:
            code, text = list(e.recipients.values())[0]
            return "%d %s" % (code, text.decode("utf-8", "replace"))
        except smtplib.SMTPResponseException as e:
            return "%d %s" % (e.smtp_code, e.smtp_error.decode("utf-8", "replace"))
        except OSError as e:
            return "451 4.3.0 reinjection failed: %s" % e


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


with Server(("127.0.0.1", PORT), Handler) as srv:
    print("ready", flush=True)
    srv.serve_forever()

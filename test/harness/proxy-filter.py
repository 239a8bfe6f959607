#!/usr/bin/python3
"""proxy-filter - a before-queue content filter for tests, in the shape SMTPD_PROXY_README
describes: an SMTP server on a loopback port that the MTA's smtpd talks to while its client
waits (smtpd_proxy_filter = 127.0.0.1:PORT). It receives one message per connection, adds one
header at the top (X-Proxy-Filter: passed), re-injects it with smtplib into the MTA's
after-filter smtpd (127.0.0.1:REINJECT, passing on the XFORWARD attributes it was given), and
answers the final dot only after the reinjection answered: "250 2.0.0 Ok: filtered" when it was
accepted, the reinjection's own 4xx/5xx otherwise.

It refuses and misbehaves on cue, so one filter serves every test:
  MAIL FROM with "reject-mail"   553 5.7.1 Sender refused by proxy-filter
  RCPT TO with "reject-rcpt"     550 5.7.1 <addr>: Recipient refused by proxy-filter
  RCPT TO with "shutdown-rcpt"   421 4.3.2 proxy-filter shutting down
  a content line "X-Test: reject"   554 5.7.1 Message content rejected by proxy-filter
  a content line "X-Test: hang"     never answers the final dot (reads until the MTA leaves)
  a content line "X-Test: close"    closes the connection at that line (middle of DATA)
  a content line "X-Test: garbage"  answers the final dot with a non-SMTP line, then a 554
                                     line of 3000 characters
EHLO is answered with an over-long first line (3000 characters) when started with mode
"long-ehlo", which the MTA must survive.

Every connection is appended to LOGFILE as one JSON object: the command lines it received in
order ("cmds"), the raw content between DATA and the dot ("data", latin-1), its final reply.

Usage: proxy-filter.py PORT REINJECT_PORT LOGFILE [MODE]   (prints "ready" when listening)
       PORT may be unix:PATH: a UNIX-domain socket (mode 0666) instead of 127.0.0.1:PORT.
"""
import json, os, smtplib, socketserver, sys, threading

PORT, REINJECT, LOG = sys.argv[1], int(sys.argv[2]), sys.argv[3]
MODE = sys.argv[4] if len(sys.argv) > 4 else "ok"
HEADER = b"X-Proxy-Filter: passed\r\n"
lock = threading.Lock()


def log(obj):
    with lock, open(LOG, "a") as f:
        f.write(json.dumps(obj) + "\n")


class Handler(socketserver.StreamRequestHandler):
    def send(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        entry = {"cmds": []}
        try:
            self.session(entry)
        except OSError as e:
            entry["error"] = str(e)
        finally:
            log(entry)

    def session(self, entry):
        self.send("220 filter.test ESMTP proxy-filter.py")
        sender, rcpts, xforward = None, [], []
        while True:
            line = self.rfile.readline(10000)
            if not line:
                entry["closed"] = "by the MTA"
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            entry["cmds"].append(cmd)
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                if MODE == "long-ehlo":
                    self.send("250-filter.test " + "x" * 3000)
                else:
                    self.send("250-filter.test")
                self.send("250-XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT")
                self.send("250-PIPELINING")
                self.send("250 8BITMIME")
            elif verb == "XFORWARD":
                xforward.append(cmd[9:])
                self.send("250 2.0.0 Ok")
            elif verb == "MAIL":
                if "reject-mail" in cmd:
                    self.send("553 5.7.1 Sender refused by proxy-filter")
                    continue
                sender = cmd[10:].split(">", 1)[0].lstrip("<")
                rcpts = []
                self.send("250 2.1.0 Ok")
            elif verb == "RCPT":
                addr = cmd[8:].split(">", 1)[0].lstrip("<")
                if "shutdown-rcpt" in addr:
                    self.send("421 4.3.2 proxy-filter shutting down")
                    continue
                if "reject-rcpt" in addr:
                    self.send("550 5.7.1 <%s>: Recipient refused by proxy-filter" % addr)
                    continue
                rcpts.append(addr)
                self.send("250 2.1.5 Ok")
            elif verb == "DATA":
                self.send("354 End data with <CR><LF>.<CR><LF>")
                data = []
                while True:
                    l = self.rfile.readline()
                    if not l:
                        entry["data"] = b"".join(data).decode("latin-1")
                        entry["closed"] = "by the MTA in DATA"
                        return
                    if l == b".\r\n":
                        break
                    data.append(l)
                    if l == b"X-Test: close\r\n":
                        entry["data"] = b"".join(data).decode("latin-1")
                        entry["closed"] = "by the filter in DATA"
                        return
                raw = b"".join(data)
                entry["data"] = raw.decode("latin-1")
                if b"\r\nX-Test: hang\r\n" in b"\r\n" + raw:
                    while self.rfile.readline():
                        pass
                    entry["closed"] = "by the MTA while the filter hung"
                    return
                if b"\r\nX-Test: reject\r\n" in b"\r\n" + raw:
                    reply = "554 5.7.1 Message content rejected by proxy-filter"
                elif b"\r\nX-Test: garbage\r\n" in b"\r\n" + raw:
                    reply = "HELLO WORLD\r\n554 5.7.1 " + "y" * 3000
                else:
                    msg = HEADER + b"".join(l[1:] if l.startswith(b".") else l for l in data)
                    reply = self.reinject(sender, rcpts, xforward, msg)
                entry["reply"] = reply
                self.send(reply)
                xforward = []
            elif verb == "RSET":
                sender, rcpts = None, []
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
                c.sendmail(sender, rcpts, msg)
            return "250 2.0.0 Ok: filtered"
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


class UnixServer(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True


if PORT.startswith("unix:"):
    srv = UnixServer(PORT[5:], Handler)
    os.chmod(PORT[5:], 0o666)
else:
    srv = Server(("127.0.0.1", int(PORT)), Handler)
with srv:
    print("ready", flush=True)
    srv.serve_forever()

#!/usr/bin/python3
"""policy-server - a scriptable SMTPD access policy server (Postfix SMTPD_POLICY_README
protocol) for tests: every request is appended as one JSON object (the connection's number, the
attribute names in the order received, and values) to LOGFILE; the answer depends on the local part of the recipient (or, when
there is none, of the sender):

  dunno / anything else   action=DUNNO
  reject                  action=REJECT go away
  custom                  action=550 5.7.2 custom refusal
  greylist                action=DEFER_IF_PERMIT Greylisted for 60 seconds
  hold                    action=HOLD held for review
  hang                    no answer (reads and waits)
  garbage                 "HELLO WORLD" then an empty line (no '=')
  noaction                result=ok then an empty line (no action=)
  close                   closes the connection without answering
  big                     action=REJECT followed by 1 MB of text on one line

Usage: policy-server.py PORT LOGFILE    (listens on 127.0.0.1:PORT, prints "ready" when it does)
"""
import json, socketserver, sys, threading, time

LOG = sys.argv[2]
lock = threading.Lock()
connections = [0]

class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        with lock:
            connections[0] += 1
            conn = connections[0]
        while True:
            names, attrs = [], {}
            while True:
                try:
                    line = self.rfile.readline()
                except OSError:
                    return
                if not line:
                    return
                line = line.decode("utf-8", "replace").rstrip("\n")
                if line == "":
                    break
                k, _, v = line.partition("=")
                names.append(k)
                attrs[k] = v
            with lock:
                with open(LOG, "a") as f:
                    f.write(json.dumps({"conn": conn, "names": names, "attrs": attrs}) + "\n")
            who = attrs.get("recipient") or attrs.get("sender") or ""
            mode = who.split("@")[0].lower()
            if mode == "hang":
                threading.Event().wait(3600)  # not time.sleep: EINVAL under test:clock (scripts/test-clock.sh)
                return
            if mode == "close":
                return
            if mode == "garbage":
                out = "HELLO WORLD\n\n"
            elif mode == "noaction":
                out = "result=ok\n\n"
            elif mode == "reject":
                out = "action=REJECT go away\n\n"
            elif mode == "custom":
                out = "action=550 5.7.2 custom refusal\n\n"
            elif mode == "greylist":
                out = "action=DEFER_IF_PERMIT Greylisted for 60 seconds\n\n"
            elif mode == "hold":
                out = "action=HOLD held for review\n\n"
            elif mode == "big":
                out = "action=REJECT " + "x" * (1 << 20) + "\n\n"
            else:
                out = "action=DUNNO\n\n"
            try:
                self.wfile.write(out.encode())
                self.wfile.flush()
            except OSError:
                return

class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

srv = Server(("127.0.0.1", int(sys.argv[1])), Handler)
print("ready", flush=True)
srv.serve_forever()

#!/usr/bin/python3
"""pyftpdlib peer for portprobe's FTP tests.

Binds 127.0.0.1 port 0 and prints "LISTENING <port>" once it accepts connections.
Settings come as one JSON argument: anon_root, user, password, user_root, tls
("off" | "explicit" | "required"), cert, key, masquerade_address, passive_ports ("N-M"),
active_disabled.
"""
import json
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer


def main() -> None:
    cfg = json.loads(sys.argv[1])
    auth = DummyAuthorizer()
    auth.add_anonymous(cfg["anon_root"])
    auth.add_user(cfg["user"], cfg["password"], cfg["user_root"], perm="elr")

    tls = cfg.get("tls", "off")
    if tls == "off":
        handler = type("Handler", (FTPHandler,), {})
    else:
        handler = type("Handler", (TLS_FTPHandler,), {})
        handler.certfile = cfg["cert"]
        handler.keyfile = cfg["key"]
        required = tls == "required"
        handler.tls_control_required = required
        handler.tls_data_required = required
    handler.authorizer = auth
    handler.banner = "portprobe pyftpdlib peer ready"
    if cfg.get("masquerade_address"):
        handler.masquerade_address = cfg["masquerade_address"]
    if cfg.get("passive_ports"):
        low, high = (int(p) for p in cfg["passive_ports"].split("-"))
        handler.passive_ports = range(low, high + 1)
    if cfg.get("active_disabled"):
        # pyftpdlib's way to turn a command off: leave it out of proto_cmds.
        handler.proto_cmds = {k: v for k, v in handler.proto_cmds.items() if k not in ("PORT", "EPRT")}

    server = FTPServer(("127.0.0.1", 0), handler)
    print("LISTENING %d" % server.address[1], flush=True)
    server.serve_forever(handle_exit=True)


if __name__ == "__main__":
    main()

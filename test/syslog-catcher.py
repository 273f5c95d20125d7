#!/usr/bin/env python3
"""Receive syslog datagrams on a Unix socket and append them, one per line,
to a file. The tests bind it to a private /dev/log to read what the module
logs."""
import os
import socket
import sys

sock_path, out_path = sys.argv[1], sys.argv[2]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
sock.bind(sock_path)
os.chmod(sock_path, 0o666)
with open(out_path, "ab", buffering=0) as out:
    while True:
        msg = sock.recv(65536)
        out.write(msg.rstrip(b"\n") + b"\n")

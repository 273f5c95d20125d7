#!/usr/bin/env python3
"""Talk to a per-user namespace's rendezvous socket the way an attacker or a
fake helper would, for the tests.

  rendezvous.py ask PATH TYPE   connect, send one message of TYPE (one
                                letter, see nsinit/handshake.h) and print
                                the letters of the answers until end-of-file
                                or 2 s of silence. Exit 3 if connect fails.
  rendezvous.py fake PATH       bind and listen at PATH as whoever runs it,
                                accept connections and never answer.
"""
import socket
import struct
import sys
import time

# struct nsinit_msg in nsinit/handshake.h: type, step, version, pad, err, pid,
# label[32].
MSG = struct.Struct("=BB2xii32s")


def ask(path, kind):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        s.connect(path)
    except OSError as e:
        print("connect: %s" % e.strerror)
        sys.exit(3)
    s.settimeout(2)
    got = ""
    try:
        # The helper may have closed a refused connection already.
        s.send(MSG.pack(ord(kind), 0, 0, 0, b""))
        while True:
            m = s.recv(MSG.size)
            if not m:
                break
            got += chr(m[0])
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        pass
    print("answer: %s" % (got or "none"))


def fake(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.bind(path)
    s.listen(16)
    conns = []
    while True:
        c, _ = s.accept()
        conns.append(c)
        time.sleep(0.01)


if __name__ == "__main__":
    if sys.argv[1] == "ask":
        ask(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "fake":
        fake(sys.argv[2])

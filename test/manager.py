#!/usr/bin/env python3
"""manager.py - both ends of a stand-in for systemd's user manager socket.

  manager.py serve PATH NAME   listen on PATH as the caller and answer each
                               connection: print one line per connection
                               (peer uid, peer pid, the text of the
                               descriptor the client passed), reply with
                               NAME and a descriptor of our own
  manager.py call PATH [SECS]  connect as systemctl --user does, check the
                               peer as systemd's bus_check_peercred() does,
                               pass a descriptor, print what came back;
                               retry until SECS have passed
  manager.py time PATH N       N such calls in a row; print the median
                               microseconds of one (0 if any failed)
  manager.py hold PATH N FLAG  open N connections and hold them, sending
                               nothing, until the file FLAG exists; print
                               "open=X closed=Y" whenever that changes
                               (closed: the peer ended it, end-of-file or
                               a reset)

The check is the one that fails in an isolated session without the relay:
SO_PEERCRED reports the PID of a peer outside our PID namespace as 0, and
systemd's getpeercred() refuses that with ENODATA.
"""
import os
import select
import socket
import struct
import sys
import time


def pipe_with(text):
    r, w = os.pipe()
    os.write(w, text.encode())
    os.close(w)
    return r


def peercred(sock):
    return struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))


def serve(path, name):
    if os.path.lexists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    print("listening", flush=True)
    while True:
        conn, _ = srv.accept()
        pid, uid, _ = peercred(conn)
        # As the manager does: only root or our own user may talk to us.
        if uid not in (0, os.geteuid()):
            print(f"refused uid={uid} pid={pid}", flush=True)
            conn.close()
            continue
        try:
            msg, fds, _, _ = socket.recv_fds(conn, 4096, 4)
            text = os.read(fds[0], 100).decode() if fds else "-"
            for fd in fds:
                os.close(fd)
            print(f"conn uid={uid} pid={pid} msg={msg.decode().strip()} fd={text}", flush=True)
            r = pipe_with("from-" + name)
            socket.send_fds(conn, [f"{name}\n".encode()], [r])
            os.close(r)
        except OSError as e:
            print(f"conn uid={uid} pid={pid} error={e}", flush=True)
        conn.close()


def call_once(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError as e:
        return f"connect: {e.strerror}"
    pid, uid, _ = peercred(s)
    if pid <= 0:
        return f"No data available (peer pid {pid})"
    if uid not in (0, os.geteuid()):
        return f"Operation not permitted (peer uid {uid})"
    r = pipe_with("from-client")
    try:
        socket.send_fds(s, [b"hello\n"], [r])
        msg, fds, _, _ = socket.recv_fds(s, 4096, 4)
    except (BrokenPipeError, ConnectionResetError):
        msg = b""
    os.close(r)
    if not msg:
        return f"closed by peer pid {pid}"
    text = os.read(fds[0], 100).decode() if fds else "-"
    return f"ok peer-pid={pid} reply={msg.decode().strip()} fd={text}"


def call(path, secs):
    deadline = time.monotonic() + secs
    while True:
        res = call_once(path)
        if res.startswith("ok") or time.monotonic() >= deadline:
            print(res, flush=True)
            return 0 if res.startswith("ok") else 1
        time.sleep(0.05)


def time_calls(path, n):
    took = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        if not call_once(path).startswith("ok"):
            print(0)
            return 1
        took.append((time.perf_counter_ns() - t0) // 1000)
    print(sorted(took)[len(took) // 2])
    return 0


def hold(path, n, flag):
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
        socks.append(s)
    closed = set()
    last = None
    poller = select.poll()
    for s in socks:
        poller.register(s, select.POLLIN)
    while True:
        status = f"open={len(socks) - len(closed)} closed={len(closed)}"
        if status != last:
            print(status, flush=True)
            last = status
        if os.path.exists(flag):
            break
        for fd, _ in poller.poll(50):
            try:
                data = os.read(fd, 1)
            except ConnectionResetError:
                data = b""
            if not data:
                closed.add(fd)
                poller.unregister(fd)
    for s in socks:
        s.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "hold":
        sys.exit(hold(sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    elif sys.argv[1] == "time":
        sys.exit(time_calls(sys.argv[2], int(sys.argv[3])))
    else:
        sys.exit(call(sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 0))

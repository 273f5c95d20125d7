#!/usr/bin/env python3
"""terminal.py - a terminal for a test, and what a process can do with its own.

  terminal.py drive CMD...  run CMD as the leader of a new session whose
                       controlling terminal is a new pseudo-terminal, as a
                       login does; copy everything CMD writes there to
                       stdout; exit with CMD's status. CMD gets no input.
  terminal.py probe TEXT    what the caller's terminal would suffer: print the
                       terminal of this process (tty_nr and session id
                       from /proc/self/stat), the foreground group of
                       stdin, then push TEXT with TIOCSTI into stdin and
                       into /dev/tty, and print each result
  terminal.py pending       the number of bytes waiting to be read on stdin's
                       terminal (FIONREAD): what TIOCSTI pushed there

TIOCSTI needs a process's controlling terminal (or CAP_SYS_ADMIN): a
process run as a user on root's terminal can push input that root's shell
then reads as if root had typed it.
"""
import fcntl
import os
import pty
import struct
import sys
import termios


def drive(cmd):
    pid, master = pty.fork()  # setsid, and the slave as controlling terminal
    if pid == 0:
        os.execvp(cmd[0], cmd)
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: every holder of the slave has closed it
            break
        if not data:
            break
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def stat_fields():
    with open("/proc/self/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    # After "comm)": state ppid pgrp session tty_nr tpgid
    return int(rest[3]), int(rest[4])


def push(fd, text):
    try:
        for ch in text.encode():
            fcntl.ioctl(fd, termios.TIOCSTI, bytes([ch]))
        return "pushed"
    except OSError as e:
        return "refused (%s)" % os.strerror(e.errno)


def probe(text):
    sid, tty_nr = stat_fields()
    print("probe: uid=%d pid=%d sid=%d tty_nr=%d" % (os.getuid(), os.getpid(), sid, tty_nr))
    try:
        print("probe: tcgetpgrp(0)=%d" % os.tcgetpgrp(0))
    except OSError as e:
        print("probe: tcgetpgrp(0) failed: %s" % os.strerror(e.errno))
    print("probe: TIOCSTI on stdin: %s" % push(0, text))
    try:
        fd = os.open("/dev/tty", os.O_RDWR)
    except OSError as e:
        print("probe: /dev/tty: %s" % os.strerror(e.errno))
    else:
        print("probe: TIOCSTI on /dev/tty: %s" % push(fd, text))
    sys.stdout.flush()
    return 7


def pending():
    n = struct.unpack("i", fcntl.ioctl(0, termios.FIONREAD, b"\0\0\0\0"))[0]
    print("pending=%d" % n)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "drive":
        sys.exit(drive(sys.argv[2:]))
    if len(sys.argv) == 3 and sys.argv[1] == "probe":
        sys.exit(probe(sys.argv[2]))
    if len(sys.argv) == 2 and sys.argv[1] == "pending":
        sys.exit(pending())
    sys.exit(__doc__)

#!/usr/bin/python3
"""idle.py: open N SMTP sessions to a loopback server, read each greeting,
and hold them open while the caller measures the server's memory.

Prints one line "READY greeted=G refused=R failed=F seconds=S" once every
session is greeted or has failed (or the open deadline passed, or nothing
progressed for --stall seconds: those still waiting count as failed),
then waits for a line on stdin (or --hold seconds), closes everything and
prints "CLOSED still_open=K" (sessions the server had not closed meanwhile).
Only loopback addresses are accepted. Every loop is bounded in time.
"""
import argparse
import errno
import ipaddress
import resource
import select
import selectors
import socket
import sys
import time


def parse_args():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--window", type=int, default=64,
                    help="sessions opening at once (connect..greeting)")
    ap.add_argument("--open-timeout", type=float, default=120.0)
    ap.add_argument("--stall", type=float, default=30.0,
                    help="give up when nothing progressed for this long")
    ap.add_argument("--hold", type=float, default=300.0,
                    help="longest time to hold the sessions")
    args = ap.parse_args()
    if not ipaddress.ip_address(args.host).is_loopback:
        ap.error("only loopback addresses")
    if not 1 <= args.count <= 100000:
        ap.error("count out of range")
    return args


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        soft = hard if hard == resource.RLIM_INFINITY else min(hard, need)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return soft


def main():
    a = parse_args()
    limit = raise_nofile(a.count + 64)
    if limit < a.count + 16:
        print(f"idle.py: RLIMIT_NOFILE {limit} too low for {a.count}",
              file=sys.stderr)
    sel = selectors.DefaultSelector()
    greeted = []          # sockets that got 220, held open
    refused = failed = 0  # got a non-220 reply / could not connect or EOF
    pending = {}          # fd -> [sock, buffer]
    started = 0
    t0 = time.monotonic()
    deadline = t0 + a.open_timeout
    family = socket.AF_INET6 if ":" in a.host else socket.AF_INET

    def finish(fd, ok, bad_reply=False):
        """Session fd is done: greeted (kept open) or not (closed)."""
        nonlocal refused, failed
        s = pending.pop(fd)[0]
        sel.unregister(s)
        if ok:
            greeted.append(s)
            return
        if bad_reply:
            refused += 1
        else:
            failed += 1
        s.close()

    progress = t0   # last time a session was started or finished
    while time.monotonic() < deadline and \
            time.monotonic() - progress < a.stall:
        before = (started, len(greeted), refused, failed)
        while started < a.count and len(pending) < a.window:
            try:
                s = socket.socket(family, socket.SOCK_STREAM)
            except OSError:
                failed += a.count - started   # out of descriptors
                started = a.count
                break
            s.setblocking(False)
            rc = s.connect_ex((a.host, a.port))
            started += 1
            if rc not in (0, errno.EINPROGRESS):
                failed += 1
                s.close()
                continue
            pending[s.fileno()] = [s, b""]
            sel.register(s, selectors.EVENT_READ)
        if not pending and started >= a.count:
            break
        for key, _ in sel.select(timeout=0.5):
            fd = key.fd
            s, buf = pending[fd]
            try:
                chunk = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                finish(fd, False)
                continue
            if not chunk:
                finish(fd, False)
                continue
            buf += chunk
            pending[fd][1] = buf
            for line in buf.split(b"\r\n")[:-1]:
                if line[:4] == b"220 ":
                    finish(fd, True)
                    break
                if line[:3] != b"220":
                    finish(fd, False, bad_reply=True)
                    break
            else:
                if len(buf) > 4096:
                    finish(fd, False)
        if (started, len(greeted), refused, failed) != before:
            progress = time.monotonic()
    failed += len(pending) + (a.count - started)
    for s, _ in list(pending.values()):
        s.close()
    elapsed = time.monotonic() - t0
    print(f"READY greeted={len(greeted)} refused={refused} failed={failed} "
          f"seconds={elapsed:.2f}", flush=True)

    # hold until told (a line or EOF on stdin) or --hold seconds
    if a.hold > 0:
        select.select([sys.stdin], [], [], a.hold)

    still_open = 0
    for s in greeted:
        try:
            data = s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            still_open += 0 if data == b"" else 1
        except BlockingIOError:
            still_open += 1
        except OSError:
            pass
        s.close()
    print(f"CLOSED still_open={still_open}", flush=True)


if __name__ == "__main__":
    main()

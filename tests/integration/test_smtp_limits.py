"""Limits a client cannot get past: line length, errors, idle time,
sessions in all and per client."""
import socket
import struct
import time

import pytest

from conftest import Raw
from helpers import assert_reply, ehlo, expect, no_reply


def connect(p):
    r = Raw(p.port)
    assert r.reply()[0] == 220
    return r


# ---- line length --------------------------------------------------------

def test_64k_mail_line(raw):
    r = raw()
    ehlo(r)
    # a valid MAIL head; the tail must never be run as a command either
    line = b"MAIL FROM:<a@b.example> " + b"QUIT " * (64 * 1024 // 5)
    assert len(line) >= 64 * 1024 and b"\n" not in line
    r.send(line + b"\r\nNOOP\r\n")
    assert_reply(r.reply(), 500, "5.5.2")
    # exactly one error: the next reply is the NOOP's
    assert r.reply() == (250, ["250 2.0.0 Ok"])
    # the head was not run as MAIL either
    expect(r, "MAIL FROM:<c@d.example>", 250, "2.1.0")
    expect(r, "RCPT TO:<alice@localhost>", 250, "2.1.5")


def test_64k_line_in_pieces(raw):
    r = raw()
    ehlo(r)
    r.send(b"MAIL FROM:<")
    for _ in range(16):
        r.send(b"a" * 4096)
        time.sleep(0.005)
    r.send(b">\r\n")
    assert_reply(r.reply(), 500, "5.5.2")
    assert_reply(r.cmd("NOOP"), 250, "2.0.0")
    expect(r, "MAIL FROM:<c@d.example>", 250, "2.1.0")


def test_line_length_limit(raw):
    """max_line_length = 2048 (default), CRLF included."""
    r = raw()
    ehlo(r)
    ok = b"NOOP " + b"n" * (2048 - 2 - 5)
    assert len(ok) + 2 == 2048
    r.send(ok + b"\r\n")
    assert_reply(r.reply(), 250, "2.0.0")
    r.send(ok + b"n\r\n")
    assert_reply(r.reply(), 500, "5.5.2")
    assert_reply(r.cmd("NOOP"), 250, "2.0.0")


def test_long_line_in_pipelined_batch(raw):
    r = raw()
    r.send(b"EHLO client.example\r\nNOOP " + b"z" * 10000 +
           b"\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@localhost>\r\n")
    assert r.reply()[0] == 250
    assert_reply(r.reply(), 500, "5.5.2")
    assert_reply(r.reply(), 250, "2.1.0")
    assert_reply(r.reply(), 250, "2.1.5")


# ---- errors -------------------------------------------------------------

def test_max_errors(make_petrel):
    p = make_petrel(users=["alice@localhost"],
                    extra={"smtp.max_errors": "3"})
    r = connect(p)
    try:
        ehlo(r)
        expect(r, "FOO", 500, "5.5.2")
        expect(r, "RCPT TO:<alice@localhost>", 503, "5.5.1")
        expect(r, "BAR", 500, "5.5.2")
        # the 421 comes right after the 3rd error, or at the latest
        # in answer to the next command
        if no_reply(r, 1.0):
            r.send(b"NOOP\r\n")
        assert_reply(r.reply(), 421, "4.7.0")
        assert r.closed()
    finally:
        r.close()


def test_errors_below_limit_are_fine(make_petrel):
    p = make_petrel(users=["alice@localhost"],
                    extra={"smtp.max_errors": "3"})
    r = connect(p)
    try:
        ehlo(r)
        expect(r, "FOO", 500, "5.5.2")
        expect(r, "BAR", 500, "5.5.2")
        for _ in range(10):
            expect(r, "NOOP", 250, "2.0.0")
        expect(r, "MAIL FROM:<a@b.example>", 250, "2.1.0")
    finally:
        r.close()


# ---- idle timeout -------------------------------------------------------

@pytest.mark.parametrize("greeted", [False, True])
def test_command_timeout(make_petrel, greeted):
    p = make_petrel(users=["alice@localhost"],
                    extra={"smtp.command_timeout": "1"})
    r = connect(p)
    try:
        if greeted:
            ehlo(r)
            expect(r, "MAIL FROM:<a@b.example>", 250, "2.1.0")
        t0 = time.time()
        r.sock.settimeout(6)
        assert_reply(r.reply(), 421, "4.4.2")
        assert r.closed()
        assert time.time() - t0 < 5
    finally:
        r.close()


def test_activity_resets_timeout(make_petrel):
    p = make_petrel(users=["alice@localhost"],
                    extra={"smtp.command_timeout": "1"})
    r = connect(p)
    try:
        for _ in range(5):        # 2.5 s of activity, 0.5 s apart
            time.sleep(0.5)
            expect(r, "NOOP", 250, "2.0.0")
    finally:
        r.close()


# ---- sessions -----------------------------------------------------------

def _third_refused(p):
    a, b = connect(p), connect(p)
    try:
        c = Raw(p.port)
        try:
            assert_reply(c.reply(), 421, "4.7.0")
            assert c.closed()
        finally:
            c.close()
        # the first two still work
        assert_reply(a.cmd("NOOP"), 250, "2.0.0")
        assert_reply(b.cmd("NOOP"), 250, "2.0.0")
        a.close()
        # a slot is free again once the server saw the close
        deadline = time.time() + 5
        while True:
            d = Raw(p.port)
            try:
                code, lines = d.reply()
                if code == 220:
                    assert_reply(d.cmd("NOOP"), 250, "2.0.0")
                    break
                assert_reply((code, lines), 421, "4.7.0")
            finally:
                d.close()
            assert time.time() < deadline, "slot never freed"
            time.sleep(0.1)
    finally:
        a.close()
        b.close()


def test_max_sessions_per_client(make_petrel):
    _third_refused(make_petrel(
        users=["alice@localhost"],
        extra={"smtp.max_sessions_per_client": "2"}))


def test_max_sessions(make_petrel):
    _third_refused(make_petrel(users=["alice@localhost"],
                               extra={"smtp.max_sessions": "2"}))


def test_session_slots_released(make_petrel):
    """Every way a session ends gives its per-client slot back: QUIT,
    too many errors, idle timeout, the client resetting the connection."""
    p = make_petrel(users=["alice@localhost"],
                    extra={"smtp.max_sessions_per_client": "2",
                           "smtp.max_errors": "1",
                           "smtp.command_timeout": "1"})

    def slot_free():
        d = Raw(p.port)
        try:
            code, lines = d.reply()
            if code == 220:
                return True
            assert_reply((code, lines), 421, "4.7.0")
            return False
        finally:
            d.close()

    def two_sessions():
        """Two sessions at once are allowed (polls while closes land).
        On success both end with QUIT, and petrel has freed them when
        they read its close: the next connect finds both slots free."""
        deadline = time.time() + 5
        while time.time() < deadline:
            a, b = Raw(p.port), Raw(p.port)
            try:
                if a.reply()[0] == 220 and b.reply()[0] == 220:
                    for r in (a, b):
                        expect(r, "QUIT", 221, "2.0.0")
                        assert r.closed()
                    return True
            finally:
                a.close()
                b.close()
            time.sleep(0.1)
        return False

    for _ in range(3):
        r = connect(p)
        expect(r, "QUIT", 221, "2.0.0")
        assert r.closed()
        r.close()
    assert two_sessions()
    for _ in range(3):
        r = connect(p)
        r.send(b"FOO\r\n")
        assert r.reply()[0] == 500
        if no_reply(r, 1.0):
            r.send(b"NOOP\r\n")
        assert_reply(r.reply(), 421, "4.7.0")
        assert r.closed()
        r.close()
    assert two_sessions()
    for _ in range(3):
        r = connect(p)
        r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                          struct.pack("ii", 1, 0))
        r.send(b"MAIL")   # half a command, then RST
        r.close()
    assert two_sessions()
    r = connect(p)
    r.sock.settimeout(6)
    assert_reply(r.reply(), 421, "4.4.2")
    r.close()
    assert two_sessions()
    assert slot_free()

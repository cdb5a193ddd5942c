"""Small helpers shared by the integration tests: reply checks, the
layout of a delivered message, polling. No fixtures here (see conftest.py)."""
import re
import socket
import time

HELO = "client.example"
SENDER = "sender@example.org"
EHLO_LINES = [
    "250-mx.test",
    "250-PIPELINING",
    "250-SIZE 52428800",
    "250-8BITMIME",
    "250-SMTPUTF8",
    "250-ENHANCEDSTATUSCODES",
    "250-DSN",
    "250-STARTTLS",
    "250 CHUNKING",
]
QID_RE = re.compile(r"^250 2\.0\.0 Ok: queued as ([0-9A-Z]{13})$")


def assert_reply(got, code, enh=None):
    """got is (code, lines) from Raw.reply()/Raw.cmd(). Every line must
    carry the code (and the enhanced code, RFC 2034), '-' on all lines but
    the last."""
    c, lines = got
    assert c == code, f"expected {code} {enh or ''}, got {lines!r}"
    for i, line in enumerate(lines):
        sep = " " if i == len(lines) - 1 else "-"
        want = f"{code}{sep}"
        if enh is not None:
            want += enh
        assert line.startswith(want), f"expected {want!r}..., got {lines!r}"
        rest = line[len(want):]
        assert enh is None or rest == "" or rest.startswith(" "), lines


def expect(r, line, code, enh=None):
    """Send one command line on a Raw connection and check the reply."""
    got = r.cmd(line)
    assert_reply(got, code, enh)
    return got


def qid(got):
    """The queue id from a "250 2.0.0 Ok: queued as QID" reply."""
    c, lines = got
    assert len(lines) == 1, lines
    m = QID_RE.match(lines[0])
    assert m, f"not a queued reply: {lines!r}"
    return m.group(1)


def ehlo(r, name=HELO):
    c, lines = r.cmd(f"EHLO {name}")
    assert c == 250, lines
    return lines


def begin(r, rcpts=("alice@localhost",), sender=SENDER):
    """EHLO, MAIL, RCPT..., DATA -> 354 on a Raw connection."""
    ehlo(r)
    expect(r, f"MAIL FROM:<{sender}>", 250, "2.1.0")
    for rc in rcpts:
        expect(r, f"RCPT TO:<{rc}>", 250, "2.1.5")
    c, lines = r.cmd("DATA")
    assert c == 354, lines


def send_message(r, content: bytes, rcpts=("alice@localhost",),
                 sender=SENDER):
    """A whole DATA transaction; content ends with CRLF and is already
    dot-stuffed. Returns the queue id."""
    begin(r, rcpts, sender)
    r.send(content + b".\r\n")
    return qid(r.reply())


def split_delivered(msg: bytes):
    """Split a delivered Maildir file into (return_path_line,
    delivered_to_line, received_header (with its folds), original)."""
    pos = 0

    def line():
        nonlocal pos
        end = msg.index(b"\n", pos)
        out = msg[pos:end]
        pos = end + 1
        return out

    rp = line()
    dt = line()
    rec = line()
    while msg[pos:pos + 1] == b"\t":
        rec += b"\n" + line()
    return rp, dt, rec, msg[pos:]


def check_delivered(msg: bytes, original: bytes, rcpt="alice@localhost",
                    sender=SENDER, qid=None, helo=HELO, single=True):
    """Assert the exact layout of a delivered message: Return-Path,
    Delivered-To, Received, then the original with CRLF turned into LF."""
    assert b"\r" not in msg
    rp, dt, rec, rest = split_delivered(msg)
    assert rp == b"Return-Path: <%s>" % sender.encode()
    assert dt == b"Delivered-To: %s" % rcpt.encode()
    assert rec.startswith(b"Received: from %s (unknown [127.0.0.1])\n\t"
                          % helo.encode()), rec
    if qid is not None:
        assert b"by mx.test (petrel) with ESMTP id %s" % qid.encode() in rec
    if single:
        assert b"for <%s>" % rcpt.encode() in rec, rec
    assert rest == original.replace(b"\r\n", b"\n")


def wait_until(pred, timeout=10, step=0.02):
    """Poll pred() until it is true or timeout seconds pass; its last
    value (so a caller can use what it found)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def log_lines(petrel, *needles):
    """Lines of the petrel log that contain every needle."""
    return [ln for ln in petrel.log().splitlines()
            if all(n in ln for n in needles)]


def no_reply(r, timeout=0.3):
    """True if the server sends nothing within timeout."""
    r.sock.settimeout(timeout)
    try:
        chunk = r.sock.recv(65536)
    except socket.timeout:
        return True
    finally:
        r.sock.settimeout(10)
    r.buf += chunk
    return False

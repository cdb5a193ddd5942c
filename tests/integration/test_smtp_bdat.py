"""CHUNKING (RFC 3030): BDAT chunks, LAST, pipelining, errors that keep
the session in sync, size limit."""
import re
import time

import pytest

from conftest import Raw
from helpers import (EHLO_LINES, assert_reply, check_delivered, ehlo, expect,
                     log_lines, qid, wait_until)


def envelope(r, rcpts=("alice@localhost",)):
    ehlo(r)
    expect(r, "MAIL FROM:<sender@example.org>", 250, "2.1.0")
    for rc in rcpts:
        expect(r, f"RCPT TO:<{rc}>", 250, "2.1.5")


def bdat(r, data: bytes, last=False):
    r.send(b"BDAT %d%s\r\n" % (len(data), b" LAST" if last else b"") + data)
    return r.reply()


def assert_octets(got, *counts):
    """A non-LAST chunk's reply: "250 2.0.0 ... N octets received", where
    N is the chunk's size or the total so far (RFC 3030 does not say)."""
    assert_reply(got, 250, "2.0.0")
    m = re.search(r"\b([0-9]+) octets received", got[1][-1])
    assert m, got
    assert int(m.group(1)) in counts, got


def test_single_chunk_last(petrel, raw):
    r = raw()
    envelope(r)
    data = b"X:1\r\n\r\nz\r\n"
    assert len(data) == 10
    r.send(b"BDAT 10 LAST\r\n" + data)
    q = qid(r.reply())
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], data, qid=q)
    assert petrel.wait_queue_empty()


def test_several_chunks(petrel, raw):
    r = raw()
    envelope(r)
    chunks = [b"Subject: chunks\r\n", b"\r\nfirst line\r\n",
              b"second ", b"line\r\n.\r\n..dots stay\r\n"]
    total = 0
    for c in chunks[:-1]:
        total += len(c)
        assert_octets(bdat(r, c), len(c), total)
    q = qid(bdat(r, chunks[-1], last=True))
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    # no dot-unstuffing and no end marker in BDAT: bytes are bytes
    check_delivered(msgs[0], b"".join(chunks), qid=q)


def test_crlf_split_across_chunks(petrel, raw):
    r = raw()
    envelope(r)
    chunks = [b"Subject: split\r", b"\n\r", b"\nbody\r", b"\n"]
    total = 0
    for c in chunks[:-1]:
        total += len(c)
        assert_octets(bdat(r, c), len(c), total)
    q = qid(bdat(r, chunks[-1], last=True))
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], b"Subject: split\r\n\r\nbody\r\n", qid=q)


def test_bdat_0_last(petrel, raw):
    r = raw()
    envelope(r)
    a = b"Subject: zero\r\n\r\n"
    b = b"then last empty\r\n"
    assert_octets(bdat(r, a), len(a))
    assert_octets(bdat(r, b), len(b), len(a) + len(b))
    r.send(b"BDAT 0 LAST\r\n")
    q = qid(r.reply())
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    check_delivered(msgs[0], a + b, qid=q)


def test_bdat_pipelined(petrel, raw):
    r = raw()
    c1 = b"Subject: piped\r\n\r\n"
    c2 = b"RSET\r\nQUIT\r\n"     # looks like commands, is content
    r.send(b"EHLO client.example\r\nMAIL FROM:<sender@example.org>\r\n"
           b"RCPT TO:<alice@localhost>\r\nRCPT TO:<bob@localhost>\r\n"
           b"BDAT %d\r\n%sBDAT %d LAST\r\n%sNOOP\r\nQUIT\r\n"
           % (len(c1), c1, len(c2), c2))
    assert r.reply() == (250, EHLO_LINES)
    assert_reply(r.reply(), 250, "2.1.0")
    assert_reply(r.reply(), 250, "2.1.5")
    assert_reply(r.reply(), 250, "2.1.5")
    assert_octets(r.reply(), len(c1))
    q = qid(r.reply())
    assert_reply(r.reply(), 250, "2.0.0")
    assert_reply(r.reply(), 221, "2.0.0")
    assert r.closed()
    for user in ("alice", "bob"):
        msgs = petrel.wait_messages(user, 1)
        assert len(msgs) == 1
        check_delivered(msgs[0], c1 + c2, rcpt=f"{user}@localhost", qid=q,
                        single=False)


def test_two_bdat_transactions(petrel, raw):
    r = raw()
    envelope(r)
    one = b"Subject: one\r\n\r\n1\r\n"
    q1 = qid(bdat(r, one, last=True))
    expect(r, "MAIL FROM:<sender@example.org>", 250, "2.1.0")
    expect(r, "RCPT TO:<alice@localhost>", 250, "2.1.5")
    two = b"Subject: two\r\n\r\n2\r\n"
    q2 = qid(bdat(r, two, last=True))
    assert q1 != q2
    msgs = petrel.wait_messages("alice", 2)
    assert len(msgs) == 2
    assert sorted(m.split(b"\n\n", 1)[1] for m in msgs) == [b"1\n", b"2\n"]


@pytest.mark.parametrize("last", [False, True])
def test_bdat_before_mail(petrel, raw, last):
    r = raw()
    ehlo(r)
    data = b"QUIT\r\n"     # consumed as chunk bytes, never run
    assert_reply(bdat(r, data, last), 503, "5.5.1")
    assert_reply(r.cmd("NOOP"), 250, "2.0.0")
    expect(r, "MAIL FROM:<sender@example.org>", 250, "2.1.0")


def test_bdat_before_ehlo(raw):
    r = raw()
    assert_reply(bdat(r, b"NOOP\r\nNOOP\r\n"), 503, "5.5.1")
    assert_reply(r.cmd("VRFY x"), 252, "2.5.0")


@pytest.mark.parametrize("last", [False, True])
def test_bdat_no_valid_recipient(petrel, raw, last):
    r = raw()
    ehlo(r)
    expect(r, "MAIL FROM:<sender@example.org>", 250, "2.1.0")
    expect(r, "RCPT TO:<nobody@localhost>", 550, "5.1.1")
    data = b"RCPT TO:<alice@localhost>\r\n"
    assert_reply(bdat(r, data, last), 554, "5.5.1")
    assert_reply(r.cmd("NOOP"), 250, "2.0.0")
    assert wait_until(lambda: petrel.tmp_files() == [], 5)
    assert log_lines(petrel, "smtp accepted") == []


def test_rejected_bdat_pipelined(petrel, raw):
    """A refused BDAT's bytes are read and dropped even when they arrive
    in the same write as the commands around them."""
    r = raw()
    chunk = b"QUIT\r\n"
    r.send(b"EHLO client.example\r\nMAIL FROM:<a@b.example>\r\n"
           b"RCPT TO:<nobody@localhost>\r\nBDAT %d LAST\r\n%s"
           b"NOOP\r\nRSET\r\nBDAT %d\r\n%sVRFY x\r\n"
           % (len(chunk), chunk, len(chunk), chunk))
    assert r.reply() == (250, EHLO_LINES)
    assert_reply(r.reply(), 250, "2.1.0")
    assert_reply(r.reply(), 550, "5.1.1")
    assert_reply(r.reply(), 554, "5.5.1")
    assert_reply(r.reply(), 250, "2.0.0")
    assert_reply(r.reply(), 250, "2.0.0")
    assert_reply(r.reply(), 503, "5.5.1")
    assert_reply(r.reply(), 252, "2.5.0")
    assert log_lines(petrel, "smtp accepted") == []


def test_data_after_bdat(petrel, raw):
    r = raw()
    envelope(r)
    c = b"Subject: mixed\r\n\r\n"
    assert_octets(bdat(r, c), len(c))
    expect(r, "DATA", 503, "5.5.1")
    assert_reply(r.cmd("NOOP"), 250, "2.0.0")


@pytest.mark.parametrize("line", ["BDAT x", "BDAT", "BDAT -1", "BDAT 0x10",
                                  "BDAT x LAST"])
def test_bdat_bad_size_closes(petrel, raw, line):
    r = raw()
    envelope(r)
    assert_reply(r.cmd(line), 501, "5.5.4")
    assert r.closed()
    assert wait_until(lambda: petrel.tmp_files() == [], 5)
    assert log_lines(petrel, "smtp accepted") == []


def test_bdat_too_big(make_petrel):
    p = make_petrel(users=["alice@localhost"],
                    extra={"smtp.max_message_size": "10K"})
    r = Raw(p.port)
    try:
        assert r.reply()[0] == 220
        envelope(r)
        big = b"Subject: big\r\n\r\n" + (b"b" * 78 + b"\r\n") * 250  # 20 KB
        assert_reply(bdat(r, big, last=True), 552, "5.3.4")
        assert_reply(r.cmd("NOOP"), 250, "2.0.0")
        # two chunks, each under the limit, together over it
        expect(r, "MAIL FROM:<sender@example.org>", 250, "2.1.0")
        expect(r, "RCPT TO:<alice@localhost>", 250, "2.1.5")
        half = (b"h" * 78 + b"\r\n") * 100   # 8 KB
        assert_octets(bdat(r, half), len(half))
        assert_reply(bdat(r, half, last=True), 552, "5.3.4")
        assert_reply(r.cmd("NOOP"), 250, "2.0.0")
        assert wait_until(lambda: p.tmp_files() == [] and
                          p.queue_files() == [], 5)
        assert p.messages("alice") == []
        assert log_lines(p, "smtp accepted") == []
    finally:
        r.close()


def test_disconnect_mid_bdat(petrel, raw):
    r = raw()
    envelope(r)
    r.send(b"BDAT 1000 LAST\r\nSubject: cut\r\n\r\nonly part")
    time.sleep(0.3)     # let the server start the spool file
    r.close()
    assert wait_until(lambda: petrel.tmp_files() == [] and
                      petrel.queue_files() == [], 5)
    assert petrel.messages("alice") == []
    assert log_lines(petrel, "smtp accepted") == []

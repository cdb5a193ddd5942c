"""PIPELINING (RFC 2920): batches in one write get every reply, in order,
and big batches do not deadlock the server against a slow reader."""
import concurrent.futures
import socket
import threading
import time

from conftest import Raw
from helpers import EHLO_LINES, assert_reply, check_delivered, no_reply, qid


def test_envelope_batch_then_data_batch(petrel, raw):
    r = raw()
    r.send(b"EHLO client.example\r\n"
           b"MAIL FROM:<sender@example.org>\r\n"
           b"RCPT TO:<alice@localhost>\r\n"
           b"RCPT TO:<nobody@localhost>\r\n"
           b"RCPT TO:<bob@localhost>\r\n"
           b"DATA\r\n")
    assert r.reply() == (250, EHLO_LINES)
    assert_reply(r.reply(), 250, "2.1.0")
    assert_reply(r.reply(), 250, "2.1.5")
    assert_reply(r.reply(), 550, "5.1.1")
    assert_reply(r.reply(), 250, "2.1.5")
    c, lines = r.reply()
    assert c == 354, lines
    content = b"Subject: pipelined\r\n\r\nline one\r\nline two\r\n"
    r.send(content + b".\r\nQUIT\r\n")
    q = qid(r.reply())
    assert_reply(r.reply(), 221, "2.0.0")
    assert r.closed()
    for user in ("alice", "bob"):
        msgs = petrel.wait_messages(user, 1)
        assert len(msgs) == 1
        check_delivered(msgs[0], content, rcpt=f"{user}@localhost", qid=q,
                        single=False)
    assert petrel.wait_queue_empty()


def _mail_rcpt_data_replies(r):
    """The replies to a pipelined MAIL, RCPT, DATA."""
    assert_reply(r.reply(), 250, "2.1.0")
    assert_reply(r.reply(), 250, "2.1.5")
    assert r.reply()[0] == 354


def test_two_transactions_in_one_write(petrel, raw):
    r = raw()
    one = b"Subject: one\r\n\r\nfirst\r\n"
    two = b"Subject: two\r\n\r\nsecond\r\n"
    r.send(b"EHLO client.example\r\n")
    assert r.reply() == (250, EHLO_LINES)
    r.send(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@localhost>\r\n"
           b"DATA\r\n")
    _mail_rcpt_data_replies(r)
    r.send(one + b".\r\nMAIL FROM:<sender@example.org>\r\n"
           b"RCPT TO:<alice@localhost>\r\nDATA\r\n")
    q1 = qid(r.reply())
    _mail_rcpt_data_replies(r)
    r.send(two + b".\r\nQUIT\r\n")
    q2 = qid(r.reply())
    assert_reply(r.reply(), 221, "2.0.0")
    assert q1 != q2
    msgs = petrel.wait_messages("alice", 2)
    assert len(msgs) == 2
    bodies = sorted(m.split(b"\n\n", 1)[1] for m in msgs)
    assert bodies == [b"first\n", b"second\n"]


def test_200_noops(raw):
    r = raw()
    r.send(b"NOOP\r\n" * 200)
    for i in range(200):
        assert r.reply() == (250, ["250 2.0.0 Ok"]), i
    # nothing extra is pending: the next reply belongs to the next command
    assert_reply(r.cmd("VRFY x"), 252, "2.5.0")


def test_mixed_batch_in_order(raw):
    r = raw()
    cmds = [("NOOP", 250, "2.0.0"), ("VRFY someone", 252, "2.5.0"),
            ("HELP", 214, "2.0.0"), ("RSET", 250, "2.0.0"),
            ("VRFY", 501, "5.5.4")]
    batch = cmds * 3   # 3 errors, well under max_errors
    r.send(b"".join(c.encode() + b"\r\n" for c, _, _ in batch) +
           b"EHLO client.example\r\nMAIL FROM:<a@b.example>\r\n"
           b"RCPT TO:<alice@localhost>\r\nRSET\r\n")
    for line, code, enh in batch:
        assert_reply(r.reply(), code, enh)
    assert r.reply() == (250, EHLO_LINES)
    assert_reply(r.reply(), 250, "2.1.0")
    assert_reply(r.reply(), 250, "2.1.5")
    assert_reply(r.reply(), 250, "2.0.0")
    assert_reply(r.cmd("QUIT"), 221, "2.0.0")


def _read_replies(r, n):
    """Read n replies; returns the list of (code, lines)."""
    return [r.reply() for _ in range(n)]


def test_1000_rcpt_in_one_write(make_petrel):
    p = make_petrel(users=["alice@localhost"],
                    extra={"smtp.max_recipients": "2000"})
    r = Raw(p.port, timeout=30)
    try:
        assert r.reply()[0] == 220
        n = 1000
        batch = (b"EHLO client.example\r\nMAIL FROM:<sender@example.org>\r\n"
                 + b"RCPT TO:<alice@localhost>\r\n" * n + b"DATA\r\n")
        with concurrent.futures.ThreadPoolExecutor(1) as ex:
            fut = ex.submit(_read_replies, r, n + 3)
            r.send(batch)
            replies = fut.result(timeout=60)
        assert replies[0] == (250, EHLO_LINES)
        assert_reply(replies[1], 250, "2.1.0")
        for i in range(n):
            assert_reply(replies[2 + i], 250, "2.1.5")
        assert replies[-1][0] == 354
        content = b"Subject: many\r\n\r\nonce\r\n"
        r.send(content + b".\r\n")
        q = qid(r.reply())
        msgs = p.wait_messages("alice", 1)
        assert p.wait_queue_empty()
        # duplicates of one recipient: delivered once
        msgs = p.messages("alice")
        assert len(msgs) == 1
        check_delivered(msgs[0], content, qid=q)
    finally:
        r.close()


def test_big_noop_flood_with_slow_reader(raw):
    """20000 pipelined NOOPs: about 280 KB of replies, more than the
    server's output high-water mark; the server must stop reading, not
    drop or reorder replies, and resume when the client reads."""
    r = raw()
    n = 20000
    r.sock.settimeout(60)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(_read_replies, r, n)
        r.send(b"NOOP\r\n" * n)
        replies = fut.result(timeout=90)
    assert len(replies) == n
    assert all(rep == (250, ["250 2.0.0 Ok"]) for rep in replies)
    assert_reply(r.cmd("VRFY x"), 252, "2.5.0")


def test_client_that_never_reads_does_not_block_others(petrel, raw):
    """One client floods NOOPs and never reads; another session still
    gets served."""
    hog = socket.create_connection(("127.0.0.1", petrel.port), 10)
    try:
        hog.settimeout(0.2)
        sent = 0
        payload = b"NOOP\r\n" * 10000
        try:
            for _ in range(20):  # bounded: at most 1.2 MB
                hog.sendall(payload)
                sent += 1
        except (socket.timeout, OSError):
            pass
        other = raw()
        assert_reply(other.cmd("EHLO client.example"), 250)
        assert_reply(other.cmd("NOOP"), 250, "2.0.0")
    finally:
        hog.close()


def test_late_reader_gets_every_reply(petrel, raw):
    """A client pipelines more replies than the kernel's socket buffers
    hold (400,000 NOOPs: 5.6 MB of replies) and starts reading only
    later: petrel's direct write comes up short, libevent finishes it,
    reading stops above the high-water mark and resumes as the output
    drains. Every reply arrives, in order, once; the session goes on."""
    n = 400000
    r = raw()
    r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    assert_reply(r.cmd("EHLO client.example"), 250)
    # the sender blocks while petrel does not read: a thread of its own
    sender = threading.Thread(target=r.sock.sendall,
                              args=(b"NOOP\r\n" * n,), daemon=True)
    sender.start()
    time.sleep(0.5)
    want = b"250 2.0.0 Ok\r\n" * n
    got = bytearray(r.buf)
    r.buf = b""
    r.sock.settimeout(30)
    while len(got) < len(want):
        chunk = r.sock.recv(1 << 16)
        assert chunk, f"closed after {len(got)} bytes"
        got += chunk
    sender.join(30)
    assert not sender.is_alive()
    assert bytes(got) == want
    assert no_reply(r, 0.2)
    assert_reply(r.cmd("MAIL FROM:<a@b.example>"), 250, "2.1.0")


def _big_content(lines):
    """A header, then lines of every length up to 997 (so that line ends
    and dot-stuffed lines fall at every offset of the socket's reads)."""
    body = b"".join((b"." if i % 7 == 0 else b"") +
                    bytes([0x41 + i % 26]) * (i * 37 % 998) + b"\r\n"
                    for i in range(lines))
    return b"Subject: big\r\n\r\n" + body


def test_big_body_and_next_transaction_in_one_write(petrel, raw):
    """A body far over the input bound, in one write with the end marker
    and the next transaction: the body is whole, unstuffed, and the
    commands behind it are answered once the first message is committed."""
    r = raw()
    content = _big_content(1500)
    stuffed = content.replace(b"\r\n.", b"\r\n..")
    assert len(stuffed) > 600 * 1024
    r.send(b"EHLO client.example\r\nMAIL FROM:<sender@example.org>\r\n"
           b"RCPT TO:<alice@localhost>\r\nDATA\r\n")
    assert r.reply() == (250, EHLO_LINES)
    _mail_rcpt_data_replies(r)
    second = b"Subject: second\r\n\r\nafter the big one\r\n"
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(r.send, stuffed + b".\r\n"
                        b"MAIL FROM:<sender@example.org>\r\n"
                        b"RCPT TO:<alice@localhost>\r\nDATA\r\n")
        q1 = qid(r.reply())
        fut.result(timeout=30)
    _mail_rcpt_data_replies(r)
    r.send(second + b".\r\nQUIT\r\n")
    q2 = qid(r.reply())
    assert_reply(r.reply(), 221, "2.0.0")
    msgs = petrel.wait_messages("alice", 2)
    assert len(msgs) == 2
    by_qid = {qq: m for qq in (q1, q2) for m in msgs
              if b"id %s" % qq.encode() in m.split(b"\n\n", 1)[0]}
    check_delivered(by_qid[q1], content, qid=q1)
    check_delivered(by_qid[q2], second, qid=q2)


def test_big_bdat_chunk_and_commands_in_one_write(petrel, raw):
    """A BDAT chunk far over the input bound, the LAST chunk and QUIT in
    one write: the chunk's bytes end exactly at its count, and what follows
    is read as commands."""
    r = raw()
    r.send(b"EHLO client.example\r\n")
    assert r.reply() == (250, EHLO_LINES)
    r.send(b"MAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@localhost>\r\n")
    assert_reply(r.reply(), 250, "2.1.0")
    assert_reply(r.reply(), 250, "2.1.5")
    chunk = _big_content(800)
    tail = b"tail\r\n"
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        fut = ex.submit(r.send, b"BDAT %d\r\n" % len(chunk) + chunk +
                        b"BDAT %d LAST\r\n" % len(tail) + tail + b"QUIT\r\n")
        assert_reply(r.reply(), 250, "2.0.0")
        q = qid(r.reply())
        fut.result(timeout=30)
    assert_reply(r.reply(), 221, "2.0.0")
    msgs = petrel.wait_messages("alice", 1)
    assert len(msgs) == 1
    # BDAT does no unstuffing: a leading dot stays
    check_delivered(msgs[0], chunk + tail, qid=q)

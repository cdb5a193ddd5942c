"""Outbound connection reuse (issue 5, [delivery] connection_reuse_time):
after a transaction that ended normally the sending petrel parks the
connection, and the next message to the same destination goes over it
with no DNS lookup, connect, greeting or EHLO. A scripted peer counts the
connections and records every command per connection; see
outbound_helpers.py for the DNS zone and the peer."""
import re
import smtplib
import time

from helpers import log_lines, wait_until
from outbound_helpers import PEER_ADDR, RECEIVER_ADDR, ScriptedPeer
# fixtures, used by name
from outbound_helpers import (dns, make_receiver,  # noqa: F401
                              make_sender, shared_port)

ALICE = "alice@localhost"


def msg(i):
    return (f"From: Alice <alice@localhost>\r\n"
            f"To: <n{i}@peer.test>\r\n"
            f"Subject: reuse {i}\r\n"
            f"Message-ID: <reuse-{i}@localhost>\r\n"
            f"\r\n"
            f"message {i}\r\n").encode()


class RecordingPeer(ScriptedPeer):
    """A ScriptedPeer that also keeps every command line with its
    connection number (lines), and can hang up on a connection:
      close_after[conn] = k   once k messages were accepted on conn, close
                              it (the client then holds it idle)
      drop_mail_at[conn] = k  close conn, without a reply, when its k-th
                              MAIL command (1-based) comes"""

    def __init__(self, addr, port, **kw):
        super().__init__(addr, port, **kw)
        self.lines = []
        self.close_after = {}
        self.drop_mail_at = {}

    def _dialogue(self, n, action, send, readline, f, txn_open):
        mails = [0]

        def accepted_here():
            with self._lock:
                return sum(1 for t in self.txns
                           if t.conn == n and t.delivered)

        def rl():
            k = self.close_after.get(n)
            if k is not None and accepted_here() >= k:
                raise EOFError      # _serve closes the socket
            line = readline()
            with self._lock:
                self.lines.append((n, line))
            if line[:4].upper() == "MAIL":
                mails[0] += 1
                if self.drop_mail_at.get(n) == mails[0]:
                    raise EOFError
            return line

        return super()._dialogue(n, action, send, rl, f, txn_open)

    def verbs(self, verb, conn=None):
        """How many times verb came (on conn, if given)."""
        with self._lock:
            return sum(1 for c, ln in self.lines
                       if ln[:4].upper() == verb and
                       (conn is None or c == conn))


def start_peer(shared_port, **kw):
    return RecordingPeer(PEER_ADDR, shared_port, **kw).start()


def submit_many(port, rcpts):
    """One SMTP session, one message per recipient; the queue ids."""
    ids = []
    with smtplib.SMTP("127.0.0.1", port, local_hostname="client.example",
                      timeout=10) as s:
        s.ehlo()
        for i, r in enumerate(rcpts):
            code, resp = s.mail(ALICE)
            assert code == 250, (code, resp)
            code, resp = s.rcpt(r)
            assert code == 250, (r, code, resp)
            code, resp = s.data(msg(i))
            assert code == 250, (code, resp)
            m = re.search(rb"queued as ([0-9A-Z]+)", resp)
            assert m, resp
            ids.append(m.group(1).decode())
    return ids


def sent_lines(p, ids):
    """The status=sent line of each queue id (None where there is none)."""
    out = []
    for q in ids:
        got = log_lines(p, q, "deliver to=", "status=sent")
        out.append(got[0] if got else None)
    return out


def wait_sent_lines(p, ids, timeout=5):
    """sent_lines() once every queue id has one, else None (after
    timeout seconds)."""
    def all_sent():
        lines = sent_lines(p, ids)
        return lines if all(lines) else None
    return wait_until(all_sent, timeout)


def conn_use(line):
    m = re.search(r" conn_use=(\d+) ", line)
    return int(m.group(1)) if m else 1


def no_trouble(snd, ids):
    """No deferral, bounce or failed try was logged for these messages."""
    for q in ids:
        assert not log_lines(snd, q, "status=deferred"), snd.log()
        assert not log_lines(snd, q, "status=bounced"), snd.log()
        assert not log_lines(snd, q, "remote try failed"), snd.log()


def test_five_messages_one_connection(make_sender, shared_port):
    """Five messages sent in a row to one domain: one connection, one EHLO,
    five transactions; the log numbers the uses; after the reuse time the
    idle connection is closed with QUIT."""
    p = start_peer(shared_port)
    try:
        snd = make_sender(extra={"delivery.destination_concurrency": "1",
                                 "delivery.connection_reuse_time": "2s"})
        ids = submit_many(snd.port, [f"n{i}@peer.test" for i in range(5)])
        assert wait_until(lambda: len(p.delivered()) == 5, 15), snd.log()
        assert p.connections == 1, snd.log()
        assert p.verbs("EHLO") == 1
        assert p.verbs("RSET") == 0     # RFC 5321: MAIL may follow at once
        lines = wait_sent_lines(snd, ids)
        assert lines, snd.log()
        relay = f"relay=mx.peer.test[{PEER_ADDR}]:{shared_port}"
        assert all(relay in ln for ln in lines), lines
        assert sorted(conn_use(ln) for ln in lines) == [1, 2, 3, 4, 5], lines
        no_trouble(snd, ids)
        assert p.verbs("QUIT") == 0
        # idle for connection_reuse_time: QUIT, the peer sees it close
        assert wait_until(lambda: p.verbs("QUIT") == 1, 5), snd.log()
        assert snd.wait_queue_empty()
    finally:
        p.stop()


def test_reuse_under_tls(make_sender, make_receiver, shared_port):
    """To a petrel that offers STARTTLS: three messages over one TLS
    session (one connect, STARTTLS once), then QUIT under TLS when the
    connection has idled for connection_reuse_time."""
    rcv = make_receiver()
    snd = make_sender(extra={"delivery.destination_concurrency": "1",
                             "delivery.connection_reuse_time": "1s"})
    ids = submit_many(snd.port, ["bob@remote.test"] * 3)
    got = rcv.wait_messages("bob", 3, domain="remote.test")
    assert len(got) == 3, snd.log()
    for m in got:
        assert b"with ESMTPS id" in m, m[:400]
    lines = wait_sent_lines(snd, ids)
    assert lines, snd.log()
    assert sorted(conn_use(ln) for ln in lines) == [1, 2, 3], lines
    relay = f"relay=mx1.remote.test[{RECEIVER_ADDR}]:{shared_port}"
    assert all(relay in ln for ln in lines), lines
    no_trouble(snd, ids)
    # the receiver saw one session from the sender (helo mx.test): all
    # three messages, then the QUIT sent under TLS once it idled
    sessions = {re.search(r"sess=(\w+)", ln).group(1)
                for ln in log_lines(rcv, "smtp helo name=mx.test")}
    assert len(sessions) == 1, rcv.log()
    bye = wait_until(lambda: log_lines(rcv, "smtp disconnect", "mail="), 5)
    assert bye and len(bye) == 1, rcv.log()
    assert "ehlo=2 mail=3 " in bye[0] and "quit=1" in bye[0], bye


def test_burst_uses_fewer_connections(make_sender, shared_port):
    """The default destination_concurrency: messages that start while
    another is in flight open their own connections, but later ones take
    the parked ones: fewer connections than messages."""
    p = start_peer(shared_port)
    try:
        snd = make_sender()
        ids = submit_many(snd.port, [f"n{i}@peer.test" for i in range(5)])
        assert wait_until(lambda: len(p.delivered()) == 5, 15), snd.log()
        ids += submit_many(snd.port, [f"m{i}@peer.test" for i in range(5)])
        assert wait_until(lambda: len(p.delivered()) == 10, 15), snd.log()
        assert p.connections < 10, p.connections
        no_trouble(snd, ids)
    finally:
        p.stop()


def test_reuse_disabled(make_sender, shared_port):
    """connection_reuse_time = 0: a connection (and QUIT) per message."""
    p = start_peer(shared_port)
    try:
        snd = make_sender(extra={"delivery.destination_concurrency": "1",
                                 "delivery.connection_reuse_time": "0"})
        ids = submit_many(snd.port, [f"n{i}@peer.test" for i in range(5)])
        assert wait_until(lambda: len(p.delivered()) == 5, 15), snd.log()
        assert p.connections == 5
        assert p.verbs("EHLO") == 5
        assert wait_until(lambda: p.verbs("QUIT") == 5, 5)
        lines = wait_sent_lines(snd, ids)
        assert lines and not any("conn_use=" in ln for ln in lines), lines
        no_trouble(snd, ids)
    finally:
        p.stop()


def test_peer_closes_parked_connection(make_sender, shared_port):
    """The peer hangs up on the idle connection: petrel drops it, and the
    next message connects afresh, with no deferral."""
    p = start_peer(shared_port)
    p.close_after = {0: 1}
    try:
        snd = make_sender(extra={"delivery.connection_reuse_time": "30s"})
        ids = submit_many(snd.port, ["n0@peer.test"])
        assert wait_until(lambda: len(p.delivered()) == 1, 10), snd.log()
        # let the close reach petrel while the connection is parked
        time.sleep(0.5)
        ids += submit_many(snd.port, ["n1@peer.test"])
        assert wait_until(lambda: len(p.delivered()) == 2, 10), snd.log()
        assert p.connections == 2
        assert [t.conn for t in p.delivered()] == [0, 1]
        assert p.verbs("MAIL", conn=0) == 1    # nothing tried on the dead one
        lines = wait_sent_lines(snd, ids)
        assert lines and [conn_use(ln) for ln in lines] == [1, 1], lines
        no_trouble(snd, ids)
    finally:
        p.stop()


def test_parked_connection_dead_at_use(make_sender, shared_port):
    """The parked connection dies just as it is used (the peer closes when
    MAIL comes): the message goes over a new connection on the same
    attempt, not deferred, and nothing counts as a failed host."""
    p = start_peer(shared_port)
    p.drop_mail_at = {0: 2}
    try:
        snd = make_sender(extra={"delivery.connection_reuse_time": "30s"})
        ids = submit_many(snd.port, ["n0@peer.test"])
        assert wait_until(lambda: len(p.delivered()) == 1, 10), snd.log()
        ids += submit_many(snd.port, ["n1@peer.test"])
        assert wait_until(lambda: len(p.delivered()) == 2, 10), snd.log()
        assert p.connections == 2
        assert p.verbs("MAIL", conn=0) == 2     # it was reused, then died
        assert [t.conn for t in p.delivered()] == [0, 1]
        lines = wait_sent_lines(snd, ids)
        assert lines and [conn_use(ln) for ln in lines] == [1, 1], lines
        no_trouble(snd, ids)
    finally:
        p.stop()


def test_421_on_parked_connection(make_sender, shared_port):
    """421 to MAIL on a parked connection (RFC 5321 3.8: the server is
    closing it): a new connection on the same attempt, no deferral."""
    p = start_peer(shared_port)
    p.mail = ["250 2.1.0 Ok", "421 4.3.2 closing connection", "250 2.1.0 Ok"]
    try:
        snd = make_sender(extra={"delivery.connection_reuse_time": "30s"})
        ids = submit_many(snd.port, ["n0@peer.test"])
        assert wait_until(lambda: len(p.delivered()) == 1, 10), snd.log()
        ids += submit_many(snd.port, ["n1@peer.test"])
        assert wait_until(lambda: len(p.delivered()) == 2, 10), snd.log()
        assert p.connections == 2
        assert [t.conn for t in p.delivered()] == [0, 1]
        no_trouble(snd, ids)
    finally:
        p.stop()


def test_connection_carries_at_most_100_messages(make_sender, shared_port):
    """After its 100th message a connection is closed (QUIT), and the
    101st message opens the next one."""
    p = start_peer(shared_port)
    try:
        snd = make_sender(extra={"delivery.destination_concurrency": "1"})
        ids = submit_many(snd.port, [f"n{i}@peer.test" for i in range(101)])
        assert wait_until(lambda: len(p.delivered()) == 101, 60), snd.log()
        assert p.connections == 2
        assert sum(1 for t in p.delivered() if t.conn == 0) == 100
        assert p.verbs("QUIT", conn=0) == 1
        lines = wait_sent_lines(snd, ids)
        assert lines and max(conn_use(ln) for ln in lines) == 100
        no_trouble(snd, ids)
    finally:
        p.stop()

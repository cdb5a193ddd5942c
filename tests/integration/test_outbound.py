"""Outbound delivery (issue 5): MX lookup against a real DNS server
(dnsmasq), delivery to a second petrel, to a scripted SMTP peer, to Postfix's
smtp-sink and to Dovecot over LMTP; retries, bounces and the DSN reports
(RFC 3461, RFC 3464, RFC 6522), queue lifetime, double bounces, smarthost,
and a crash in the middle of DATA.

Every receiver listens on its own loopback address with the same port P
(delivery.remote_port is one port for every MX host); see
outbound_helpers.py for the zone."""
import email.utils
import os
import re
import subprocess
import time
from datetime import datetime, timezone

import pytest

from conftest import BIN
from helpers import log_lines, split_delivered, wait_until
from outbound_helpers import (DEAD_ADDR, PEER_ADDR, RECEIVER_ADDR, SINK_ADDR,
                              SMTP_SINK, Dovecot, Report, SmtpSink, nospace,
                              reports, submit)
# fixtures, used by name
from outbound_helpers import (dns, make_receiver, make_sender,  # noqa: F401
                              peer, shared_port)

ALICE = "alice@localhost"
MSG = (b"From: Alice <alice@localhost>\r\n"
       b"To: Bob <bob@remote.test>\r\n"
       b"Subject: outbound\r\n"
       b"Message-ID: <outbound-1@localhost>\r\n"
       b"\r\n"
       b"first line\r\n"
       b".a line that starts with a dot\r\n"
       b"last line\r\n")


def sent_line(p, q, rcpt):
    """The log line saying q was sent to rcpt, or None."""
    got = log_lines(p, q, f"deliver to=<{rcpt}>", "status=sent")
    return got[0] if got else None


def status_lines(p, q, rcpt):
    """The status= words of q's delivery lines for rcpt, in order."""
    return [re.search(r"status=(\w+)", ln).group(1)
            for ln in log_lines(p, q, f"deliver to=<{rcpt}>", "status=")]


def reason(line):
    """The "(why)" at the end of a deliver log line."""
    m = re.search(r"status=\w+ \((.*)\)$", line)
    assert m, line
    return m.group(1)


def strip_received(rest: bytes):
    """Split one Received header (with its folded lines) off the front of
    an LF message: (header, remainder)."""
    assert rest.startswith(b"Received: "), rest[:200]
    end = rest.index(b"\n")
    while rest[end + 1:end + 2] in (b"\t", b" "):
        end = rest.index(b"\n", end + 1)
    return rest[:end], rest[end + 1:]


def wait_reports(p, n, user="alice", timeout=15):
    msgs = p.wait_messages(user, n, timeout=timeout)
    return [Report(m) for m in msgs]


def check_report_envelope(rep, to=ALICE, kind="failure"):
    """The outer layer of a DSN (RFC 6522, RFC 3461 6.1, RFC 3834)."""
    raw = rep.raw
    assert raw.startswith(b"Return-Path: <>\n"), raw[:300]
    msg = rep.msg
    assert msg.get_content_type() == "multipart/report", msg["Content-Type"]
    assert msg.get_param("report-type") == "delivery-status", \
        msg["Content-Type"]
    name, addr = email.utils.parseaddr(msg["From"])
    assert addr.lower() == "mailer-daemon@mx.test", msg["From"]
    assert email.utils.parseaddr(msg["To"])[1].lower() == to, msg["To"]
    assert msg["Auto-Submitted"] is not None and \
        msg["Auto-Submitted"].strip().lower().startswith("auto-replied"), \
        msg["Auto-Submitted"]
    assert msg["Date"] and msg["Message-ID"] and msg["Subject"]
    assert rep.parts[0].get_content_type() == "text/plain"
    assert rep.status_part is not None, [p.get_content_type()
                                         for p in rep.parts]
    assert rep.parts[1] is rep.status_part
    pm = rep.per_message
    assert nospace(pm["Reporting-MTA"]).lower() == "dns;mx.test", \
        pm["Reporting-MTA"]
    arrival = email.utils.parsedate_to_datetime(pm["Arrival-Date"])
    now = datetime.now(timezone.utc)
    assert abs((now - arrival).total_seconds()) < 120, pm["Arrival-Date"]


def ws(s):
    return re.sub(r"\s+", " ", str(s)).strip()


def blocks_for(reps, addr):
    """Every per-recipient block for addr over a list of reports."""
    return [b for r in reps for b in r.per_rcpt
            if nospace(b.get("Final-Recipient", "")).lower()
            == "rfc822;" + addr]


# --------------------------------------------------------------------------
# routing: MX, preference, implicit MX, null MX, NXDOMAIN, smarthost


def test_mx_delivery_to_petrel(make_sender, make_receiver, shared_port):
    rcv = make_receiver()
    snd = make_sender()
    q = submit(snd.port, ALICE, ["bob@remote.test"], MSG)
    msgs = rcv.wait_messages("bob", 1, domain="remote.test")
    assert len(msgs) == 1, snd.log()
    rp, dt, rec, rest = split_delivered(msgs[0])
    assert rp == b"Return-Path: <alice@localhost>"
    assert dt == b"Delivered-To: bob@remote.test"
    # the receiver's trace: our EHLO name; the hop used opportunistic
    # STARTTLS (the default) since the receiver offers it
    assert rec.startswith(b"Received: from mx.test (unknown [127.0.0."), rec
    assert b"by mx1.remote.test (petrel) with ESMTPS id" in rec, rec
    # then the sender's own trace (RFC 5321 4.4), then the message as sent
    ours, original = strip_received(rest)
    assert ours.startswith(b"Received: from client.example (unknown "
                           b"[127.0.0.1])\n\tby mx.test (petrel) with ESMTP "
                           b"id " + q.encode()), ours
    assert original == MSG.replace(b"\r\n", b"\n")
    line = wait_until(lambda: sent_line(snd, q, "bob@remote.test"), 5)
    assert line, snd.log()
    assert (f"deliver to=<bob@remote.test> relay=mx1.remote.test"
            f"[{RECEIVER_ADDR}]:{shared_port} ") in line, line
    assert snd.wait_queue_empty(), snd.queue_files()
    assert snd.messages("alice") == []


def test_mx_preference_fallback(make_sender, make_receiver, shared_port):
    """fallback.test: MX 10 on an address with nothing listening, MX 20 the
    receiver. The first failure is logged; the mail goes through on the
    same attempt, with no deferral and no bounce."""
    rcv = make_receiver()
    snd = make_sender()
    q = submit(snd.port, ALICE, ["bob@fallback.test"], MSG)
    assert len(rcv.wait_messages("bob", 1, domain="fallback.test")) == 1, \
        snd.log()
    line = wait_until(lambda: sent_line(snd, q, "bob@fallback.test"), 5)
    assert line and (f"relay=mx1.remote.test[{RECEIVER_ADDR}]:"
                     f"{shared_port}") in line, snd.log()
    failed = [ln for ln in log_lines(snd, q, DEAD_ADDR)
              if "refused" in ln.lower()]
    assert failed, "no log line gives why dead.fallback.test failed:\n" + \
        snd.log()
    assert status_lines(snd, q, "bob@fallback.test") == ["sent"], snd.log()
    assert snd.wait_queue_empty()
    assert snd.messages("alice") == []


def test_mx_pointing_to_self_bounces(make_sender):
    """loop.test's only MX is mx.test, this host (RFC 5321 5.1: mail loops
    back to myself)."""
    snd = make_sender()
    q = submit(snd.port, ALICE, ["bob@loop.test"], MSG)
    reps = wait_reports(snd, 1, timeout=10)
    assert len(reps) == 1, snd.log()
    b = reps[0].rcpt("bob@loop.test")
    assert b is not None and b["Action"].strip() == "failed", reps[0].raw
    assert b["Status"].strip() == "5.4.6", b["Status"]
    assert log_lines(snd, q, "to=<bob@loop.test>", "status=bounced")
    assert snd.wait_queue_empty()


def test_max_mx_hosts_limits_the_hosts_tried(make_sender, make_receiver):
    """max_mx_hosts=1: only the best MX (dead) is tried: deferred, and the
    MX 20 host gets nothing."""
    rcv = make_receiver()
    snd = make_sender(extra={"delivery.max_mx_hosts": "1"})
    q = submit(snd.port, ALICE, ["bob@fallback.test"], MSG)
    assert wait_until(lambda: log_lines(snd, q, "to=<bob@fallback.test>",
                                        "status=deferred"), 10), snd.log()
    line = log_lines(snd, q, "to=<bob@fallback.test>", "status=deferred")[0]
    assert "refused" in reason(line).lower(), \
        "deferred without its reason: " + line
    time.sleep(0.5)
    assert rcv.messages("bob", "fallback.test") == []
    assert not log_lines(snd, q, "mx1.remote.test"), snd.log()
    assert q in "".join(snd.queue_files())


def test_implicit_mx(make_sender, make_receiver, shared_port):
    """implicit.test has an A record and no MX (RFC 5321 5.1)."""
    rcv = make_receiver()
    snd = make_sender()
    q = submit(snd.port, ALICE, ["carl@implicit.test"], MSG)
    assert len(rcv.wait_messages("carl", 1, domain="implicit.test")) == 1, \
        snd.log()
    line = wait_until(lambda: sent_line(snd, q, "carl@implicit.test"), 5)
    assert line and (f"relay=implicit.test[{RECEIVER_ADDR}]:{shared_port}"
                     in line), snd.log()
    assert snd.wait_queue_empty()


@pytest.mark.parametrize("rcpt,status", [
    ("bob@nullmx.test", "5.1.10"),      # RFC 7505 3.2
    ("bob@nosuch.test", "5.1.2"),       # NXDOMAIN
])
def test_unroutable_domain_bounces_at_once(make_sender, rcpt, status):
    snd = make_sender()
    t0 = time.time()
    q = submit(snd.port, ALICE, [rcpt], MSG)
    reps = wait_reports(snd, 1, timeout=10)
    assert len(reps) == 1, snd.log()
    assert time.time() - t0 < 8, "bounced only after a retry"
    rep = reps[0]
    check_report_envelope(rep)
    assert rep.final_recipients() == [rcpt]
    b = rep.rcpt(rcpt)
    assert b["Action"].strip().lower() == "failed"
    assert b["Status"].strip() == status, b["Status"]
    assert log_lines(snd, q, f"to=<{rcpt}>", f"dsn={status}",
                     "status=bounced"), snd.log()
    assert not log_lines(snd, q, f"to=<{rcpt}>", "status=deferred")
    assert snd.wait_queue_empty()


def test_smarthost_overrides_mx(make_sender, make_receiver, peer,
                                shared_port):
    """All remote mail goes to the smarthost: elsewhere.test's MX is on
    DEAD_ADDR (where a peer now counts connections) and nowhere.test does
    not exist."""
    rcv = make_receiver()
    watch = peer(addr=DEAD_ADDR)
    snd = make_sender(extra={
        "delivery.smarthost": f"{RECEIVER_ADDR}:{shared_port}"})
    q = submit(snd.port, ALICE, ["bob@elsewhere.test", "zed@nowhere.test"],
               MSG)
    assert len(rcv.wait_messages("bob", 1, domain="elsewhere.test")) == 1, \
        snd.log()
    assert len(rcv.wait_messages("zed", 1, domain="nowhere.test")) == 1, \
        snd.log()
    for r in ("bob@elsewhere.test", "zed@nowhere.test"):
        line = wait_until(lambda: sent_line(snd, q, r), 5)
        assert line and f"[{RECEIVER_ADDR}]:{shared_port}" in line, snd.log()
    assert watch.connections == 0
    assert snd.wait_queue_empty()


def test_smarthost_auth_over_starttls(make_sender, make_receiver, peer):
    """smarthost_user/password: AUTH on the receiver's submission port,
    which needs STARTTLS first (outbound_tls=required)."""
    rcv = make_receiver(users=("alice@localhost", "bob@elsewhere.test"),
                        domains="localhost elsewhere.test", start=False)
    res = subprocess.run([BIN, "passwd", "-c", str(rcv.conf), ALICE],
                         input=b"secret\n", capture_output=True, timeout=20)
    assert res.returncode == 0, res
    rcv.start()
    watch = peer(addr=DEAD_ADDR)
    snd = make_sender(extra={
        "delivery.smarthost": f"127.0.0.1:{rcv.sub_port}",
        "delivery.smarthost_user": ALICE,
        "delivery.smarthost_password": "secret",
        "delivery.outbound_tls": "required"})
    q = submit(snd.port, ALICE, ["bob@elsewhere.test"], MSG)
    msgs = rcv.wait_messages("bob", 1, domain="elsewhere.test")
    assert len(msgs) == 1, snd.log() + rcv.log()
    _, _, rec, _ = split_delivered(msgs[0])
    assert b"with ESMTPSA id" in rec, rec
    assert wait_until(lambda: sent_line(snd, q, "bob@elsewhere.test"), 5)
    assert watch.connections == 0
    assert snd.wait_queue_empty()


def test_outbound_tls_none(make_sender, make_receiver):
    rcv = make_receiver()
    snd = make_sender(extra={"delivery.outbound_tls": "none"})
    submit(snd.port, ALICE, ["bob@remote.test"], MSG)
    msgs = rcv.wait_messages("bob", 1, domain="remote.test")
    assert len(msgs) == 1, snd.log()
    _, _, rec, _ = split_delivered(msgs[0])
    assert b"by mx1.remote.test (petrel) with ESMTP id" in rec, rec


def test_outbound_tls_required_without_starttls_defers(make_sender, peer):
    """The peer offers no STARTTLS: with outbound_tls=required nothing is
    sent in the clear; the recipient is deferred, saying why."""
    p = peer()
    snd = make_sender(extra={"delivery.outbound_tls": "required"})
    q = submit(snd.port, ALICE, ["tls@peer.test"], MSG)
    assert wait_until(lambda: log_lines(snd, q, "to=<tls@peer.test>",
                                        "status=deferred"), 10), snd.log()
    assert p.connections >= 1
    assert p.txns == [], [t.mail for t in p.txns]
    line = log_lines(snd, q, "to=<tls@peer.test>", "status=deferred")[0]
    assert "tls" in reason(line).lower(), \
        "deferred without its reason: " + line
    assert not log_lines(snd, q, "status=bounced")


# --------------------------------------------------------------------------
# replies of the peer: deferral, bounce, partial acceptance


def test_deferral_then_success(make_sender, peer, shared_port):
    p = peer()
    p.rcpt["dave@peer.test"] = ["451 4.3.0 try again later",
                                "250 2.1.5 Ok"]
    snd = make_sender()
    q = submit(snd.port, ALICE, ["dave@peer.test"], MSG)
    assert wait_until(lambda: p.delivered_to("dave@peer.test") == 1, 10), \
        snd.log()
    assert wait_until(lambda: sent_line(snd, q, "dave@peer.test"), 5), \
        snd.log()
    assert status_lines(snd, q, "dave@peer.test") == ["deferred", "sent"], \
        snd.log()
    deferred = log_lines(snd, q, "to=<dave@peer.test>", "status=deferred")[0]
    assert f"relay=mx.peer.test[{PEER_ADDR}]:{shared_port}" in deferred
    assert "451 4.3.0 try again later" in deferred, deferred
    assert p.rcpt_tries("dave@peer.test") == 2
    assert len(p.delivered()) == 1
    # what the peer got: our Received, then the message
    data = p.delivered()[0].data
    assert data.startswith(b"Received: from client.example (unknown "
                           b"[127.0.0.1])\r\n\tby mx.test (petrel)"), data
    assert data.endswith(b"\r\n" + MSG), data
    assert re.match(r"(?i)MAIL FROM:<alice@localhost>( |$)",
                    p.delivered()[0].mail), p.delivered()[0].mail
    assert snd.wait_queue_empty()
    assert snd.messages("alice") == []


def test_bounce_report_fields(make_sender, peer):
    """550 5.1.1 at RCPT: a failure report to the sender, field by field;
    ENVID and ORCPT come back, the whole message is returned."""
    p = peer()
    p.rcpt["bob@peer.test"] = ["550 5.1.1 <bob@peer.test>: no such user here"]
    snd = make_sender()
    q = submit(snd.port, ALICE, ["bob@peer.test"], MSG,
               mail_opts=["ENVID=env-42.test"],
               rcpt_opts={"bob@peer.test": ["ORCPT=rfc822;robert@peer.test"]})
    reps = wait_reports(snd, 1)
    assert len(reps) == 1, snd.log()
    rep = reps[0]
    check_report_envelope(rep)
    assert len(rep.parts) == 3, [x.get_content_type() for x in rep.parts]
    assert rep.per_message["Original-Envelope-Id"].strip() == "env-42.test"
    assert rep.final_recipients() == ["bob@peer.test"]
    b = rep.rcpt("bob@peer.test")
    assert nospace(b["Original-Recipient"]).lower() == \
        "rfc822;robert@peer.test", b["Original-Recipient"]
    assert b["Action"].strip() == "failed"
    assert b["Status"].strip() == "5.1.1"
    assert nospace(b["Remote-MTA"]).lower() == "dns;mx.peer.test", \
        b["Remote-MTA"]
    assert ws(b["Diagnostic-Code"]) == \
        "smtp; 550 5.1.1 <bob@peer.test>: no such user here", \
        b["Diagnostic-Code"]
    # the original message, whole (no RET: FULL is the default for ours)
    orig = rep.parts[2]
    assert orig.get_content_type() == "message/rfc822"
    inner = orig.get_payload(0)
    assert inner["Subject"] == "outbound"
    assert inner["Message-ID"] == "<outbound-1@localhost>"
    body = inner.get_payload()
    assert "first line" in body and "last line" in body
    assert ".a line that starts with a dot" in body
    assert log_lines(snd, q, "to=<bob@peer.test>", "dsn=5.1.1",
                     "status=bounced"), snd.log()
    assert snd.wait_queue_empty()


def test_bounce_ret_hdrs_returns_headers_only(make_sender, peer):
    p = peer()
    p.rcpt["bob@peer.test"] = ["550 5.1.1 no such user"]
    snd = make_sender()
    submit(snd.port, ALICE, ["bob@peer.test"], MSG, mail_opts=["RET=HDRS"])
    reps = wait_reports(snd, 1)
    assert len(reps) == 1, snd.log()
    rep = reps[0]
    check_report_envelope(rep)
    assert len(rep.parts) == 3
    part = rep.parts[2]
    assert part.get_content_type() == "text/rfc822-headers", \
        part.get_content_type()
    text = part.get_payload(decode=True)
    assert b"Subject: outbound" in text
    assert b"Message-ID: <outbound-1@localhost>" in text
    assert b"first line" not in text


def test_bounce_return_max_returns_headers_only(make_sender, peer):
    """A message over bounce_return_max comes back as its header only."""
    p = peer()
    p.rcpt["big@peer.test"] = ["550 5.1.1 no such user"]
    snd = make_sender(extra={"delivery.bounce_return_max": "1K"})
    big = MSG + b"".join(b"line %04d of a long body\r\n" % i
                         for i in range(200))
    submit(snd.port, ALICE, ["big@peer.test"], big)
    reps = wait_reports(snd, 1)
    assert len(reps) == 1, snd.log()
    check_report_envelope(reps[0])
    assert len(reps[0].parts) == 3
    part = reps[0].parts[2]
    assert part.get_content_type() == "text/rfc822-headers", \
        part.get_content_type()
    text = part.get_payload(decode=True)
    assert b"Subject: outbound" in text and b"line 0001" not in text
    assert len(reps[0].raw) < 4096


def test_partially_accepted_recipients(make_sender, peer):
    """One message, three recipients at one peer: 250, 451 then 250, 550.
    One delivered at once, one on the retry, one bounced; the report lists
    only the bounced one and nobody gets a second copy."""
    p = peer()
    p.rcpt["later@peer.test"] = ["451 4.2.1 mailbox busy", "250 2.1.5 Ok"]
    p.rcpt["bad@peer.test"] = ["550 5.1.1 <bad@peer.test>: no such user"]
    snd = make_sender()
    rcpts = ["ok@peer.test", "later@peer.test", "bad@peer.test"]
    q = submit(snd.port, ALICE, rcpts, MSG)
    assert wait_until(lambda: p.delivered_to("later@peer.test") == 1, 10), \
        snd.log()
    assert snd.wait_queue_empty(), snd.log()
    reps = wait_reports(snd, 1)
    time.sleep(0.5)
    reps = reports(snd, "alice")
    assert len(reps) == 1, snd.log()
    check_report_envelope(reps[0])
    assert reps[0].final_recipients() == ["bad@peer.test"]
    assert reps[0].rcpt("bad@peer.test")["Status"].strip() == "5.1.1"
    assert p.delivered_to("ok@peer.test") == 1
    assert p.delivered_to("later@peer.test") == 1
    assert p.delivered_to("bad@peer.test") == 0
    assert p.rcpt_tries("ok@peer.test") == 1     # not sent again
    assert p.rcpt_tries("bad@peer.test") == 1    # not tried again
    assert status_lines(snd, q, "ok@peer.test") == ["sent"]
    assert status_lines(snd, q, "later@peer.test") == ["deferred", "sent"]
    assert status_lines(snd, q, "bad@peer.test") == ["bounced"]


def test_data_end_reject_bounces_every_recipient(make_sender, peer):
    p = peer()
    p.data_end = ["554 5.6.0 message content rejected"]
    snd = make_sender()
    q = submit(snd.port, ALICE, ["a@peer.test", "b@peer.test"], MSG)
    for r in ("a@peer.test", "b@peer.test"):
        assert wait_until(lambda: log_lines(snd, q, f"to=<{r}>",
                                            "status=bounced"), 10), snd.log()
    assert snd.wait_queue_empty()
    time.sleep(0.3)
    reps = reports(snd, "alice")
    assert reps, snd.log()
    for r in ("a@peer.test", "b@peer.test"):
        bl = blocks_for(reps, r)
        assert len(bl) == 1, (r, [x.raw for x in reps])
        assert bl[0]["Action"].strip() == "failed"
        assert bl[0]["Status"].strip() == "5.6.0"
        assert "554 5.6.0 message content rejected" in \
            ws(bl[0]["Diagnostic-Code"])
    assert len(p.txns) == 1     # a 5xx is not retried


def test_mail_4xx_and_lost_connection_are_retried(make_sender, peer):
    """First connection: 451 to MAIL. Second: the peer closes after DATA.
    Third: accepted. Delivered exactly once, no report."""
    p = peer()
    p.mail = ["451 4.3.2 system busy", "250 2.1.0 Ok"]
    p.actions = [None, "drop_data", None]
    snd = make_sender()
    q = submit(snd.port, ALICE, ["eve@peer.test"], MSG)
    assert wait_until(lambda: p.delivered_to("eve@peer.test") == 1, 12), \
        snd.log()
    assert wait_until(lambda: sent_line(snd, q, "eve@peer.test"), 5)
    assert status_lines(snd, q, "eve@peer.test") == \
        ["deferred", "deferred", "sent"], snd.log()
    assert p.connections == 3
    assert snd.wait_queue_empty()
    assert snd.messages("alice") == []


def test_destination_concurrency(make_sender, peer):
    """destination_concurrency=1: four messages for one peer that is slow
    to answer the final dot are delivered one transaction at a time."""
    p = peer()
    p.data_delay = 0.25
    snd = make_sender(extra={"delivery.destination_concurrency": "1"})
    for i in range(4):
        submit(snd.port, ALICE, [f"n{i}@peer.test"], MSG)
    assert wait_until(lambda: len(p.delivered()) == 4, 15), snd.log()
    assert p.max_in_txn == 1
    assert snd.wait_queue_empty()


def test_greeting_timeout_then_retry(make_sender, peer):
    """A peer that never greets is given up after client_command_timeout;
    the retry goes through."""
    p = peer()
    p.actions = ["stall_greeting", None]
    snd = make_sender(extra={"delivery.client_command_timeout": "1s"})
    q = submit(snd.port, ALICE, ["tim@peer.test"], MSG)
    assert wait_until(lambda: p.delivered_to("tim@peer.test") == 1, 12), \
        snd.log()
    assert len(p.stall_durations) == 1
    assert 0.5 <= p.stall_durations[0] <= 5, p.stall_durations
    # The peer has the message before petrel reads its reply and logs it.
    assert wait_until(lambda: sent_line(snd, q, "tim@peer.test"), 5), \
        snd.log()
    assert status_lines(snd, q, "tim@peer.test") == ["deferred", "sent"], \
        snd.log()
    line = log_lines(snd, q, "to=<tim@peer.test>", "status=deferred")[0]
    assert re.search("greeting|timeout|timed out", reason(line)), \
        "deferred without its reason: " + line


# --------------------------------------------------------------------------
# NOTIFY (RFC 3461 4.1)


def test_notify_never_sends_no_report(make_sender, peer):
    p = peer()
    p.rcpt["never@peer.test"] = ["550 5.1.1 no such user"]
    snd = make_sender()
    q = submit(snd.port, ALICE, ["never@peer.test"], MSG,
               rcpt_opts={"never@peer.test": ["NOTIFY=NEVER"]})
    assert wait_until(lambda: log_lines(snd, q, "to=<never@peer.test>",
                                        "status=bounced"), 10), snd.log()
    assert snd.wait_queue_empty()
    time.sleep(1)
    assert snd.messages("alice") == []
    assert snd.messages("postmaster") == []


def test_notify_success_relayed_to_peer_without_dsn(make_sender, peer):
    """The peer does not offer DSN: we send no DSN parameters and report
    "relayed" ourselves (RFC 3461 5.2.2, 6.2)."""
    p = peer(dsn=False)
    snd = make_sender()
    submit(snd.port, ALICE, ["sue@peer.test"], MSG,
           mail_opts=["ENVID=e-1", "RET=HDRS"],
           rcpt_opts={"sue@peer.test": ["NOTIFY=SUCCESS",
                                        "ORCPT=rfc822;sue@peer.test"]})
    reps = wait_reports(snd, 1)
    assert len(reps) == 1, snd.log()
    rep = reps[0]
    check_report_envelope(rep)
    assert rep.final_recipients() == ["sue@peer.test"]
    b = rep.rcpt("sue@peer.test")
    assert b["Action"].strip() == "relayed"
    assert b["Status"].strip().startswith("2."), b["Status"]
    assert p.delivered_to("sue@peer.test") == 1
    txn = p.delivered()[0]
    for word in ("RET=", "ENVID="):
        assert word not in txn.mail.upper(), txn.mail
    for word in ("NOTIFY=", "ORCPT="):
        assert word not in txn.rcpts[0][0].upper(), txn.rcpts[0][0]


def test_notify_passed_on_to_peer_with_dsn(make_sender, peer):
    """The peer offers DSN: RET, ENVID, NOTIFY and ORCPT go with the mail
    and the next hop reports; we send no "relayed" notice."""
    p = peer(dsn=True)
    snd = make_sender()
    submit(snd.port, ALICE, ["sue@peer.test"], MSG,
           mail_opts=["RET=HDRS", "ENVID=e-77"],
           rcpt_opts={"sue@peer.test": ["NOTIFY=SUCCESS,DELAY",
                                        "ORCPT=rfc822;orig@peer.test"]})
    assert wait_until(lambda: p.delivered_to("sue@peer.test") == 1, 10), \
        snd.log()
    txn = p.delivered()[0]
    params = dict(w.split("=", 1) for w in txn.mail.split()[2:] if "=" in w)
    params = {k.upper(): v for k, v in params.items()}
    assert params.get("RET", "").upper() == "HDRS", txn.mail
    assert params.get("ENVID") == "e-77", txn.mail
    rline = txn.rcpts[0][0]
    m = re.search(r"(?i)\bNOTIFY=(\S+)", rline)
    assert m and set(m.group(1).upper().split(",")) == {"SUCCESS", "DELAY"}, \
        rline
    m = re.search(r"(?i)\bORCPT=(\S+)", rline)
    assert m and m.group(1).lower() == "rfc822;orig@peer.test", rline
    assert snd.wait_queue_empty()
    time.sleep(1)
    assert snd.messages("alice") == []


def test_notify_success_local_delivery(make_sender):
    snd = make_sender()
    submit(snd.port, ALICE, ["bob@localhost"], MSG,
           rcpt_opts={"bob@localhost": ["NOTIFY=SUCCESS"]})
    assert len(snd.wait_messages("bob", 1)) == 1
    reps = wait_reports(snd, 1)
    assert len(reps) == 1, snd.log()
    check_report_envelope(reps[0])
    assert reps[0].final_recipients() == ["bob@localhost"]
    b = reps[0].rcpt("bob@localhost")
    assert b["Action"].strip() == "delivered"
    assert b["Status"].strip().startswith("2."), b["Status"]
    assert b.get("Remote-MTA") is None


def test_delay_notice_once(make_sender, peer):
    """delay_warning=2s, a peer that answers 451 forever. slow1 asked for
    DELAY, slow2 gave no NOTIFY (FAILURE,DELAY), slow3 only FAILURE: one
    delay notice each for slow1 and slow2, none for slow3, and nothing more
    while the retries go on."""
    p = peer()
    for r in ("slow1", "slow2", "slow3"):
        p.rcpt[f"{r}@peer.test"] = ["451 4.3.0 try again later"]
    snd = make_sender(extra={"delivery.delay_warning": "2s"})
    t0 = time.time()
    submit(snd.port, ALICE, ["slow1@peer.test", "slow2@peer.test",
                             "slow3@peer.test"], MSG,
           rcpt_opts={"slow1@peer.test": ["NOTIFY=DELAY"],
                      "slow3@peer.test": ["NOTIFY=FAILURE"]})
    first = wait_reports(snd, 1, timeout=8)
    assert first, snd.log()
    assert time.time() - t0 >= 1.5, "delay notice before delay_warning"
    tries = p.rcpt_tries("slow1@peer.test")
    # watch until t0 + 9s
    time.sleep(max(0.0, t0 + 9 - time.time()))
    assert p.rcpt_tries("slow1@peer.test") > tries, "retries stopped"
    reps = reports(snd, "alice")
    for rep in reps:
        check_report_envelope(rep)
    assert len(blocks_for(reps, "slow1@peer.test")) == 1, \
        [r.raw for r in reps]
    assert len(blocks_for(reps, "slow2@peer.test")) == 1, \
        [r.raw for r in reps]
    assert blocks_for(reps, "slow3@peer.test") == []
    for r in ("slow1@peer.test", "slow2@peer.test"):
        b = blocks_for(reps, r)[0]
        assert b["Action"].strip() == "delayed"
        assert b["Status"].strip().startswith("4."), b["Status"]
    assert p.delivered() == []


def test_queue_lifetime_expiry(make_sender, peer):
    """max_lifetime=4s and a peer that answers 451 forever: a failure report
    after 4-7 s and the message leaves the queue."""
    p = peer()
    p.rcpt["late@peer.test"] = ["451 4.3.0 try again later"]
    snd = make_sender(extra={"queue.max_lifetime": "4s"})
    t0 = time.time()
    q = submit(snd.port, ALICE, ["late@peer.test"], MSG)
    reps = wait_reports(snd, 1, timeout=10)
    elapsed = time.time() - t0
    assert len(reps) == 1, snd.log()
    assert 3.5 <= elapsed <= 7.5, elapsed
    rep = reps[0]
    check_report_envelope(rep)
    b = rep.rcpt("late@peer.test")
    assert b is not None, rep.raw
    assert b["Action"].strip() == "failed"
    st = b["Status"].strip()
    assert st == "4.4.7" or st.startswith("5."), st
    assert log_lines(snd, q, "to=<late@peer.test>", "status=bounced"), \
        snd.log()
    assert snd.wait_queue_empty(), snd.queue_files()
    n = p.rcpt_tries("late@peer.test")
    time.sleep(2.5)
    assert p.rcpt_tries("late@peer.test") == n, "retried after giving up"


def test_lifetime_expiry_unreachable_host_says_why(make_sender):
    """The only MX refuses connections until max_lifetime: the report
    carries a 4.4.x status and why (there is no remote reply to quote)."""
    snd = make_sender(extra={"queue.max_lifetime": "3s"})
    q = submit(snd.port, ALICE, ["bob@elsewhere.test"], MSG)
    reps = wait_reports(snd, 1, timeout=10)
    assert len(reps) == 1, snd.log()
    check_report_envelope(reps[0])
    b = reps[0].rcpt("bob@elsewhere.test")
    assert b is not None and b["Action"].strip() == "failed", reps[0].raw
    assert b["Status"].strip() in ("4.4.1", "4.4.7"), b["Status"]
    why = ws(b.get("Diagnostic-Code", "")) + " " + ws(
        reps[0].parts[0].get_payload(decode=True).decode("utf-8", "replace"))
    assert "refused" in why.lower(), reps[0].raw.decode()
    assert log_lines(snd, q, "to=<bob@elsewhere.test>", "status=bounced")
    assert snd.wait_queue_empty()


# --------------------------------------------------------------------------
# double bounce


def test_double_bounce_to_postmaster(make_sender, peer):
    p = peer()
    p.rcpt["x@peer.test"] = ["550 5.1.1 no such user"]
    snd = make_sender(extra={"delivery.double_bounce": "postmaster"})
    q = submit(snd.port, "", ["x@peer.test"], MSG)
    msgs = snd.wait_messages("postmaster", 1, timeout=10)
    assert len(msgs) == 1, snd.log()
    rep = Report(msgs[0])
    assert rep.msg.get_content_type() == "multipart/report"
    b = rep.rcpt("x@peer.test")
    assert b is not None and b["Action"].strip() == "failed", rep.raw
    assert b["Status"].strip() == "5.1.1"
    assert log_lines(snd, q, "to=<x@peer.test>", "status=bounced")
    assert re.match(r"(?i)MAIL FROM:<>( |$)", p.txns[0].mail), p.txns[0].mail
    assert snd.wait_queue_empty()
    assert snd.messages("alice") == []


def test_double_bounce_drop(make_sender, peer):
    p = peer()
    p.rcpt["x@peer.test"] = ["550 5.1.1 no such user"]
    snd = make_sender(extra={"delivery.double_bounce": "drop"})
    q = submit(snd.port, "", ["x@peer.test"], MSG)
    assert wait_until(lambda: log_lines(snd, q, "double bounce dropped"),
                      10), snd.log()
    assert snd.wait_queue_empty()
    time.sleep(0.5)
    assert snd.messages("postmaster") == []
    assert snd.messages("alice") == []


# --------------------------------------------------------------------------
# other servers: smtp-sink, Dovecot LMTP


def test_smtp_sink_receives(make_sender, shared_port):
    if not os.path.exists(SMTP_SINK):
        pytest.skip(f"{SMTP_SINK} not installed (Debian package postfix)")
    sink = SmtpSink(SINK_ADDR, shared_port).start()
    try:
        snd = make_sender()
        q = submit(snd.port, ALICE, ["x@sink.test"], MSG)
        msgs = wait_until(sink.messages, 10)
        assert msgs and len(msgs) == 1, snd.log()
        head, _, body = msgs[0].partition(b"\nReceived: from mx.test ")
        fields = dict(ln.split(": ", 1) for ln in
                      head.decode().splitlines())
        assert fields["X-Helo-Args"] == "mx.test"
        assert fields["X-Mail-Args"].startswith("<alice@localhost>")
        assert fields["X-Rcpt-Args"].startswith("<x@sink.test>")
        assert b"Subject: outbound\n" in body
        assert b"\n.a line that starts with a dot\nlast line\n" in body
        assert wait_until(lambda: sent_line(snd, q, "x@sink.test"), 5)
        assert snd.wait_queue_empty()
    finally:
        sink.stop()


def test_lmtp_to_dovecot(make_sender):
    """lmtp.test is local and routed to Dovecot over TCP; frank over the
    unix socket. carol: accepted; dave: unknown to Dovecot (550 at RCPT,
    bounced); erin: her mailbox cannot be written (451 after DATA, one reply
    per recipient: retried, and no second copy for the others)."""
    dv = Dovecot(["carol@lmtp.test", "erin@lmtp.test", "frank@lmtp.test"],
                 broken=["erin@lmtp.test"]).start()
    try:
        lmtp_users = ["carol@lmtp.test", "dave@lmtp.test", "erin@lmtp.test",
                      "frank@lmtp.test"]
        snd = make_sender(
            extra={"local.domains": "localhost example.test lmtp.test",
                   "delivery.lmtp_routes":
                       f"frank@lmtp.test=unix:{dv.socket},"
                       f"lmtp.test=127.0.0.1:{dv.port}"},
            users=["alice@localhost"] + lmtp_users)
        q = submit(snd.port, ALICE, lmtp_users, MSG)
        for u in ("carol@lmtp.test", "frank@lmtp.test"):
            got = wait_until(lambda: dv.messages(u), 10)
            assert got and len(got) == 1, (u, snd.log(), dv.log())
            m = got[0]
            assert m.startswith(b"Return-Path: <alice@localhost>\n"), m
            assert b"\nSubject: outbound\n" in m
            assert m.endswith(b"\n.a line that starts with a dot\n"
                              b"last line\n"), m
        frank = wait_until(lambda: sent_line(snd, q, "frank@lmtp.test"), 5)
        assert frank and str(dv.socket) in frank, snd.log()
        carol = wait_until(lambda: sent_line(snd, q, "carol@lmtp.test"), 5)
        assert carol and f"127.0.0.1]:{dv.port}" in carol, snd.log()
        # dave: bounced with Dovecot's reply
        reps = wait_reports(snd, 1)
        assert len(reps) == 1, snd.log()
        check_report_envelope(reps[0])
        assert reps[0].final_recipients() == ["dave@lmtp.test"]
        b = reps[0].rcpt("dave@lmtp.test")
        assert b["Action"].strip() == "failed"
        assert b["Status"].strip() == "5.1.1"
        assert "550 5.1.1" in ws(b["Diagnostic-Code"]), b["Diagnostic-Code"]
        # erin: deferred, retried, never bounced; the others not resent
        assert wait_until(lambda: len(log_lines(
            snd, q, "to=<erin@lmtp.test>", "status=deferred")) >= 2, 10), \
            snd.log()
        assert not log_lines(snd, q, "to=<erin@lmtp.test>", "status=bounced")
        assert dv.messages("erin@lmtp.test") == []
        assert len(dv.messages("carol@lmtp.test")) == 1
        assert len(dv.messages("frank@lmtp.test")) == 1
        assert status_lines(snd, q, "carol@lmtp.test") == ["sent"]
        assert len(snd.wait_messages("alice", 2, timeout=0.5)) == 1
    finally:
        dv.stop()


# --------------------------------------------------------------------------
# crash


def test_sigkill_during_data_then_restart(make_sender, peer):
    """The peer takes the whole message and never answers the final dot;
    petrel is killed there and restarted. The mail is delivered again,
    whole, exactly once more, and leaves the queue."""
    p = peer()
    p.actions = ["stall_data_end", None]
    snd = make_sender()
    q = submit(snd.port, ALICE, ["kim@peer.test"], MSG)
    assert p.stalled.wait(10), snd.log()
    snd.kill()
    p.release()
    assert q in "".join(snd.queue_files())
    snd.start()
    assert wait_until(lambda: p.delivered_to("kim@peer.test") >= 1, 15), \
        snd.log()
    assert snd.wait_queue_empty(), snd.log()
    time.sleep(0.5)
    done = p.delivered()
    assert len(done) == 1, [t.mail for t in p.txns]
    stalled = p.txns[0]
    assert stalled.data_reply is None
    assert done[0].data == stalled.data    # the same whole message
    assert done[0].data.endswith(b"\r\n" + MSG)
    assert wait_until(lambda: sent_line(snd, q, "kim@peer.test"), 5)
    assert snd.messages("alice") == []


# --------------------------------------------------------------------------
# configuration


def test_check_accepts_every_delivery_key(make_sender, tmp_path):
    snd = make_sender(extra={
        "delivery.dns_timeout": "3s",
        "delivery.smarthost": "127.0.0.2:2525",
        "delivery.smarthost_user": "u@example.test",
        "delivery.smarthost_password": "pw",
        "delivery.outbound_tls": "opportunistic",
        "local.domains": "localhost lmtp.test",
        "delivery.lmtp_routes": "lmtp.test=127.0.0.1:24,"
                                "u@lmtp.test=unix:/run/dovecot/lmtp",
        "delivery.max_mx_hosts": "3",
        "delivery.max_addresses": "4",
        "delivery.destination_concurrency": "5",
        "delivery.delay_warning": "0",
        "delivery.double_bounce": "drop",
        "delivery.bounce_return_max": "64K",
        "queue.max_lifetime": "2d"}, start=False)
    res = subprocess.run([BIN, "check", "-c", str(snd.conf)],
                         capture_output=True, text=True, timeout=20)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip() == f"{snd.conf}: ok"

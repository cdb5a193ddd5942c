"""The command line: "petrel check" and "petrel serve" on good and bad
configurations."""
import re
import subprocess

import pytest

from conftest import BIN

BAD_CONF = "[smtp]\nmax_recipients = 0\nbogus = 1\n"


def run(*args, timeout=10):
    return subprocess.run([BIN, *args], capture_output=True, text=True,
                          timeout=timeout)


def assert_error_line(out, path, lineno, key):
    """Some line names the file, the line number and the key."""
    for line in out.splitlines():
        if str(path) not in line or key not in line:
            continue
        rest = line.replace(str(path), "")
        if re.search(rf"(?<![0-9]){lineno}(?![0-9])", rest):
            return
    pytest.fail(f"no line with {path}, line {lineno} and {key!r}:\n{out}")


def test_check_ok(make_petrel):
    p = make_petrel(start=False)
    res = run("check", "-c", str(p.conf))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout == f"{p.conf}: ok\n"


def test_check_bad(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text(BAD_CONF)
    res = run("check", "-c", str(conf))
    assert res.returncode == 1, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert_error_line(out, conf, 2, "max_recipients")
    assert_error_line(out, conf, 3, "bogus")
    assert "ok" not in res.stdout


def test_serve_bad(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text(BAD_CONF)
    try:
        res = run("serve", "-c", str(conf), timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("petrel serve ran with a bad configuration")
    assert res.returncode == 1, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert_error_line(out, conf, 2, "max_recipients")
    assert_error_line(out, conf, 3, "bogus")


@pytest.mark.parametrize("cmd", ["check", "serve"])
def test_bad_lmtp_route_refused(make_petrel, cmd):
    """A malformed [delivery] lmtp_routes item stops check and serve alike;
    serve must not start and silently ignore the route."""
    p = make_petrel(start=False,
                    extra={"delivery.lmtp_routes": "example.test=127.0.0.1:24"
                                                   ", nodest"})
    try:
        res = run(cmd, "-c", str(p.conf), timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail(f"petrel {cmd} ran with a bad lmtp_routes")
    assert res.returncode == 1, res.stdout + res.stderr
    out = res.stdout + res.stderr
    assert "lmtp_routes" in out and "'nodest'" in out, out


def test_check_missing_file(tmp_path):
    conf = tmp_path / "missing.conf"
    res = run("check", "-c", str(conf))
    assert res.returncode == 1, res.stdout + res.stderr
    assert str(conf) in res.stdout + res.stderr

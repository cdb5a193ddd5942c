#!/bin/bash
# bench/run.sh: benchmark petrel against Postfix and OpenSMTPD on this host.
#   bench/run.sh            full run; writes bench/RESULTS.md
#   bench/run.sh --smoke    tiny counts, petrel and smtp-sink, < 30 s (for CI)
# Other options go to bench/bench.py (see bench/README.md).
# Installs Postfix (for smtp-source and as a peer) and strace from Debian,
# fetches OpenSMTPD's .deb (it conflicts with postfix, so it is extracted
# into bench/.peers/, never installed), builds bench/commit_ceiling.c.
set -euo pipefail

BENCH=$(cd "$(dirname "$0")" && pwd)
REPO=$(dirname "$BENCH")
PEERS=$BENCH/.peers
SMOKE=0
for arg in "$@"; do
	[ "$arg" = --smoke ] && SMOKE=1
done

say() { echo "[run.sh] $*" >&2; }

SUDO=
if [ "$(id -u)" != 0 ]; then
	command -v sudo >/dev/null && SUDO=sudo
fi

installed() {
	dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null |
		grep -q '^install ok installed'
}

# --- Debian packages -------------------------------------------------------
need=()
for p in postfix strace gcc python3 util-linux; do
	installed "$p" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	say "installing: ${need[*]}"
	# "No configuration": the package must not set up or start the
	# system's own instance; the benchmark runs private instances.
	echo "postfix postfix/main_mailer_type select No configuration" |
		$SUDO debconf-set-selections
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive timeout 900 $SUDO apt-get install -y -qq \
		"${need[@]}" >&2
fi

mkdir -p "$PEERS"

# --- OpenSMTPD, extracted into bench/.peers/opensmtpd ----------------------
fetch_opensmtpd() {
	local root=$PEERS/opensmtpd dl=$PEERS/dl dep
	rm -f "$root.unavailable"
	[ -x "$root/usr/sbin/smtpd" ] && return 0
	rm -rf "$dl" "$root"
	mkdir -p "$dl" "$root"
	if ! (cd "$dl" && timeout 300 apt-get download opensmtpd) >&2; then
		echo "apt-get download opensmtpd failed" >"$root.unavailable"
		return 0
	fi
	# libraries it depends on that this host lacks, extracted beside it
	for dep in $(apt-cache depends opensmtpd 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^lib/ { print $2 }'); do
		installed "$dep" && continue
		say "fetching missing library package $dep"
		(cd "$dl" && timeout 300 apt-get download "$dep") >&2 || true
	done
	for deb in "$dl"/*.deb; do
		dpkg-deb -x "$deb" "$root"
	done
	if [ ! -x "$root/usr/sbin/smtpd" ]; then
		echo "no usr/sbin/smtpd in the opensmtpd package" \
			>"$root.unavailable"
		return 0
	fi
	local libs
	libs=$root/usr/lib/x86_64-linux-gnu:$root/lib/x86_64-linux-gnu
	if LD_LIBRARY_PATH=$libs ldd "$root/usr/sbin/smtpd" |
		grep -q 'not found'; then
		echo "smtpd has unresolved libraries:" \
			"$(LD_LIBRARY_PATH=$libs ldd "$root/usr/sbin/smtpd" |
				grep 'not found' | tr -s ' \t\n' ' ')" \
			>"$root.unavailable"
	fi
	return 0
}
if [ $SMOKE = 0 ]; then
	fetch_opensmtpd
	if [ -f "$PEERS/opensmtpd.unavailable" ]; then
		say "OpenSMTPD will not run: $(cat "$PEERS/opensmtpd.unavailable")"
	fi
fi

# --- tools -----------------------------------------------------------------
gcc -std=c17 -O2 -Wall -Wextra -Werror -pthread \
	-o "$PEERS/commit_ceiling" "$BENCH/commit_ceiling.c"
gcc -std=c17 -O2 -Wall -Wextra -Werror -pthread \
	-o "$PEERS/smtp_floor" "$BENCH/smtp_floor.c"
if [ $SMOKE = 0 ]; then
	gcc -std=c17 -O2 -Wall -Wextra -Werror -shared -fPIC \
		-o "$PEERS/listen_backlog.so" "$BENCH/listen_backlog.c" -ldl
fi

PETREL_BIN=${PETREL_BIN:-$REPO/build/src/petrel}
if [ ! -x "$PETREL_BIN" ]; then
	say "no petrel binary at $PETREL_BIN: run 'make build' (or make bench)"
	exit 1
fi

# every session needs a descriptor on each side
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

export PETREL_BIN
if [ $SMOKE = 1 ]; then
	exec timeout 120 /usr/bin/python3 "$BENCH/bench.py" "$@"
fi
exec timeout 7200 /usr/bin/python3 "$BENCH/bench.py" "$@"

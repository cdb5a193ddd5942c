# petrel: the two commands of the README, and a few more.
#   make run    install what is missing, build, run in the foreground
#   make test   install what is missing, build, run every test
SHELL := /bin/bash
BUILD ?= build
PYTEST := /usr/bin/python3 -m pytest

# Debian packages the build and the tests need.
DEPS := gcc meson ninja-build pkg-config libevent-dev libssl-dev \
	libc-ares-dev libinih-dev libcmocka-dev libcrypt-dev python3-pytest python3-openssl \
	swaks clang libclang-rt-14-dev dnsmasq dovecot-core dovecot-lmtpd \
	postfix strace

.PHONY: all deps build run test unit integration crash torture clean bench fuzz

all: build

deps:
	@missing=$$(for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		echo "postfix postfix/main_mailer_type select No configuration" \
			| $$SUDO debconf-set-selections; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
			$$missing; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD)

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: build
	mkdir -p var
	exec ./$(BUILD)/src/petrel serve -c etc/petrel.conf

unit: build
	meson test -C $(BUILD) --suite unit --print-errorlogs

integration: build
	PETREL_BIN=$(CURDIR)/$(BUILD)/src/petrel $(PYTEST) -q tests/integration

# SIGKILL torture and a full spool (tests/crash); a bounded form of the
# torture, about a minute; `make torture` runs it for minutes
crash: build
	PETREL_BIN=$(CURDIR)/$(BUILD)/src/petrel $(PYTEST) -q tests/crash

torture: build
	PETREL_TORTURE=long PETREL_BIN=$(CURDIR)/$(BUILD)/src/petrel \
		$(PYTEST) -q tests/crash

test: unit integration crash

# every libFuzzer target for FUZZ_SECONDS each (CI runs 60 s each)
fuzz: deps
	tests/fuzz/run.sh $${FUZZ_SECONDS:-600}

# petrel against Postfix and OpenSMTPD; writes bench/RESULTS.md (bench/README.md)
bench: build
	bench/run.sh

clean:
	rm -rf $(BUILD) build-asan build-fuzz

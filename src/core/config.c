/*
 * config.c: load petrel.conf (INI, parsed by libinih) into an immutable
 * struct config, reporting every problem as "FILE:LINE: [section] key: ...".
 * Opens only the file it is given; no logging, no globals.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ini.h>

#include "core/log.h"
#include "core/util.h"

#define CONFIG_ERRORS_MAX	100	/* messages kept; the rest counted */
#define CONFIG_MSG_MAX		1024	/* one message, path included */
#define CONFIG_ITEM_MAX		256	/* one value or list item */
#define CONFIG_QUOTE_MAX	80	/* a value echoed in a message */
#define CONFIG_DAY		86400

enum config_type {
	CONFIG_T_HOSTNAME,	/* char *: a host name */
	CONFIG_T_PATH,		/* char *: not empty */
	CONFIG_T_PATH_OPT,	/* char *: NULL when empty */
	CONFIG_T_STRING,	/* char *: not empty, checked by its user */
	CONFIG_T_LOG_LEVEL,	/* int: enum log_level */
	CONFIG_T_BOOL,		/* bool: yes or no */
	CONFIG_T_INT,		/* int: a plain number */
	CONFIG_T_COUNT,		/* size_t: a plain number */
	CONFIG_T_SIZE,		/* uint64_t: bytes, suffix K, M or G */
	CONFIG_T_DURATION,	/* int: seconds, suffix s, m, h or d */
	CONFIG_T_LISTEN,	/* list of ADDR:PORT: struct config_listen[],
				   length at off_len */
	CONFIG_T_NETS,		/* list of CIDR into trusted_networks */
	CONFIG_T_DOMAINS,	/* list of host names into domains */
	CONFIG_T_SNI,		/* list of NAME=CERT:KEY into tls_sni */
};

struct config_key {
	const char	*section;
	const char	*name;
	enum config_type type;
	size_t		 off;		/* offsetof(struct config, field) */
	uint64_t	 min;		/* numbers only */
	uint64_t	 max;
	const char	*def;		/* default, parsed like a file value;
					   NULL: computed (hostname) */
	size_t		 off_len;	/* CONFIG_T_LISTEN: offsetof the
					   list's _len field */
};

#define CONFIG_KEY(sec, field, type, min, max, def)			\
	{ sec, #field, type, offsetof(struct config, field), min, max, def, 0 }
/* A key whose name is not its field's name. */
#define CONFIG_KEY_AS(sec, name, field, type, min, max, def)		\
	{ sec, name, type, offsetof(struct config, field), min, max, def, 0 }
#define CONFIG_KEY_LISTEN(sec, name, field, def)			\
	{ sec, name, CONFIG_T_LISTEN, offsetof(struct config, field), 0, 0, \
	    def, offsetof(struct config, field##_len) }

/* One row per key: docs/configuration.md and etc/petrel.conf follow it. */
static const struct config_key config_keys[] = {
	CONFIG_KEY("server", hostname, CONFIG_T_HOSTNAME, 0, 0, NULL),
	CONFIG_KEY("server", spool_dir, CONFIG_T_PATH, 0, 0, "var/spool"),
	CONFIG_KEY("server", mail_dir, CONFIG_T_PATH, 0, 0, "var/mail"),
	CONFIG_KEY("server", log_level, CONFIG_T_LOG_LEVEL, 0, 0, "info"),
	CONFIG_KEY("server", workers, CONFIG_T_INT, 1, 64, "32"),
	CONFIG_KEY_LISTEN("smtp", "listen", mx_listen,
	    "127.0.0.1:2525 [::1]:2525?"),
	/* RFC 6409 submission and RFC 8314 implicit TLS; empty: none */
	CONFIG_KEY_LISTEN("smtp", "submission_listen", submission_listen,
	    "127.0.0.1:2587"),
	CONFIG_KEY_LISTEN("smtp", "smtps_listen", smtps_listen,
	    "127.0.0.1:2465"),
	CONFIG_KEY("smtp", max_message_size, CONFIG_T_SIZE,
	    1024, UINT64_C(1) << 40, "50M"),
	CONFIG_KEY("smtp", max_recipients, CONFIG_T_COUNT, 1, 100000, "1000"),
	/* RFC 5321 4.5.3.1.4: at least 512 octets incl. CRLF */
	CONFIG_KEY("smtp", max_line_length, CONFIG_T_COUNT, 512, 65536, "2048"),
	CONFIG_KEY("smtp", max_errors, CONFIG_T_INT, 1, 1000, "20"),
	CONFIG_KEY("smtp", max_sessions, CONFIG_T_INT, 1, 1000000, "1000"),
	CONFIG_KEY("smtp", max_sessions_per_client, CONFIG_T_INT,
	    1, 1000000, "50"),
	CONFIG_KEY("smtp", command_timeout, CONFIG_T_DURATION,
	    1, CONFIG_DAY, "5m"),
	CONFIG_KEY("smtp", data_timeout, CONFIG_T_DURATION,
	    1, CONFIG_DAY, "5m"),
	CONFIG_KEY("smtp", trusted_networks, CONFIG_T_NETS, 0, 0, ""),
	CONFIG_KEY("local", domains, CONFIG_T_DOMAINS, 0, 0, "localhost"),
	CONFIG_KEY("local", users_file, CONFIG_T_PATH_OPT, 0, 0, "etc/users"),
	CONFIG_KEY("local", aliases_file, CONFIG_T_PATH_OPT, 0, 0,
	    "etc/aliases"),
	/* cert_file and key_file: both or neither (config_check) */
	CONFIG_KEY_AS("tls", "cert_file", tls_cert_file, CONFIG_T_PATH_OPT,
	    0, 0, ""),
	CONFIG_KEY_AS("tls", "key_file", tls_key_file, CONFIG_T_PATH_OPT,
	    0, 0, ""),
	CONFIG_KEY_AS("tls", "dir", tls_dir, CONFIG_T_PATH, 0, 0, "var/tls"),
	CONFIG_KEY_AS("tls", "sni", tls_sni, CONFIG_T_SNI, 0, 0, ""),
	CONFIG_KEY_AS("tls", "client_ca_file", tls_client_ca_file,
	    CONFIG_T_PATH_OPT, 0, 0, ""),
	/* TLS 1.2 only; OpenSSL checks the list (tls_check()) */
	CONFIG_KEY_AS("tls", "ciphers", tls_ciphers, CONFIG_T_STRING, 0, 0,
	    "ECDHE+AESGCM:ECDHE+CHACHA20"),
	CONFIG_KEY_AS("tls", "handshake_timeout", tls_handshake_timeout,
	    CONFIG_T_DURATION, 1, 600, "30s"),
	CONFIG_KEY_AS("auth", "max_failures", auth_max_failures, CONFIG_T_INT,
	    1, 1000, "5"),
	CONFIG_KEY_AS("auth", "failure_window", auth_failure_window,
	    CONFIG_T_DURATION, 1, CONFIG_DAY, "5m"),
	CONFIG_KEY("auth", sender_map_file, CONFIG_T_PATH_OPT, 0, 0, ""),
	CONFIG_KEY("delivery", dns_servers, CONFIG_T_PATH_OPT, 0, 0, ""),
	CONFIG_KEY("delivery", dns_timeout, CONFIG_T_DURATION, 1, 60, "5s"),
	CONFIG_KEY("delivery", remote_port, CONFIG_T_INT, 1, 65535, "25"),
	CONFIG_KEY("delivery", smarthost, CONFIG_T_PATH_OPT, 0, 0, ""),
	CONFIG_KEY("delivery", smarthost_user, CONFIG_T_PATH_OPT, 0, 0, ""),
	CONFIG_KEY("delivery", smarthost_password, CONFIG_T_PATH_OPT,
	    0, 0, ""),
	CONFIG_KEY("delivery", outbound_tls, CONFIG_T_STRING, 0, 0,
	    "opportunistic"),
	CONFIG_KEY("delivery", lmtp_routes, CONFIG_T_PATH_OPT, 0, 0, ""),
	CONFIG_KEY("delivery", max_mx_hosts, CONFIG_T_INT, 1, 32, "5"),
	CONFIG_KEY("delivery", max_addresses, CONFIG_T_INT, 1, 64, "10"),
	CONFIG_KEY("delivery", connect_timeout, CONFIG_T_DURATION,
	    1, 600, "30s"),
	/* RFC 5321 4.5.3.2 */
	CONFIG_KEY("delivery", client_command_timeout, CONFIG_T_DURATION,
	    1, CONFIG_DAY, "5m"),
	CONFIG_KEY("delivery", client_data_timeout, CONFIG_T_DURATION,
	    1, CONFIG_DAY, "10m"),
	CONFIG_KEY("delivery", destination_concurrency, CONFIG_T_INT,
	    1, 1000, "20"),
	CONFIG_KEY("delivery", connection_reuse_time, CONFIG_T_DURATION,
	    0, 300, "5s"),
	CONFIG_KEY("delivery", delay_warning, CONFIG_T_DURATION,
	    0, 30 * CONFIG_DAY, "4h"),
	CONFIG_KEY("delivery", double_bounce, CONFIG_T_STRING, 0, 0,
	    "postmaster"),
	CONFIG_KEY("delivery", bounce_return_max, CONFIG_T_SIZE,
	    0, UINT64_C(1) << 30, "1M"),
	CONFIG_KEY("queue", retry_initial, CONFIG_T_DURATION,
	    1, 30 * CONFIG_DAY, "5m"),
	CONFIG_KEY("queue", retry_max, CONFIG_T_DURATION,
	    1, 30 * CONFIG_DAY, "4000"),
	CONFIG_KEY("queue", max_lifetime, CONFIG_T_DURATION,
	    1, 365 * CONFIG_DAY, "5d"),
	CONFIG_KEY("queue", max_deliveries, CONFIG_T_INT, 1, 1000, "16"),
	CONFIG_KEY("queue", direct_local, CONFIG_T_BOOL, 0, 0, "yes"),
	CONFIG_KEY("queue", batch_sync, CONFIG_T_BOOL, 0, 0, "yes"),
	CONFIG_KEY("queue", always_dir_sync, CONFIG_T_BOOL, 0, 0, "no"),
};

#define CONFIG_NKEYS	ARRAY_LEN(config_keys)

struct config_unit {
	char		 suffix;
	uint64_t	 mult;
};

static const struct config_unit config_size_units[] = {
	{ 'K', UINT64_C(1) << 10 },
	{ 'M', UINT64_C(1) << 20 },
	{ 'G', UINT64_C(1) << 30 },
	{ '\0', 0 },
};

static const struct config_unit config_duration_units[] = {
	{ 's', 1 },
	{ 'm', 60 },
	{ 'h', 3600 },
	{ 'd', CONFIG_DAY },
	{ '\0', 0 },
};

/* ::ffff:0:0/96: an IPv4 address a.b.c.d matches as ::ffff:a.b.c.d */
static const unsigned char config_v4mapped[12] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

/* State of one load; also used to apply the defaults. */
struct config_ctx {
	const char	*path;		/* borrowed: named in every message */
	FILE		*f;		/* borrowed: the file being read */
	struct config	*cfg;		/* owned until handed to the caller */
	int		 lineno;	/* line last handed to inih */
	bool		 cont;		/* that line continues the last value */
	bool		 have_key;	/* a continuation may follow (inih's
					   prev_name is set) */
	bool		 drop_cont;	/* a refused line's continuations */
	int		 prev;		/* key a continuation extends, or -1 */
	bool		 list_full;	/* "too many" already said for prev */
	int		 key_line[CONFIG_NKEYS];	/* 0: not in the file */
	bool		 key_bad[CONFIG_NKEYS];	/* an error names it */
	char		*errs;		/* owned: messages, '\n' between */
	size_t		 errs_len;
	size_t		 errs_cap;
	size_t		 nerrors;	/* including those not kept */
};

static void
config_ctx_init(struct config_ctx *ctx, const char *path)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->path = path;
	ctx->prev = -1;
}

static void
config_ctx_fini(struct config_ctx *ctx)
{
	config_free(ctx->cfg);
	ctx->cfg = NULL;
	free(ctx->errs);
	ctx->errs = NULL;
}

/* Append one finished message to the collected ones. */
static void
config_errors_add(struct config_ctx *ctx, const char *msg)
{
	size_t	 len = strlen(msg), need;

	need = ctx->errs_len + 1 + len + 1;
	if (need > ctx->errs_cap) {
		ctx->errs_cap = need * 2;
		ctx->errs = xrealloc(ctx->errs, ctx->errs_cap);
	}
	if (ctx->errs_len > 0)
		ctx->errs[ctx->errs_len++] = '\n';
	memcpy(ctx->errs + ctx->errs_len, msg, len + 1);
	ctx->errs_len += len;
}

/*
 * Record "PATH[:LINE]: [[section] key: ]message". line 0 names no line,
 * k NULL names no key.
 */
static void __attribute__((format(printf, 4, 5)))
config_error(struct config_ctx *ctx, int line, const struct config_key *k,
    const char *fmt, ...)
{
	char	 msg[CONFIG_MSG_MAX];
	size_t	 off;
	int	 n;
	va_list	 ap;

	if (k != NULL)
		ctx->key_bad[k - config_keys] = true;
	if (++ctx->nerrors > CONFIG_ERRORS_MAX)
		return;
	if (line > 0)
		n = snprintf(msg, sizeof(msg), "%s:%d: ", ctx->path, line);
	else
		n = snprintf(msg, sizeof(msg), "%s: ", ctx->path);
	off = n < 0 ? 0 : (size_t)n;
	if (k != NULL && off < sizeof(msg)) {
		n = snprintf(msg + off, sizeof(msg) - off, "[%s] %s: ",
		    k->section, k->name);
		off += n < 0 ? 0 : (size_t)n;
	}
	if (off < sizeof(msg)) {
		va_start(ap, fmt);
		(void)vsnprintf(msg + off, sizeof(msg) - off, fmt, ap);
		va_end(ap);
	}
	/* A cut message is still NUL-terminated by snprintf. */
	config_errors_add(ctx, msg);
}

/*
 * Copy the messages into err: whole lines while they fit, then a line
 * saying some were left out. Always NUL-terminated when errlen > 0.
 */
static void
config_errors_copy(struct config_ctx *ctx, char *err, size_t errlen)
{
	static const char cut[] = "\n(more errors not shown)";
	char	 msg[CONFIG_MSG_MAX];
	size_t	 keep = 0;

	if (ctx->nerrors > CONFIG_ERRORS_MAX) {
		(void)snprintf(msg, sizeof(msg),
		    "%s: %zu more errors not shown", ctx->path,
		    ctx->nerrors - CONFIG_ERRORS_MAX);
		config_errors_add(ctx, msg);
	}
	if (err == NULL || errlen == 0)
		return;
	if (ctx->errs_len < errlen) {
		if (ctx->errs_len > 0)
			memcpy(err, ctx->errs, ctx->errs_len);
		err[ctx->errs_len] = '\0';
		return;
	}
	for (size_t i = 0; i < ctx->errs_len; i++)
		if (ctx->errs[i] == '\n' && i + sizeof(cut) <= errlen)
			keep = i;
	if (keep == 0) {
		/* Not even the first line fits: cut it. */
		memcpy(err, ctx->errs, errlen - 1);
		err[errlen - 1] = '\0';
		return;
	}
	memcpy(err, ctx->errs, keep);
	memcpy(err + keep, cut, sizeof(cut));
}

/* s, escaped and shortened for a message. Returns out. */
static const char *
config_quote(const char *s, char *out, size_t cap)
{
	return str_escape(s, strlen(s), out, cap);
}

static bool
config_section_known(const char *name, size_t len)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strlen(config_keys[i].section) == len &&
		    memcmp(config_keys[i].section, name, len) == 0)
			return true;
	return false;
}

static int
config_key_find(const char *section, const char *name)
{
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (strcmp(config_keys[i].section, section) == 0 &&
		    strcmp(config_keys[i].name, name) == 0)
			return (int)i;
	return -1;
}

static bool
config_type_is_list(enum config_type t)
{
	return t == CONFIG_T_LISTEN || t == CONFIG_T_NETS ||
	    t == CONFIG_T_DOMAINS || t == CONFIG_T_SNI;
}

/*
 * Leading decimal digits of s into *out, saturating at UINT64_MAX so that
 * a huge number fails the range check. -1 if there is no digit.
 */
static int
config_parse_digits(const char *s, uint64_t *out, const char **end)
{
	const char *p = s;
	uint64_t v = 0;

	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			v = UINT64_MAX;
		else
			v = v * 10 + d;
	}
	if (p == s)
		return -1;
	*out = v;
	*end = p;
	return 0;
}

/* RFC 1123 2.1 host name: letters, digits, '-' inside labels of 1..63. */
static bool
config_hostname_valid(const char *s)
{
	size_t	 len = strlen(s), label = 0;

	if (len == 0 || len > 253)
		return false;
	for (size_t i = 0; i < len; i++) {
		char	 c = s[i];

		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-'))
			return false;
		if (label == 0 && c == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

/* Next item of a list separated by spaces, tabs or commas; 0 at the end. */
static size_t
config_next_item(const char **p, const char **item)
{
	const char *s = *p;
	size_t	 n;

	s += strspn(s, " \t,");
	n = strcspn(s, " \t,");
	*item = s;
	*p = s + n;
	return n;
}

/* "ADDR:PORT", "[IPV6]:PORT", either with a trailing '?'. */
static int
config_parse_listen(const char *item, struct config_listen *out,
    const char **why)
{
	char	 buf[CONFIG_ITEM_MAX];
	char	*host, *port, *end;
	const char *pend;
	unsigned char addr[sizeof(struct in6_addr)];
	size_t	 len = strlen(item);
	uint64_t num;
	int	 family;

	memset(out, 0, sizeof(*out));
	if (len >= sizeof(buf)) {
		*why = "too long";
		return -1;
	}
	memcpy(buf, item, len + 1);
	if (len > 0 && buf[len - 1] == '?') {
		out->optional = true;
		buf[--len] = '\0';
	}
	if (buf[0] == '[') {
		host = buf + 1;
		if ((end = strchr(host, ']')) == NULL || end[1] != ':') {
			*why = "expected [IPV6]:PORT";
			return -1;
		}
		*end = '\0';
		port = end + 2;
		family = AF_INET6;
	} else {
		if ((end = strrchr(buf, ':')) == NULL) {
			*why = "expected ADDR:PORT";
			return -1;
		}
		*end = '\0';
		host = buf;
		port = end + 1;
		if (strchr(host, ':') != NULL) {
			*why = "an IPv6 address needs brackets: [ADDR]:PORT";
			return -1;
		}
		family = AF_INET;
	}
	if (inet_pton(family, host, addr) != 1) {
		*why = family == AF_INET ? "not a numeric IPv4 address" :
		    "not a numeric IPv6 address";
		return -1;
	}
	if (config_parse_digits(port, &num, &pend) == -1 || *pend != '\0' ||
	    num < 1 || num > 65535) {
		*why = "port must be a number from 1 to 65535";
		return -1;
	}
	/* Canonical forms, so "0:0::1" and "::1" are the same address. */
	if (inet_ntop(family, addr, out->host, sizeof(out->host)) == NULL) {
		*why = "address does not fit";
		return -1;
	}
	(void)snprintf(out->port, sizeof(out->port), "%u", (unsigned)num);
	return 0;
}

/* Clear the bits of addr (nbytes long) past the first prefix. */
static void
config_net_mask(unsigned char *addr, int prefix, int nbytes)
{
	for (int i = 0; i < nbytes; i++) {
		int	 bits = prefix - i * 8;

		if (bits >= 8)
			continue;
		if (bits <= 0)
			addr[i] = 0;
		else
			addr[i] &= (unsigned char)(0xff << (8 - bits));
	}
}

/* "ADDR/PREFIX" or a bare ADDR (/32 or /128); host bits are cleared. */
static int
config_parse_net(const char *item, struct config_net *out, const char **why)
{
	char	 buf[CONFIG_ITEM_MAX];
	char	*slash;
	const char *pend;
	size_t	 len = strlen(item);
	uint64_t num;
	int	 max;

	memset(out, 0, sizeof(*out));
	if (len >= sizeof(buf)) {
		*why = "too long";
		return -1;
	}
	memcpy(buf, item, len + 1);
	if ((slash = strchr(buf, '/')) != NULL)
		*slash++ = '\0';
	out->family = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
	max = out->family == AF_INET ? 32 : 128;
	if (inet_pton(out->family, buf, out->addr) != 1) {
		*why = "not a numeric IPv4 or IPv6 address";
		return -1;
	}
	out->prefix = max;
	if (slash != NULL) {
		if (config_parse_digits(slash, &num, &pend) == -1 ||
		    *pend != '\0' || num > (uint64_t)max) {
			*why = out->family == AF_INET ?
			    "prefix length must be 0 to 32" :
			    "prefix length must be 0 to 128";
			return -1;
		}
		out->prefix = (int)num;
	}
	config_net_mask(out->addr, out->prefix, max / 8);
	return 0;
}

/*
 * "NAME=CERT:KEY": NAME a host name or "*." and one (lowercased in
 * place), CERT and KEY not empty; the last ':' splits them. Slices of
 * item (which is modified) go to *name, *cert and *key.
 */
static int
config_parse_sni(char *item, char **name, char **cert, char **key,
    const char **why)
{
	char	*eq, *colon;

	if ((eq = strchr(item, '=')) == NULL ||
	    (colon = strrchr(eq, ':')) == NULL) {
		*why = "expected NAME=CERTFILE:KEYFILE";
		return -1;
	}
	*eq = *colon = '\0';
	*name = str_lower(item);
	*cert = eq + 1;
	*key = colon + 1;
	if (!config_hostname_valid(strncmp(*name, "*.", 2) == 0 ?
	    *name + 2 : *name)) {
		*why = "not a host name or *.domain";
		return -1;
	}
	if (**cert == '\0' || **key == '\0') {
		*why = "expected NAME=CERTFILE:KEYFILE";
		return -1;
	}
	return 0;
}

static void
config_set_str(char **field, const char *value)
{
	free(*field);
	*field = value == NULL ? NULL : xstrdup(value);
}

/* A number with an optional unit, range-checked, into its field. */
static void
config_set_number(struct config_ctx *ctx, const struct config_key *k,
    const char *value, void *field)
{
	const struct config_unit *units = NULL, *u;
	const char *end, *unit_names = NULL, *unit_word = "";
	char	 q[CONFIG_QUOTE_MAX];
	uint64_t v;

	if (k->type == CONFIG_T_SIZE) {
		units = config_size_units;
		unit_names = "K, M or G";
		unit_word = " bytes";
	} else if (k->type == CONFIG_T_DURATION) {
		units = config_duration_units;
		unit_names = "s, m, h or d";
		unit_word = " seconds";
	}
	config_quote(value, q, sizeof(q));
	if (config_parse_digits(value, &v, &end) == -1) {
		config_error(ctx, ctx->lineno, k, "'%s' is not a number", q);
		return;
	}
	if (*end != '\0') {
		for (u = units; u != NULL && u->suffix != '\0'; u++)
			if (*end == u->suffix && end[1] == '\0')
				break;
		if (u == NULL || u->suffix == '\0') {
			if (units == NULL)
				config_error(ctx, ctx->lineno, k,
				    "'%s' is not a number", q);
			else
				config_error(ctx, ctx->lineno, k,
				    "'%s': unknown unit (use %s)", q,
				    unit_names);
			return;
		}
		v = v > UINT64_MAX / u->mult ? UINT64_MAX : v * u->mult;
	}
	if (v < k->min || v > k->max) {
		config_error(ctx, ctx->lineno, k,
		    "'%s' is out of range (%" PRIu64 "..%" PRIu64 "%s)",
		    q, k->min, k->max, unit_word);
		return;
	}
	switch (k->type) {
	case CONFIG_T_INT:
	case CONFIG_T_DURATION:
		assert(k->max <= INT_MAX);
		*(int *)field = (int)v;
		break;
	case CONFIG_T_COUNT:
		*(size_t *)field = (size_t)v;
		break;
	case CONFIG_T_SIZE:
		*(uint64_t *)field = v;
		break;
	default:
		assert(!"not a number key");
	}
}

static void
config_sni_clear(struct config *c)
{
	for (size_t i = 0; i < c->tls_sni_len; i++) {
		free(c->tls_sni[i].name);
		free(c->tls_sni[i].cert_file);
		free(c->tls_sni[i].key_file);
	}
	memset(c->tls_sni, 0, sizeof(c->tls_sni));
	c->tls_sni_len = 0;
}

static void
config_list_clear(struct config *c, const struct config_key *k)
{
	switch (k->type) {
	case CONFIG_T_LISTEN:
		*(size_t *)((char *)c + k->off_len) = 0;
		break;
	case CONFIG_T_SNI:
		config_sni_clear(c);
		break;
	case CONFIG_T_NETS:
		c->trusted_networks_len = 0;
		break;
	case CONFIG_T_DOMAINS:
		for (size_t i = 0; i < c->domains_len; i++) {
			free(c->domains[i]);
			c->domains[i] = NULL;
		}
		c->domains_len = 0;
		break;
	default:
		assert(!"not a list key");
	}
}

/* Add one list item; false when the list is full. */
static bool
config_list_add(struct config_ctx *ctx, const struct config_key *k,
    char *item)
{
	struct config *c = ctx->cfg;
	struct config_listen l, *list;
	struct config_net n;
	struct config_sni *sni;
	const char *why;
	char	 q[CONFIG_QUOTE_MAX];
	char	*name, *cert, *key;
	size_t	*len;
	unsigned char a4[sizeof(struct in_addr)];

	config_quote(item, q, sizeof(q));
	switch (k->type) {
	case CONFIG_T_LISTEN:
		list = (struct config_listen *)((char *)c + k->off);
		len = (size_t *)((char *)c + k->off_len);
		if (*len == CONFIG_LISTEN_MAX)
			return false;
		if (config_parse_listen(item, &l, &why) == -1) {
			config_error(ctx, ctx->lineno, k, "'%s': %s", q, why);
			break;
		}
		for (size_t i = 0; i < *len; i++)
			if (strcmp(list[i].host, l.host) == 0 &&
			    strcmp(list[i].port, l.port) == 0) {
				config_error(ctx, ctx->lineno, k,
				    "'%s': listed twice", q);
				return true;
			}
		list[(*len)++] = l;
		break;
	case CONFIG_T_SNI:
		if (c->tls_sni_len == CONFIG_SNI_MAX)
			return false;
		if (config_parse_sni(item, &name, &cert, &key, &why) == -1) {
			config_error(ctx, ctx->lineno, k, "'%s': %s", q, why);
			break;
		}
		for (size_t i = 0; i < c->tls_sni_len; i++)
			if (strcmp(c->tls_sni[i].name, name) == 0) {
				config_error(ctx, ctx->lineno, k,
				    "'%s': name listed twice", q);
				return true;
			}
		sni = &c->tls_sni[c->tls_sni_len++];
		sni->name = xstrdup(name);
		sni->cert_file = xstrdup(cert);
		sni->key_file = xstrdup(key);
		break;
	case CONFIG_T_NETS:
		if (c->trusted_networks_len == CONFIG_NETS_MAX)
			return false;
		if (config_parse_net(item, &n, &why) == -1) {
			config_error(ctx, ctx->lineno, k, "'%s': %s", q, why);
			break;
		}
		c->trusted_networks[c->trusted_networks_len++] = n;
		break;
	case CONFIG_T_DOMAINS:
		if (c->domains_len == CONFIG_DOMAINS_MAX)
			return false;
		str_lower(item);
		if (!config_hostname_valid(item) ||
		    inet_pton(AF_INET, item, a4) == 1) {
			config_error(ctx, ctx->lineno, k,
			    "'%s' is not a valid domain name", q);
			break;
		}
		if (config_local_domain(c, item)) {
			config_error(ctx, ctx->lineno, k,
			    "'%s': listed twice", q);
			break;
		}
		c->domains[c->domains_len++] = xstrdup(item);
		break;
	default:
		assert(!"not a list key");
	}
	return true;
}

/* Items of value, appended to the list, or replacing it unless append. */
static void
config_set_list(struct config_ctx *ctx, const struct config_key *k,
    const char *value, bool append)
{
	static const size_t max[] = {
		[CONFIG_T_LISTEN] = CONFIG_LISTEN_MAX,
		[CONFIG_T_NETS] = CONFIG_NETS_MAX,
		[CONFIG_T_DOMAINS] = CONFIG_DOMAINS_MAX,
		[CONFIG_T_SNI] = CONFIG_SNI_MAX,
	};
	const char *p = value, *item;
	char	 buf[CONFIG_ITEM_MAX], q[CONFIG_QUOTE_MAX];
	size_t	 n;

	if (!append) {
		config_list_clear(ctx->cfg, k);
		ctx->list_full = false;
	}
	while ((n = config_next_item(&p, &item)) > 0) {
		if (n >= sizeof(buf)) {
			str_escape(item, n, q, sizeof(q));
			config_error(ctx, ctx->lineno, k, "'%s...' is too long",
			    q);
			continue;
		}
		memcpy(buf, item, n);
		buf[n] = '\0';
		if (!config_list_add(ctx, k, buf)) {
			if (!ctx->list_full)
				config_error(ctx, ctx->lineno, k,
				    "more than %zu items", max[k->type]);
			ctx->list_full = true;
			break;
		}
	}
}

/* Parse value for key k into ctx->cfg; problems go to ctx. */
static void
config_set(struct config_ctx *ctx, const struct config_key *k,
    const char *value, bool append)
{
	void	*field = (char *)ctx->cfg + k->off;
	char	 q[CONFIG_QUOTE_MAX];
	int	 level;

	config_quote(value, q, sizeof(q));
	switch (k->type) {
	case CONFIG_T_HOSTNAME:
		if (!config_hostname_valid(value)) {
			config_error(ctx, ctx->lineno, k,
			    "'%s' is not a valid host name", q);
			break;
		}
		config_set_str(field, value);
		break;
	case CONFIG_T_PATH:
		if (*value == '\0') {
			config_error(ctx, ctx->lineno, k, "must not be empty");
			break;
		}
		config_set_str(field, value);
		break;
	case CONFIG_T_PATH_OPT:
		config_set_str(field, *value == '\0' ? NULL : value);
		break;
	case CONFIG_T_STRING:
		if (*value == '\0') {
			config_error(ctx, ctx->lineno, k, "must not be empty");
			break;
		}
		config_set_str(field, value);
		break;
	case CONFIG_T_LOG_LEVEL:
		if ((level = log_level_parse(value)) == -1) {
			config_error(ctx, ctx->lineno, k,
			    "'%s': unknown level (use debug, info, warn or "
			    "error)", q);
			break;
		}
		*(int *)field = level;
		break;
	case CONFIG_T_BOOL:
		if (strcmp(value, "yes") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "no") == 0)
			*(bool *)field = false;
		else
			config_error(ctx, ctx->lineno, k,
			    "'%s': use yes or no", q);
		break;
	case CONFIG_T_INT:
	case CONFIG_T_COUNT:
	case CONFIG_T_SIZE:
	case CONFIG_T_DURATION:
		config_set_number(ctx, k, value, field);
		break;
	case CONFIG_T_LISTEN:
	case CONFIG_T_NETS:
	case CONFIG_T_DOMAINS:
	case CONFIG_T_SNI:
		config_set_list(ctx, k, value, append);
		break;
	}
}

/*
 * inih's find_chars_or_comment(): the first of chars in s, or an inline
 * ';' comment (after whitespace), or the end.
 */
static const char *
config_find(const char *s, const char *chars)
{
	bool	 was_space = false;

	while (*s != '\0' && strchr(chars, *s) == NULL &&
	    !(was_space && *s == ';')) {
		was_space = strchr(" \t\n\v\f\r", *s) != NULL;
		s++;
	}
	return s;
}

/*
 * Classify a raw line the way inih will, to report every syntax error
 * and unknown section (inih reports only the first, with no text) and to
 * tell continuation lines apart from new keys. True if the line is to be
 * dropped: it continues a line that was refused.
 */
static bool
config_scan(struct config_ctx *ctx, const char *line)
{
	static const char ws[] = " \t\n\v\f\r";
	const char *s = line, *end;
	char	 q[CONFIG_QUOTE_MAX];

	ctx->cont = false;
	if (ctx->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s += strspn(s, ws);
	if (*s == '\0' || *s == ';' || *s == '#')
		return false;
	if (s > line && ctx->drop_cont)
		return true;
	ctx->drop_cont = false;
	if (s > line && ctx->have_key) {
		ctx->cont = true;
		return false;
	}
	if (*s == '[') {
		end = config_find(s + 1, "]");
		if (*end != ']') {
			config_error(ctx, ctx->lineno, NULL,
			    "syntax error: missing ']'");
			return false;
		}
		ctx->have_key = false;
		if (!config_section_known(s + 1, (size_t)(end - (s + 1)))) {
			str_escape(s + 1, (size_t)(end - (s + 1)), q,
			    sizeof(q));
			config_error(ctx, ctx->lineno, NULL,
			    "[%s]: unknown section", q);
		}
		return false;
	}
	end = config_find(s, "=:");
	if (*end != '=' && *end != ':') {
		config_error(ctx, ctx->lineno, NULL,
		    "syntax error: expected [section] or key = value");
		return false;
	}
	ctx->have_key = end > s;
	return false;
}

/*
 * inih's reader: one line into str (at most num - 2 characters, then
 * '\n'), counting lines. Lines that inih would split or cut are reported
 * and handed over empty, and so are their continuation lines.
 */
static char *
config_read(char *str, int num, void *stream)
{
	struct config_ctx *ctx = stream;
	size_t	 len = 0;
	bool	 nul = false, toolong = false;
	int	 ch;

	assert(num > 2);
	while ((ch = getc(ctx->f)) != EOF && ch != '\n') {
		if (ch == '\0')
			nul = true;
		if (len + 2 < (size_t)num)
			str[len++] = (char)ch;
		else
			toolong = true;
	}
	if (ch == EOF && (ferror(ctx->f) || len == 0))
		return NULL;
	ctx->lineno++;
	str[len] = '\0';
	if (nul || toolong) {
		if (nul)
			config_error(ctx, ctx->lineno, NULL,
			    "NUL byte in line");
		else
			config_error(ctx, ctx->lineno, NULL,
			    "line longer than %d characters (continue a list "
			    "on indented lines)", num - 2);
		str[0] = '\0';
		ctx->prev = -1;
		ctx->drop_cont = true;
	} else if (config_scan(ctx, str))
		str[0] = '\0';
	len = strlen(str);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

/* inih's handler: one key = value, or one continuation line. */
static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct config_ctx *ctx = user;
	const struct config_key *k;
	char	 qs[CONFIG_QUOTE_MAX], qn[CONFIG_QUOTE_MAX];
	int	 i;

	if (ctx->cont) {
		if (ctx->prev < 0)
			return 1;	/* its key was already reported */
		k = &config_keys[ctx->prev];
		if (!config_type_is_list(k->type)) {
			config_error(ctx, ctx->lineno, k, "indented line "
			    "continues the value (only lists may continue; "
			    "start keys in the first column)");
			ctx->prev = -1;
			return 1;
		}
		config_set(ctx, k, value, true);
		return 1;
	}
	ctx->prev = -1;
	config_quote(section, qs, sizeof(qs));
	config_quote(name, qn, sizeof(qn));
	if (*section == '\0') {
		config_error(ctx, ctx->lineno, NULL,
		    "%s: key before any [section]", qn);
		return 1;
	}
	if (!config_section_known(section, strlen(section)))
		return 1;	/* config_scan() reported the section */
	if ((i = config_key_find(section, name)) == -1) {
		config_error(ctx, ctx->lineno, NULL, "[%s] %s: unknown key",
		    qs, qn);
		return 1;
	}
	k = &config_keys[i];
	if (ctx->key_line[i] != 0) {
		config_error(ctx, ctx->lineno, k,
		    "duplicate key (first set on line %d)", ctx->key_line[i]);
		return 1;
	}
	ctx->key_line[i] = ctx->lineno;
	ctx->prev = i;
	config_set(ctx, k, value, false);
	return 1;
}

/* The list a CONFIG_T_LISTEN key fills, and its length. */
static const struct config_listen *
config_listen_get(const struct config *c, const struct config_key *k,
    size_t *len)
{
	assert(k->type == CONFIG_T_LISTEN);
	*len = *(const size_t *)((const char *)c + k->off_len);
	return (const struct config_listen *)((const char *)c + k->off);
}

/*
 * An ADDR:PORT in the lists of keys a and b would fail to bind at start.
 * Blames b, or a when only a is set in the file.
 */
static void
config_check_listen_pair(struct config_ctx *ctx, int a, int b)
{
	const struct config_listen *la, *lb;
	const struct config_key *blame, *other;
	size_t	 na, nb;
	char	 q[CONFIG_QUOTE_MAX];
	bool	 v6;

	if (ctx->key_bad[a] || ctx->key_bad[b])
		return;
	blame = &config_keys[ctx->key_line[b] != 0 ? b : a];
	other = &config_keys[ctx->key_line[b] != 0 ? a : b];
	la = config_listen_get(ctx->cfg, &config_keys[a], &na);
	lb = config_listen_get(ctx->cfg, &config_keys[b], &nb);
	for (size_t i = 0; i < na; i++)
		for (size_t j = 0; j < nb; j++) {
			if (strcmp(la[i].host, lb[j].host) != 0 ||
			    strcmp(la[i].port, lb[j].port) != 0)
				continue;
			v6 = strchr(la[i].host, ':') != NULL;
			(void)snprintf(q, sizeof(q), "%s%s%s:%s", v6 ? "[" : "",
			    la[i].host, v6 ? "]" : "", la[i].port);
			config_error(ctx, ctx->key_line[blame - config_keys],
			    blame, "'%s' is also in %s", q, other->name);
		}
}

static void
config_check_listen(struct config_ctx *ctx)
{
	static const char *const names[] = {
		"listen", "submission_listen", "smtps_listen",
	};
	int	 idx[ARRAY_LEN(names)];

	for (size_t i = 0; i < ARRAY_LEN(names); i++) {
		idx[i] = config_key_find("smtp", names[i]);
		assert(idx[i] >= 0);
		for (size_t j = 0; j < i; j++)
			config_check_listen_pair(ctx, idx[j], idx[i]);
	}
}

/* Rules between keys, checked once the whole file is read. */
/* Word-valued keys of [delivery]. */
static void
config_check_delivery(struct config_ctx *ctx)
{
	const struct config *c = ctx->cfg;
	int	 tls = config_key_find("delivery", "outbound_tls");
	int	 db = config_key_find("delivery", "double_bounce");
	int	 user = config_key_find("delivery", "smarthost_user");

	if (!ctx->key_bad[tls] && strcmp(c->outbound_tls, "none") != 0 &&
	    strcmp(c->outbound_tls, "opportunistic") != 0 &&
	    strcmp(c->outbound_tls, "required") != 0)
		config_error(ctx, ctx->key_line[tls], &config_keys[tls],
		    "'%s': use none, opportunistic or required",
		    c->outbound_tls);
	if (!ctx->key_bad[db] && strcmp(c->double_bounce, "postmaster") != 0 &&
	    strcmp(c->double_bounce, "drop") != 0)
		config_error(ctx, ctx->key_line[db], &config_keys[db],
		    "'%s': use postmaster or drop", c->double_bounce);
	if ((c->smarthost_user == NULL) != (c->smarthost_password == NULL) &&
	    !ctx->key_bad[user])
		config_error(ctx, ctx->key_line[user], &config_keys[user],
		    "smarthost_user and smarthost_password go together");
	if (c->smarthost_user != NULL && c->smarthost == NULL)
		config_error(ctx, ctx->key_line[user], &config_keys[user],
		    "set smarthost as well");
}

static void
config_check(struct config_ctx *ctx)
{
	const struct config *c = ctx->cfg;
	int	 listen = config_key_find("smtp", "listen");
	int	 domains = config_key_find("local", "domains");
	int	 ini = config_key_find("queue", "retry_initial");
	int	 max = config_key_find("queue", "retry_max");
	int	 cert = config_key_find("tls", "cert_file");
	int	 key = config_key_find("tls", "key_file");

	/* Keys already reported keep their defaults: do not blame those. */
	if (c->mx_listen_len == 0 && !ctx->key_bad[listen])
		config_error(ctx, ctx->key_line[listen], &config_keys[listen],
		    "at least one address is needed");
	if (c->domains_len == 0 && !ctx->key_bad[domains])
		config_error(ctx, ctx->key_line[domains],
		    &config_keys[domains], "at least one domain is needed");
	if (c->retry_max < c->retry_initial && !ctx->key_bad[ini] &&
	    !ctx->key_bad[max]) {
		if (ctx->key_line[max] != 0)
			config_error(ctx, ctx->key_line[max],
			    &config_keys[max],
			    "%d is less than retry_initial (%d)",
			    c->retry_max, c->retry_initial);
		else
			config_error(ctx, ctx->key_line[ini],
			    &config_keys[ini],
			    "%d is more than retry_max (%d)",
			    c->retry_initial, c->retry_max);
	}
	if ((c->tls_cert_file == NULL) != (c->tls_key_file == NULL) &&
	    !ctx->key_bad[cert] && !ctx->key_bad[key]) {
		if (c->tls_cert_file != NULL)
			config_error(ctx, ctx->key_line[cert],
			    &config_keys[cert], "set key_file as well");
		else
			config_error(ctx, ctx->key_line[key],
			    &config_keys[key], "set cert_file as well");
	}
	config_check_listen(ctx);
	config_check_delivery(ctx);
}

static char *
config_default_hostname(void)
{
	char	 buf[HOST_NAME_MAX + 1];

	if (gethostname(buf, sizeof(buf)) == -1)
		return xstrdup("localhost");
	buf[sizeof(buf) - 1] = '\0';
	/* A name without a dot is kept: the admin can set hostname. */
	return xstrdup(buf[0] == '\0' ? "localhost" : buf);
}

struct config *
config_default(void)
{
	struct config_ctx ctx;
	struct config *c;

	config_ctx_init(&ctx, "(defaults)");
	ctx.cfg = xcalloc(1, sizeof(*ctx.cfg));
	ctx.cfg->hostname = config_default_hostname();
	for (size_t i = 0; i < CONFIG_NKEYS; i++)
		if (config_keys[i].def != NULL)
			config_set(&ctx, &config_keys[i], config_keys[i].def,
			    false);
	assert(ctx.nerrors == 0);	/* the table's defaults are valid */
	c = ctx.cfg;
	ctx.cfg = NULL;
	config_ctx_fini(&ctx);
	return c;
}

int
config_load(const char *path, struct config **out, char *err, size_t errlen)
{
	struct config_ctx ctx;
	int	 rc = -1, ret;

	assert(path != NULL && out != NULL);
	*out = NULL;
	config_ctx_init(&ctx, path);
	ctx.cfg = config_default();
	if ((ctx.f = fopen(path, "r")) == NULL) {
		config_error(&ctx, 0, NULL, "%s", strerror(errno));
		goto out;
	}
	ret = ini_parse_stream(config_read, &ctx, config_handler, &ctx);
	if (ferror(ctx.f)) {
		config_error(&ctx, ctx.lineno + 1, NULL, "read error");
		goto out;
	}
	/* The handler never fails, so ret > 0 is a syntax error. */
	if (ret != 0 && ctx.nerrors == 0)
		config_error(&ctx, ret > 0 ? ret : 0, NULL, "syntax error");
	config_check(&ctx);
	if (ctx.nerrors != 0)
		goto out;
	*out = ctx.cfg;
	ctx.cfg = NULL;
	rc = 0;
out:
	config_errors_copy(&ctx, err, errlen);
	if (ctx.f != NULL)
		(void)fclose(ctx.f);	/* read only: nothing to lose */
	config_ctx_fini(&ctx);
	return rc;
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->hostname);
	free(c->spool_dir);
	free(c->mail_dir);
	for (size_t i = 0; i < c->domains_len; i++)
		free(c->domains[i]);
	free(c->users_file);
	free(c->aliases_file);
	free(c->tls_cert_file);
	free(c->tls_key_file);
	free(c->tls_dir);
	config_sni_clear(c);
	free(c->tls_client_ca_file);
	free(c->tls_ciphers);
	free(c->sender_map_file);
	free(c->dns_servers);
	free(c->smarthost);
	free(c->smarthost_user);
	if (c->smarthost_password != NULL)
		explicit_bzero(c->smarthost_password,
		    strlen(c->smarthost_password));
	free(c->smarthost_password);
	free(c->outbound_tls);
	free(c->lmtp_routes);
	free(c->double_bounce);
	free(c);
}

/* True if the first prefix bits of a and b agree. */
static bool
config_prefix_match(const unsigned char *a, const unsigned char *b,
    int prefix)
{
	int	 full = prefix / 8, rest = prefix % 8;
	unsigned char mask;

	if (memcmp(a, b, (size_t)full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (unsigned char)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool
config_trusted(const struct config *c, int family, const void *addr)
{
	unsigned char q[16], n[16];
	int	 prefix;

	/* Compare in IPv6 space: a.b.c.d is ::ffff:a.b.c.d (RFC 4291
	   2.5.5.2), so dual-stack sockets match IPv4 networks. */
	if (family == AF_INET) {
		memcpy(q, config_v4mapped, 12);
		memcpy(q + 12, addr, 4);
	} else if (family == AF_INET6)
		memcpy(q, addr, 16);
	else
		return false;
	for (size_t i = 0; i < c->trusted_networks_len; i++) {
		const struct config_net *net = &c->trusted_networks[i];

		if (net->family == AF_INET) {
			memcpy(n, config_v4mapped, 12);
			memcpy(n + 12, net->addr, 4);
			prefix = 96 + net->prefix;
		} else {
			memcpy(n, net->addr, 16);
			prefix = net->prefix;
		}
		if (config_prefix_match(q, n, prefix))
			return true;
	}
	return false;
}

bool
config_local_domain(const struct config *c, const char *domain)
{
	for (size_t i = 0; i < c->domains_len; i++)
		if (strcmp(c->domains[i], domain) == 0)
			return true;
	return false;
}

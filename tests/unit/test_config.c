/*
 * test_config.c: config_load() on temp files: defaults, every key at and
 * past its limits, FILE:LINE errors all reported at once, listen and CIDR.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "core/config.h"

#define ERR_MAX		8192

struct loaded {
	char		 path[64];
	struct config	*cfg;		/* NULL unless rc == 0 */
	char		 err[ERR_MAX];
	int		 rc;
};

/* Write len bytes of text to a temp file, load it, remove the file. */
static void
load_len(const char *text, size_t len, struct loaded *l)
{
	int	 fd;

	memset(l, 0, sizeof(*l));
	snprintf(l->path, sizeof(l->path), "/tmp/test_config.XXXXXX");
	fd = mkstemp(l->path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	l->rc = config_load(l->path, &l->cfg, l->err, sizeof(l->err));
	unlink(l->path);
	if (l->rc == 0)
		assert_non_null(l->cfg);
	else
		assert_null(l->cfg);
}

static void
load(const char *text, struct loaded *l)
{
	load_len(text, strlen(text), l);
}

static void
unload(struct loaded *l)
{
	config_free(l->cfg);
	l->cfg = NULL;
}

/*
 * err has a line starting "PATH:LINE: " then key (may be ""), and
 * containing want after that.
 */
static void
assert_err_key(const struct loaded *l, int line, const char *key,
    const char *want)
{
	char	 head[256];
	const char *p;

	assert_int_equal(l->rc, -1);
	snprintf(head, sizeof(head), "%s:%d: %s", l->path, line, key);
	for (p = l->err; (p = strstr(p, head)) != NULL; p++) {
		const char *eol = strchr(p, '\n');
		size_t	 n = eol == NULL ? strlen(p) : (size_t)(eol - p);
		char	 one[1024];

		if (p != l->err && p[-1] != '\n')
			continue;
		snprintf(one, sizeof(one), "%.*s", (int)n, p);
		if (strstr(one + strlen(head), want) != NULL)
			return;
	}
	fail_msg("want \"%s...%s\" in:\n%s", head, want, l->err);
}

/* err has a line "PATH:LINE: ..." containing want. */
static void
assert_err(const struct loaded *l, int line, const char *want)
{
	assert_err_key(l, line, "", want);
}

static size_t
count_lines(const char *s)
{
	size_t	 n = *s == '\0' ? 0 : 1;

	for (; *s != '\0'; s++)
		if (*s == '\n')
			n++;
	return n;
}

/* The defaults documented in config.h, except the hostname. */
static void
assert_defaults(const struct config *c)
{
	assert_string_equal(c->spool_dir, "var/spool");
	assert_string_equal(c->mail_dir, "var/mail");
	assert_int_equal(c->log_level, 1);
	assert_int_equal(c->workers, 32);
	assert_int_equal(c->mx_listen_len, 2);
	assert_string_equal(c->mx_listen[0].host, "127.0.0.1");
	assert_string_equal(c->mx_listen[0].port, "2525");
	assert_false(c->mx_listen[0].optional);
	assert_string_equal(c->mx_listen[1].host, "::1");
	assert_string_equal(c->mx_listen[1].port, "2525");
	assert_true(c->mx_listen[1].optional);
	assert_int_equal(c->max_message_size, 52428800);
	assert_int_equal(c->max_recipients, 1000);
	assert_int_equal(c->max_line_length, 2048);
	assert_int_equal(c->max_errors, 20);
	assert_int_equal(c->max_sessions, 1000);
	assert_int_equal(c->max_sessions_per_client, 50);
	assert_int_equal(c->command_timeout, 300);
	assert_int_equal(c->data_timeout, 300);
	assert_int_equal(c->trusted_networks_len, 0);
	assert_int_equal(c->submission_listen_len, 1);
	assert_string_equal(c->submission_listen[0].host, "127.0.0.1");
	assert_string_equal(c->submission_listen[0].port, "2587");
	assert_false(c->submission_listen[0].optional);
	assert_int_equal(c->smtps_listen_len, 1);
	assert_string_equal(c->smtps_listen[0].host, "127.0.0.1");
	assert_string_equal(c->smtps_listen[0].port, "2465");
	assert_false(c->smtps_listen[0].optional);
	assert_int_equal(c->domains_len, 1);
	assert_string_equal(c->domains[0], "localhost");
	assert_string_equal(c->users_file, "etc/users");
	assert_string_equal(c->aliases_file, "etc/aliases");
	assert_null(c->tls_cert_file);
	assert_null(c->tls_key_file);
	assert_string_equal(c->tls_dir, "var/tls");
	assert_int_equal(c->tls_sni_len, 0);
	assert_null(c->tls_client_ca_file);
	assert_string_equal(c->tls_ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20");
	assert_int_equal(c->tls_handshake_timeout, 30);
	assert_int_equal(c->auth_max_failures, 5);
	assert_int_equal(c->auth_failure_window, 300);
	assert_null(c->sender_map_file);
	assert_int_equal(c->retry_initial, 300);
	assert_int_equal(c->retry_max, 4000);
	assert_int_equal(c->max_lifetime, 432000);
	assert_int_equal(c->max_deliveries, 16);
	assert_true(c->direct_local);
	assert_true(c->batch_sync);
	assert_false(c->always_dir_sync);
	assert_int_equal(c->connection_reuse_time, 5);
}

static void
test_defaults(void **state)
{
	struct config *c = config_default();
	struct loaded l;
	char	 host[HOST_NAME_MAX + 1] = "";

	(void)state;
	assert_non_null(c);
	assert_defaults(c);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	assert_string_equal(c->hostname, host[0] != '\0' ? host : "localhost");
	config_free(c);

	load("", &l);
	assert_int_equal(l.rc, 0);
	assert_string_equal(l.err, "");
	assert_defaults(l.cfg);
	unload(&l);

	/* Only comments and blank lines, and empty sections. */
	load("# c\n; c\n\n[server]\n[smtp]\n[local]\n[tls]\n[auth]\n"
	    "[queue]\n", &l);
	assert_int_equal(l.rc, 0);
	assert_defaults(l.cfg);
	unload(&l);
}

/* etc/petrel.conf, found next to this source file, is the defaults. */
static void
test_shipped_file(void **state)
{
	char	 path[PATH_MAX + 32], dir[PATH_MAX], err[ERR_MAX];
	struct config *c = NULL;
	char	*slash;

	(void)state;
	snprintf(dir, sizeof(dir), "%s", __FILE__);
	if ((slash = strrchr(dir, '/')) != NULL)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	snprintf(path, sizeof(path), "%s/../../etc/petrel.conf", dir);
	if (access(path, R_OK) == -1)
		skip();
	if (config_load(path, &c, err, sizeof(err)) == -1)
		fail_msg("%s", err);
	assert_defaults(c);
	config_free(c);
}

enum want {
	W_ERR,		/* msg is a substring of the error */
	W_INT,		/* int field == num */
	W_SIZE,		/* size_t field == num */
	W_U64,		/* uint64_t field == num */
	W_STR,		/* char * field equals str */
	W_NULL,		/* char * field is NULL */
	W_BOOL,		/* bool field == num */
};

#define F(field)	offsetof(struct config, field)
#define OK_I(s, k, v, n)	{ s, #k, v, W_INT, F(k), n, NULL }
#define OK_Z(s, k, v, n)	{ s, #k, v, W_SIZE, F(k), n, NULL }
#define OK_U(s, k, v, n)	{ s, #k, v, W_U64, F(k), n, NULL }
#define OK_S(s, k, v, str)	{ s, #k, v, W_STR, F(k), 0, str }
#define OK_NULL(s, k, v)	{ s, #k, v, W_NULL, F(k), 0, NULL }
#define OK_B(s, k, v, n)	{ s, #k, v, W_BOOL, F(k), n, NULL }
#define BAD(s, k, v, msg)	{ s, #k, v, W_ERR, 0, 0, msg }
/* Keys whose struct field has another name. */
#define OK_I_AS(s, k, f, v, n)	{ s, #k, v, W_INT, F(f), n, NULL }
#define OK_S_AS(s, k, f, v, str) { s, #k, v, W_STR, F(f), 0, str }
#define OK_NULL_AS(s, k, f, v)	{ s, #k, v, W_NULL, F(f), 0, NULL }

static const struct key_case {
	const char	*section;
	const char	*key;
	const char	*value;
	enum want	 want;
	size_t		 off;
	uint64_t	 num;
	const char	*str;		/* W_STR: value; W_ERR: message */
} key_cases[] = {
	OK_S("server", hostname, "mx.example.org", "mx.example.org"),
	OK_S("server", hostname, "MX1", "MX1"),
	OK_S("server", hostname, "a-b.c9", "a-b.c9"),
	BAD("server", hostname, "", "'' is not a valid host name"),
	BAD("server", hostname, "-mx.example.org", "not a valid host name"),
	BAD("server", hostname, "mx-.example.org", "not a valid host name"),
	BAD("server", hostname, "mx..example.org", "not a valid host name"),
	BAD("server", hostname, "mx.example.org.", "not a valid host name"),
	BAD("server", hostname, "mx_1.example.org", "not a valid host name"),
	BAD("server", hostname, "mx example", "not a valid host name"),

	OK_S("server", spool_dir, "/var/spool/petrel", "/var/spool/petrel"),
	OK_S("server", spool_dir, "spool", "spool"),
	BAD("server", spool_dir, "", "must not be empty"),
	OK_S("server", mail_dir, "/srv/mail", "/srv/mail"),
	BAD("server", mail_dir, "", "must not be empty"),

	OK_I("server", log_level, "debug", 0),
	OK_I("server", log_level, "info", 1),
	OK_I("server", log_level, "warn", 2),
	OK_I("server", log_level, "error", 3),
	BAD("server", log_level, "verbose", "'verbose': unknown level"),
	BAD("server", log_level, "DEBUG", "unknown level"),
	BAD("server", log_level, "", "unknown level"),

	OK_I("server", workers, "1", 1),
	OK_I("server", workers, "64", 64),
	OK_I("server", workers, "007", 7),
	BAD("server", workers, "0", "'0' is out of range (1..64)"),
	BAD("server", workers, "65", "'65' is out of range (1..64)"),
	BAD("server", workers, "-1", "'-1' is not a number"),
	BAD("server", workers, "+1", "is not a number"),
	BAD("server", workers, "4x", "'4x' is not a number"),
	BAD("server", workers, "4s", "'4s' is not a number"),
	BAD("server", workers, "", "'' is not a number"),
	BAD("server", workers, "0x10", "is not a number"),
	BAD("server", workers, "99999999999999999999999", "out of range"),

	OK_U("smtp", max_message_size, "1024", 1024),
	OK_U("smtp", max_message_size, "1K", 1024),
	OK_U("smtp", max_message_size, "50M", 52428800),
	OK_U("smtp", max_message_size, "2G", UINT64_C(2) << 30),
	OK_U("smtp", max_message_size, "1024G", UINT64_C(1) << 40),
	OK_U("smtp", max_message_size, "1099511627776", UINT64_C(1) << 40),
	BAD("smtp", max_message_size, "1023",
	    "'1023' is out of range (1024..1099511627776 bytes)"),
	BAD("smtp", max_message_size, "1099511627777", "out of range"),
	BAD("smtp", max_message_size, "1025G", "out of range"),
	BAD("smtp", max_message_size, "0K", "out of range"),
	BAD("smtp", max_message_size, "17179869184G", "out of range"),
	BAD("smtp", max_message_size, "99999999999999999999G", "out of range"),
	BAD("smtp", max_message_size, "10X", "'10X': unknown unit (use K, M"),
	BAD("smtp", max_message_size, "10k", "unknown unit"),
	BAD("smtp", max_message_size, "10MB", "unknown unit"),
	BAD("smtp", max_message_size, "10 M", "unknown unit"),
	BAD("smtp", max_message_size, "M", "'M' is not a number"),

	OK_Z("smtp", max_recipients, "1", 1),
	OK_Z("smtp", max_recipients, "100000", 100000),
	BAD("smtp", max_recipients, "0", "out of range (1..100000)"),
	BAD("smtp", max_recipients, "100001", "out of range (1..100000)"),

	OK_Z("smtp", max_line_length, "512", 512),
	OK_Z("smtp", max_line_length, "65536", 65536),
	BAD("smtp", max_line_length, "511", "out of range (512..65536)"),
	BAD("smtp", max_line_length, "65537", "out of range (512..65536)"),

	OK_I("smtp", max_errors, "1", 1),
	OK_I("smtp", max_errors, "1000", 1000),
	BAD("smtp", max_errors, "0", "out of range (1..1000)"),
	BAD("smtp", max_errors, "1001", "out of range (1..1000)"),

	OK_I("smtp", max_sessions, "1", 1),
	OK_I("smtp", max_sessions, "1000000", 1000000),
	BAD("smtp", max_sessions, "0", "out of range (1..1000000)"),
	BAD("smtp", max_sessions, "1000001", "out of range (1..1000000)"),

	OK_I("smtp", max_sessions_per_client, "1", 1),
	OK_I("smtp", max_sessions_per_client, "1000000", 1000000),
	BAD("smtp", max_sessions_per_client, "0", "out of range"),
	BAD("smtp", max_sessions_per_client, "1000001", "out of range"),

	OK_I("smtp", command_timeout, "1", 1),
	OK_I("smtp", command_timeout, "30s", 30),
	OK_I("smtp", command_timeout, "5m", 300),
	OK_I("smtp", command_timeout, "24h", 86400),
	OK_I("smtp", command_timeout, "1d", 86400),
	OK_I("smtp", command_timeout, "86400", 86400),
	BAD("smtp", command_timeout, "86401",
	    "'86401' is out of range (1..86400 seconds)"),
	BAD("smtp", command_timeout, "1441m", "out of range"),
	BAD("smtp", command_timeout, "0", "out of range"),
	BAD("smtp", command_timeout, "0s", "out of range"),
	BAD("smtp", command_timeout, "5M", "'5M': unknown unit (use s, m, h"),
	BAD("smtp", command_timeout, "5min", "unknown unit"),
	BAD("smtp", command_timeout, "1.5h", "unknown unit"),
	OK_I("smtp", data_timeout, "10m", 600),
	BAD("smtp", data_timeout, "25h", "out of range"),

	OK_NULL("local", users_file, ""),
	OK_S("local", users_file, "/etc/petrel/users", "/etc/petrel/users"),
	OK_NULL("local", aliases_file, ""),
	OK_S("local", aliases_file, "etc/aliases.test", "etc/aliases.test"),

	/* [tls] cert_file and key_file go in pairs: test_tls_pair() */
	OK_S_AS("tls", dir, tls_dir, "/var/lib/petrel/tls",
	    "/var/lib/petrel/tls"),
	BAD("tls", dir, "", "must not be empty"),
	OK_NULL_AS("tls", client_ca_file, tls_client_ca_file, ""),
	OK_S_AS("tls", client_ca_file, tls_client_ca_file, "etc/ca.pem",
	    "etc/ca.pem"),
	OK_S_AS("tls", ciphers, tls_ciphers, "ECDHE+AESGCM", "ECDHE+AESGCM"),
	OK_S_AS("tls", ciphers, tls_ciphers, "HIGH:!aNULL:!MD5",
	    "HIGH:!aNULL:!MD5"),
	BAD("tls", ciphers, "", "must not be empty"),
	OK_I_AS("tls", handshake_timeout, tls_handshake_timeout, "1", 1),
	OK_I_AS("tls", handshake_timeout, tls_handshake_timeout, "30s", 30),
	OK_I_AS("tls", handshake_timeout, tls_handshake_timeout, "600", 600),
	OK_I_AS("tls", handshake_timeout, tls_handshake_timeout, "10m", 600),
	BAD("tls", handshake_timeout, "0",
	    "'0' is out of range (1..600 seconds)"),
	BAD("tls", handshake_timeout, "601", "out of range (1..600"),
	BAD("tls", handshake_timeout, "11m", "out of range"),
	BAD("tls", handshake_timeout, "1h", "out of range"),
	BAD("tls", handshake_timeout, "30x", "'30x': unknown unit"),

	OK_I_AS("auth", max_failures, auth_max_failures, "1", 1),
	OK_I_AS("auth", max_failures, auth_max_failures, "1000", 1000),
	BAD("auth", max_failures, "0", "'0' is out of range (1..1000)"),
	BAD("auth", max_failures, "1001", "out of range (1..1000)"),
	BAD("auth", max_failures, "5m", "'5m' is not a number"),
	OK_I_AS("auth", failure_window, auth_failure_window, "1", 1),
	OK_I_AS("auth", failure_window, auth_failure_window, "5m", 300),
	OK_I_AS("auth", failure_window, auth_failure_window, "1d", 86400),
	OK_I_AS("auth", failure_window, auth_failure_window, "86400", 86400),
	BAD("auth", failure_window, "0", "out of range (1..86400 seconds)"),
	BAD("auth", failure_window, "86401", "out of range"),
	BAD("auth", failure_window, "2d", "out of range"),
	BAD("auth", failure_window, "5M", "unknown unit"),
	OK_NULL("auth", sender_map_file, ""),
	OK_S("auth", sender_map_file, "etc/sender_map", "etc/sender_map"),

	OK_I("delivery", connection_reuse_time, "0", 0),
	OK_I("delivery", connection_reuse_time, "5s", 5),
	OK_I("delivery", connection_reuse_time, "5m", 300),
	OK_I("delivery", connection_reuse_time, "300", 300),
	BAD("delivery", connection_reuse_time, "301",
	    "'301' is out of range (0..300 seconds)"),
	BAD("delivery", connection_reuse_time, "-1", "is not a number"),
	BAD("delivery", connection_reuse_time, "5x", "unknown unit"),

	OK_I("queue", retry_initial, "1", 1),
	OK_I("queue", retry_initial, "4000", 4000),
	BAD("queue", retry_initial, "0", "out of range (1..2592000 seconds)"),
	BAD("queue", retry_initial, "31d", "out of range"),
	/* past the default retry_max of 4000 */
	BAD("queue", retry_initial, "4001", "4001 is more than retry_max"),
	BAD("queue", retry_initial, "30d", "is more than retry_max (4000)"),
	OK_I("queue", retry_max, "300", 300),
	OK_I("queue", retry_max, "30d", 2592000),
	OK_I("queue", retry_max, "2592000", 2592000),
	BAD("queue", retry_max, "2592001", "out of range (1..2592000"),
	BAD("queue", retry_max, "299", "299 is less than retry_initial (300)"),
	BAD("queue", retry_max, "0", "out of range"),
	OK_I("queue", max_lifetime, "5d", 432000),
	OK_I("queue", max_lifetime, "1", 1),
	OK_I("queue", max_lifetime, "365d", 31536000),
	BAD("queue", max_lifetime, "366d", "out of range (1..31536000"),
	BAD("queue", max_lifetime, "0", "out of range"),
	OK_I("queue", max_deliveries, "1", 1),
	OK_I("queue", max_deliveries, "1000", 1000),
	BAD("queue", max_deliveries, "0", "out of range (1..1000)"),
	BAD("queue", max_deliveries, "1001", "out of range (1..1000)"),
	OK_B("queue", direct_local, "no", 0),
	OK_B("queue", direct_local, "yes", 1),
	BAD("queue", direct_local, "", "'': use yes or no"),
	BAD("queue", direct_local, "Yes", "'Yes': use yes or no"),
	BAD("queue", direct_local, "1", "'1': use yes or no"),
	OK_B("queue", always_dir_sync, "yes", 1),
	OK_B("queue", always_dir_sync, "no", 0),
	BAD("queue", always_dir_sync, "auto", "'auto': use yes or no"),
};

/* Each case as line 3 of a file, after a comment and its section. */
static void
test_keys(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]);
	    i++) {
		const struct key_case *kc = &key_cases[i];
		char	 text[512], want[512];
		struct loaded l;
		const char *field;

		snprintf(text, sizeof(text), "# case %zu\n[%s]\n%s = %s\n",
		    i, kc->section, kc->key, kc->value);
		load(text, &l);
		if (kc->want == W_ERR) {
			snprintf(want, sizeof(want), "[%s] %s: ",
			    kc->section, kc->key);
			assert_err_key(&l, 3, want, kc->str);
			assert_int_equal(count_lines(l.err), 1);
			continue;
		}
		if (l.rc != 0)
			fail_msg("case %zu %s = %s: %s", i, kc->key, kc->value,
			    l.err);
		field = (const char *)l.cfg + kc->off;
		switch (kc->want) {
		case W_INT:
			assert_int_equal(*(const int *)field, kc->num);
			break;
		case W_SIZE:
			assert_int_equal(*(const size_t *)field, kc->num);
			break;
		case W_U64:
			assert_int_equal(*(const uint64_t *)field, kc->num);
			break;
		case W_STR:
			assert_string_equal(*(char *const *)field, kc->str);
			break;
		case W_NULL:
			assert_null(*(char *const *)field);
			break;
		case W_BOOL:
			assert_int_equal(*(const bool *)field, kc->num);
			break;
		case W_ERR:
			break;
		}
		unload(&l);
	}
}

/* A name of n characters: labels of label characters joined by dots. */
static void
make_name(char *out, size_t n, size_t label)
{
	for (size_t i = 0; i < n; i++)
		out[i] = (i + 1) % (label + 1) == 0 ? '.' : 'a';
	out[n] = '\0';
}

/*
 * Labels of 63 characters fit, 64 do not (RFC 1035 2.3.4). The 253-byte
 * name limit cannot be reached: inih's lines stop at 198 characters.
 */
static void
test_name_limits(void **state)
{
	static const struct {
		const char	*section;
		const char	*key;
		const char	*lead;	/* before the name on line 2 */
		size_t		 len;
		size_t		 label;
		bool		 ok;
	} cases[] = {
		{ "server", "hostname", "hostname = ", 63, 63, true },
		{ "server", "hostname", "hostname = ", 64, 64, false },
		{ "server", "hostname", "hostname = ", 187, 63, true },
		{ "local", "domains", "domains = ", 63, 63, true },
		{ "local", "domains", "domains = ", 64, 64, false },
		{ "local", "domains", "domains = ", 188, 63, true },
		{ "local", "domains", "domains = ", 188, 64, false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char	 name[256], text[512], want[64];
		struct loaded l;

		make_name(name, cases[i].len, cases[i].label);
		snprintf(text, sizeof(text), "[%s]\n%s%s\n",
		    cases[i].section, cases[i].lead, name);
		load(text, &l);
		if (cases[i].ok) {
			if (l.rc != 0)
				fail_msg("case %zu: %s", i, l.err);
			unload(&l);
			continue;
		}
		snprintf(want, sizeof(want), "[%s] %s: '", cases[i].section,
		    cases[i].key);
		assert_err(&l, 2, want);
		assert_non_null(strstr(l.err, "' is not a valid"));
	}
}

/* A line longer than inih's buffer is refused with its line number. */
static void
test_long_line(void **state)
{
	char	 text[600], name[300];
	struct loaded l;

	(void)state;
	make_name(name, 253, 63);
	snprintf(text, sizeof(text), "[server]\nhostname = %s\nworkers = 0\n",
	    name);
	load(text, &l);
	assert_err(&l, 2, "line longer than 198 characters");
	assert_err(&l, 3, "[server] workers: '0' is out of range");
	assert_int_equal(count_lines(l.err), 2);

	/* Its continuation lines are not blamed a second time. */
	snprintf(text, sizeof(text), "[local]\ndomains = %s\n  example.org\n",
	    name);
	load(text, &l);
	assert_err(&l, 2, "line longer than");
	assert_int_equal(count_lines(l.err), 1);
}

#define BAD_LISTEN	0, { { NULL, NULL, false } }	/* no list: an error */

struct listen_want {
	const char	*host;
	const char	*port;
	bool		 optional;
};

static void
test_listen(void **state)
{
	static const struct {
		const char	*value;	/* after "listen = " on line 2 */
		const char	*err;	/* NULL: loads */
		size_t		 len;
		struct listen_want want[CONFIG_LISTEN_MAX];
	} cases[] = {
		{ "127.0.0.1:25", NULL, 1, { { "127.0.0.1", "25", false } } },
		{ "0.0.0.0:25", NULL, 1, { { "0.0.0.0", "25", false } } },
		{ "[::]:25", NULL, 1, { { "::", "25", false } } },
		{ "[::1]:2525?", NULL, 1, { { "::1", "2525", true } } },
		{ "192.0.2.1:587?", NULL, 1, { { "192.0.2.1", "587", true } } },
		{ "[0:0:0:0:0:0:0:1]:25", NULL, 1, { { "::1", "25", false } } },
		{ "[2001:DB8::A]:25", NULL, 1,
		  { { "2001:db8::a", "25", false } } },
		{ "[::ffff:192.0.2.1]:25", NULL, 1,
		  { { "::ffff:192.0.2.1", "25", false } } },
		{ "127.0.0.1:025", NULL, 1, { { "127.0.0.1", "25", false } } },
		{ "127.0.0.1:1", NULL, 1, { { "127.0.0.1", "1", false } } },
		{ "127.0.0.1:65535", NULL, 1,
		  { { "127.0.0.1", "65535", false } } },
		{ "127.0.0.1:25 [::1]:25?", NULL, 2,
		  { { "127.0.0.1", "25", false }, { "::1", "25", true } } },
		{ "127.0.0.1:25,[::1]:25", NULL, 2,
		  { { "127.0.0.1", "25", false }, { "::1", "25", false } } },
		{ ", 127.0.0.1:25 ,\t, [::1]:25? ,", NULL, 2,
		  { { "127.0.0.1", "25", false }, { "::1", "25", true } } },
		{ "127.0.0.1:25 127.0.0.1:587", NULL, 2,
		  { { "127.0.0.1", "25", false },
		    { "127.0.0.1", "587", false } } },
		{ "10.0.0.1:1 10.0.0.2:2 10.0.0.3:3 10.0.0.4:4 10.0.0.5:5 "
		  "10.0.0.6:6 10.0.0.7:7 10.0.0.8:8", NULL, 8,
		  { { "10.0.0.1", "1", false }, { "10.0.0.2", "2", false },
		    { "10.0.0.3", "3", false }, { "10.0.0.4", "4", false },
		    { "10.0.0.5", "5", false }, { "10.0.0.6", "6", false },
		    { "10.0.0.7", "7", false }, { "10.0.0.8", "8", false } } },
		{ "10.0.0.1:1 10.0.0.2:2 10.0.0.3:3 10.0.0.4:4 10.0.0.5:5 "
		  "10.0.0.6:6 10.0.0.7:7 10.0.0.8:8 10.0.0.9:9",
		  "more than 8 items", BAD_LISTEN },
		{ "", "at least one address is needed", BAD_LISTEN },
		{ ",", "at least one address is needed", BAD_LISTEN },
		{ "127.0.0.1:0", "'127.0.0.1:0': port must be a number from 1",
		  BAD_LISTEN },
		{ "127.0.0.1:65536", "port must be", BAD_LISTEN },
		{ "127.0.0.1:", "port must be", BAD_LISTEN },
		{ "127.0.0.1:+25", "port must be", BAD_LISTEN },
		{ "127.0.0.1:25x", "port must be", BAD_LISTEN },
		{ "127.0.0.1", "'127.0.0.1': expected ADDR:PORT", BAD_LISTEN },
		{ "localhost:25", "'localhost:25': not a numeric IPv4 address",
		  BAD_LISTEN },
		{ "127.1:25", "not a numeric IPv4 address", BAD_LISTEN },
		{ ":25", "not a numeric IPv4 address", BAD_LISTEN },
		{ "::1:25", "'::1:25': an IPv6 address needs brackets",
		  BAD_LISTEN },
		{ "[::1]25", "'[::1]25': expected [IPV6]:PORT", BAD_LISTEN },
		{ "[::1:25", "expected [IPV6]:PORT", BAD_LISTEN },
		{ "[127.0.0.1]:25", "not a numeric IPv6 address", BAD_LISTEN },
		{ "[fe80::1%eth0]:25", "not a numeric IPv6 address",
		  BAD_LISTEN },
		{ "[::1]:25??", "port must be", BAD_LISTEN },
		{ "?", "expected ADDR:PORT", BAD_LISTEN },
		{ "127.0.0.1:25 127.0.0.1:25?", "'127.0.0.1:25?': listed twice",
		  BAD_LISTEN },
		{ "[::1]:25 [0::1]:25", "listed twice", BAD_LISTEN },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char	 text[512];
		struct loaded l;

		snprintf(text, sizeof(text), "[smtp]\nlisten = %s\n",
		    cases[i].value);
		load(text, &l);
		if (cases[i].err != NULL) {
			assert_err_key(&l, 2, "[smtp] listen: ", cases[i].err);
			assert_int_equal(count_lines(l.err), 1);
			continue;
		}
		if (l.rc != 0)
			fail_msg("case %zu '%s': %s", i, cases[i].value, l.err);
		assert_int_equal(l.cfg->mx_listen_len, cases[i].len);
		for (size_t j = 0; j < cases[i].len; j++) {
			const struct config_listen *got = &l.cfg->mx_listen[j];

			assert_string_equal(got->host, cases[i].want[j].host);
			assert_string_equal(got->port, cases[i].want[j].port);
			assert_int_equal(got->optional,
			    cases[i].want[j].optional);
		}
		unload(&l);
	}
}

/* Lists continue on indented lines; a new key line replaces the list. */
static void
test_continuation(void **state)
{
	struct loaded l;

	(void)state;
	load("[smtp]\nlisten =\n  127.0.0.1:25\n\t[::1]:25?,\n"
	    "trusted_networks = 10.0.0.0/8\n    192.168.0.0/16 ::1\n"
	    "max_errors = 5\n[local]\ndomains = a.example\n"
	    "  B.example, c.example\n", &l);
	if (l.rc != 0)
		fail_msg("%s", l.err);
	assert_int_equal(l.cfg->mx_listen_len, 2);
	assert_string_equal(l.cfg->mx_listen[1].host, "::1");
	assert_true(l.cfg->mx_listen[1].optional);
	assert_int_equal(l.cfg->trusted_networks_len, 3);
	assert_int_equal(l.cfg->max_errors, 5);
	assert_int_equal(l.cfg->domains_len, 3);
	assert_string_equal(l.cfg->domains[1], "b.example");
	unload(&l);

	/* Errors name the continuation line itself. */
	load("[smtp]\ntrusted_networks = 10.0.0.0/8\n  bogus\n"
	    "  10.0.0.0/99\n", &l);
	assert_err(&l, 3, "[smtp] trusted_networks: 'bogus': not a numeric");
	assert_err(&l, 4, "'10.0.0.0/99': prefix length must be 0 to 32");
	assert_int_equal(count_lines(l.err), 2);

	/* Too many items across lines is said once. */
	load("[smtp]\nlisten = 10.0.0.1:1 10.0.0.2:2 10.0.0.3:3 10.0.0.4:4\n"
	    "  10.0.0.5:5 10.0.0.6:6 10.0.0.7:7 10.0.0.8:8\n"
	    "  10.0.0.9:9\n  10.0.0.10:10\n", &l);
	assert_err(&l, 4, "[smtp] listen: more than 8 items");
	assert_int_equal(count_lines(l.err), 1);

	/* Only lists continue: an indented key is a mistake. */
	load("[server]\nworkers = 2\n  log_level = debug\n", &l);
	assert_err(&l, 3, "[server] workers: indented line continues");
	assert_int_equal(count_lines(l.err), 1);

	/* An indented line right after a section header is a key. */
	load("[server]\n  workers = 2\n", &l);
	assert_int_equal(l.rc, 0);
	assert_int_equal(l.cfg->workers, 2);
	unload(&l);
}

static void
test_nets_parse(void **state)
{
	static const struct {
		const char	*value;
		const char	*err;	/* NULL: loads */
		int		 family;
		const char	*addr;	/* after masking */
		int		 prefix;
	} cases[] = {
		{ "10.0.0.0/8", NULL, AF_INET, "10.0.0.0", 8 },
		{ "10.1.2.3/8", NULL, AF_INET, "10.0.0.0", 8 },
		{ "192.168.1.77/24", NULL, AF_INET, "192.168.1.0", 24 },
		{ "192.168.1.255/25", NULL, AF_INET, "192.168.1.128", 25 },
		{ "10.1.2.3", NULL, AF_INET, "10.1.2.3", 32 },
		{ "10.1.2.3/32", NULL, AF_INET, "10.1.2.3", 32 },
		{ "1.2.3.4/0", NULL, AF_INET, "0.0.0.0", 0 },
		{ "::1", NULL, AF_INET6, "::1", 128 },
		{ "::/0", NULL, AF_INET6, "::", 0 },
		{ "2001:db8:1:2:3:4:5:6/64", NULL, AF_INET6, "2001:db8:1:2::",
		  64 },
		{ "2001:db8:ffff::/33", NULL, AF_INET6, "2001:db8:8000::", 33 },
		{ "10.0.0.0/33", "'10.0.0.0/33': prefix length must be 0 to 32",
		  0, NULL, 0 },
		{ "::/129", "prefix length must be 0 to 128", 0, NULL, 0 },
		{ "10.0.0.0/", "prefix length", 0, NULL, 0 },
		{ "10.0.0.0/-1", "prefix length", 0, NULL, 0 },
		{ "10.0.0.0/8/8", "prefix length", 0, NULL, 0 },
		{ "10.0.0.0/x", "prefix length", 0, NULL, 0 },
		{ "10.0.0/8", "not a numeric IPv4 or IPv6 address", 0, NULL,
		  0 },
		{ "example.org/8", "not a numeric", 0, NULL, 0 },
		{ "[::1]/128", "not a numeric", 0, NULL, 0 },
		{ "/8", "not a numeric", 0, NULL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char	 text[256], got[INET6_ADDRSTRLEN];
		struct loaded l;
		const struct config_net *n;

		snprintf(text, sizeof(text), "[smtp]\ntrusted_networks = %s\n",
		    cases[i].value);
		load(text, &l);
		if (cases[i].err != NULL) {
			assert_err_key(&l, 2, "[smtp] trusted_networks: ",
			    cases[i].err);
			continue;
		}
		if (l.rc != 0)
			fail_msg("case %zu '%s': %s", i, cases[i].value, l.err);
		assert_int_equal(l.cfg->trusted_networks_len, 1);
		n = &l.cfg->trusted_networks[0];
		assert_int_equal(n->family, cases[i].family);
		assert_int_equal(n->prefix, cases[i].prefix);
		assert_non_null(inet_ntop(n->family, n->addr, got,
		    sizeof(got)));
		assert_string_equal(got, cases[i].addr);
		unload(&l);
	}

	/* 64 networks fit, 65 do not; an empty value means none. */
	{
		char	 text[4096] = "[smtp]\ntrusted_networks =\n";
		struct loaded l;

		for (int i = 0; i < CONFIG_NETS_MAX; i++)
			snprintf(text + strlen(text), sizeof(text) -
			    strlen(text), "  10.0.%d.0/24\n", i);
		load(text, &l);
		assert_int_equal(l.rc, 0);
		assert_int_equal(l.cfg->trusted_networks_len, CONFIG_NETS_MAX);
		unload(&l);
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "  10.1.0.0/16\n");
		load(text, &l);
		assert_err(&l, 3 + CONFIG_NETS_MAX,
		    "[smtp] trusted_networks: more than 64 items");
		load("[smtp]\ntrusted_networks =\n", &l);
		assert_int_equal(l.rc, 0);
		assert_int_equal(l.cfg->trusted_networks_len, 0);
		unload(&l);
	}
}

static void
test_trusted(void **state)
{
	static const struct {
		const char	*nets;
		const char	*addr;	/* ':' in it: AF_INET6 */
		bool		 want;
	} cases[] = {
		{ "", "127.0.0.1", false },
		{ "", "::1", false },
		{ "127.0.0.0/8", "127.0.0.1", true },
		{ "127.0.0.0/8", "127.255.255.255", true },
		{ "127.0.0.0/8", "128.0.0.1", false },
		{ "127.0.0.0/8", "126.255.255.255", false },
		{ "0.0.0.0/0", "1.2.3.4", true },
		{ "0.0.0.0/0", "255.255.255.255", true },
		{ "0.0.0.0/0", "::ffff:1.2.3.4", true },
		{ "0.0.0.0/0", "2001:db8::1", false },
		{ "0.0.0.0/0", "::", false },
		{ "10.1.2.3", "10.1.2.3", true },
		{ "10.1.2.3", "10.1.2.4", false },
		{ "10.1.2.3/32", "10.1.2.3", true },
		{ "10.1.2.3/32", "10.1.2.2", false },
		{ "192.168.1.77/24", "192.168.1.1", true },
		{ "192.168.1.77/24", "192.168.2.1", false },
		{ "1.2.3.4/31", "1.2.3.5", true },
		{ "1.2.3.4/31", "1.2.3.6", false },
		{ "1.2.3.0/25", "1.2.3.127", true },
		{ "1.2.3.0/25", "1.2.3.128", false },
		{ "128.0.0.0/1", "200.1.1.1", true },
		{ "128.0.0.0/1", "100.1.1.1", false },
		{ "::1", "::1", true },
		{ "::1/128", "::1", true },
		{ "::1/128", "::2", false },
		{ "::1/128", "127.0.0.1", false },
		{ "::/0", "2001:db8::1", true },
		{ "::/0", "::", true },
		{ "::/0", "1.2.3.4", true },	/* ::ffff:1.2.3.4 is in ::/0 */
		{ "2001:db8:1:2::/64", "2001:db8:1:2::1", true },
		{ "2001:db8:1:2::/64", "2001:db8:1:2:ffff:ffff:ffff:ffff",
		  true },
		{ "2001:db8:1:2::/64", "2001:db8:1:3::1", false },
		{ "2001:db8:1:2::/64", "2001:db8:1:1:ffff:ffff:ffff:ffff",
		  false },
		{ "2001:db8::/63", "2001:db8:0:1::1", true },
		{ "2001:db8::/63", "2001:db8:0:2::", false },
		/* IPv4-mapped: dual-stack sockets report v4 peers so */
		{ "10.0.0.0/8", "::ffff:10.1.1.1", true },
		{ "10.0.0.0/8", "::ffff:11.1.1.1", false },
		{ "10.0.0.0/8", "::10.1.1.1", false },	/* v4-compatible */
		{ "10.0.0.0/8", "::ffff:0:10.1.1.1", false },
		{ "::ffff:10.0.0.0/104", "10.9.9.9", true },
		{ "::ffff:10.0.0.0/104", "11.0.0.1", false },
		{ "::ffff:0:0/96", "8.8.8.8", true },
		{ "::ffff:0:0/96", "2001:db8::1", false },
		{ "::ffff:127.0.0.1", "127.0.0.1", true },
		{ "::ffff:127.0.0.1", "127.0.0.2", false },
		{ "127.0.0.1", "::ffff:127.0.0.1", true },
		/* first match of several wins */
		{ "10.0.0.0/8 192.168.0.0/16 ::1", "192.168.3.4", true },
		{ "10.0.0.0/8 192.168.0.0/16 ::1", "::1", true },
		{ "10.0.0.0/8 192.168.0.0/16 ::1", "172.16.0.1", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char	 text[256];
		unsigned char addr[16];
		int	 family;
		struct loaded l;

		family = strchr(cases[i].addr, ':') != NULL ? AF_INET6 :
		    AF_INET;
		assert_int_equal(inet_pton(family, cases[i].addr, addr), 1);
		snprintf(text, sizeof(text), "[smtp]\ntrusted_networks = %s\n",
		    cases[i].nets);
		load(text, &l);
		if (l.rc != 0)
			fail_msg("case %zu: %s", i, l.err);
		if (config_trusted(l.cfg, family, addr) != cases[i].want)
			fail_msg("case %zu: %s in '%s' should be %s", i,
			    cases[i].addr, cases[i].nets,
			    cases[i].want ? "true" : "false");
		unload(&l);
	}

	/* Other families are never trusted. */
	{
		struct config *c = config_default();
		unsigned char addr[16] = { 0 };

		c->trusted_networks_len = 1;
		c->trusted_networks[0].family = AF_INET;
		c->trusted_networks[0].prefix = 0;
		assert_true(config_trusted(c, AF_INET, addr));
		assert_false(config_trusted(c, AF_UNIX, addr));
		config_free(c);
	}
}

static void
test_domains(void **state)
{
	char	 text[4096];
	struct loaded l;

	(void)state;
	load("[local]\ndomains = Example.ORG, localhost mail.example.net\n",
	    &l);
	if (l.rc != 0)
		fail_msg("%s", l.err);
	assert_int_equal(l.cfg->domains_len, 3);
	assert_string_equal(l.cfg->domains[0], "example.org");
	assert_true(config_local_domain(l.cfg, "example.org"));
	assert_true(config_local_domain(l.cfg, "localhost"));
	assert_true(config_local_domain(l.cfg, "mail.example.net"));
	assert_false(config_local_domain(l.cfg, "Example.ORG"));
	assert_false(config_local_domain(l.cfg, "example.org."));
	assert_false(config_local_domain(l.cfg, "xample.org"));
	assert_false(config_local_domain(l.cfg, "example.or"));
	assert_false(config_local_domain(l.cfg, "example.net"));
	assert_false(config_local_domain(l.cfg, ""));
	unload(&l);

	load("[local]\ndomains = a.example bad_name 1.2.3.4 [1.2.3.4]"
	    " A.EXAMPLE -x.example\n", &l);
	assert_err(&l, 2, "[local] domains: 'bad_name' is not a valid domain");
	assert_err(&l, 2, "'1.2.3.4' is not a valid domain");
	assert_err(&l, 2, "'[1.2.3.4]' is not a valid domain");
	assert_err(&l, 2, "'A.EXAMPLE': listed twice");
	assert_err(&l, 2, "'-x.example' is not a valid domain");
	assert_int_equal(count_lines(l.err), 5);

	load("[local]\ndomains =\n", &l);
	assert_err(&l, 2, "[local] domains: at least one domain is needed");
	assert_int_equal(count_lines(l.err), 1);

	/* CONFIG_DOMAINS_MAX fit, one more does not. */
	snprintf(text, sizeof(text), "[local]\ndomains =\n");
	for (int i = 0; i < CONFIG_DOMAINS_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "  d%d.example\n", i);
	load(text, &l);
	assert_int_equal(l.rc, 0);
	assert_int_equal(l.cfg->domains_len, CONFIG_DOMAINS_MAX);
	assert_true(config_local_domain(l.cfg, "d63.example"));
	unload(&l);
	snprintf(text + strlen(text), sizeof(text) - strlen(text),
	    "  one-more.example\n");
	load(text, &l);
	assert_err(&l, 3 + CONFIG_DOMAINS_MAX,
	    "[local] domains: more than 64 items");
}

/* submission_listen and smtps_listen: listen's syntax, may be empty. */
static void
test_listen_more(void **state)
{
	static const char *const keys[] = {
		"submission_listen", "smtps_listen",
	};
	char	 text[1024], want[128];
	struct loaded l;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		const char *key = keys[i];
		const struct config_listen *got;
		size_t	 len;

#define LIST(c)	(i == 0 ? (c)->submission_listen : (c)->smtps_listen)
#define LEN(c)	(i == 0 ? (c)->submission_listen_len : (c)->smtps_listen_len)
		/* empty: no such listener */
		snprintf(text, sizeof(text), "[smtp]\n%s =\n", key);
		load(text, &l);
		if (l.rc != 0)
			fail_msg("%s: %s", key, l.err);
		assert_int_equal(LEN(l.cfg), 0);
		unload(&l);

		snprintf(text, sizeof(text), "[smtp]\n%s = 0.0.0.0:587,"
		    "[::]:587?\n  192.0.2.1:465\n", key);
		load(text, &l);
		if (l.rc != 0)
			fail_msg("%s: %s", key, l.err);
		len = LEN(l.cfg);
		got = LIST(l.cfg);
		assert_int_equal(len, 3);
		assert_string_equal(got[0].host, "0.0.0.0");
		assert_string_equal(got[0].port, "587");
		assert_string_equal(got[1].host, "::");
		assert_true(got[1].optional);
		assert_string_equal(got[2].host, "192.0.2.1");
		unload(&l);

		/* CONFIG_LISTEN_MAX fit, one more does not */
		snprintf(text, sizeof(text), "[smtp]\n%s =", key);
		for (int j = 1; j <= CONFIG_LISTEN_MAX; j++)
			snprintf(text + strlen(text), sizeof(text) -
			    strlen(text), " 10.0.0.%d:%d", j, j);
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "\n");
		load(text, &l);
		if (l.rc != 0)
			fail_msg("%s: %s", key, l.err);
		assert_int_equal(LEN(l.cfg), CONFIG_LISTEN_MAX);
		unload(&l);
		snprintf(text + strlen(text) - 1, sizeof(text) - strlen(text),
		    " 10.0.0.99:99\n");
		load(text, &l);
		snprintf(want, sizeof(want), "[smtp] %s: ", key);
		assert_err_key(&l, 2, want, "more than 8 items");
		assert_int_equal(count_lines(l.err), 1);

		snprintf(text, sizeof(text), "[smtp]\n%s = 127.0.0.1\n", key);
		load(text, &l);
		assert_err_key(&l, 2, want, "'127.0.0.1': expected ADDR:PORT");
		snprintf(text, sizeof(text), "[smtp]\n%s = [::1]:1 [::1]:1?\n",
		    key);
		load(text, &l);
		assert_err_key(&l, 2, want, "'[::1]:1?': listed twice");
		assert_int_equal(count_lines(l.err), 1);
#undef LIST
#undef LEN
	}

	/* One address in two lists cannot bind twice. */
	load("[smtp]\nlisten = 127.0.0.1:2587\n", &l);
	assert_err(&l, 2, "[smtp] listen: '127.0.0.1:2587' is also in "
	    "submission_listen");
	assert_int_equal(count_lines(l.err), 1);
	load("[smtp]\nsmtps_listen = [::1]:2525\n", &l);
	assert_err(&l, 2, "[smtp] smtps_listen: '[::1]:2525' is also in "
	    "listen");
	load("[smtp]\nsubmission_listen = 127.0.0.1:25\n"
	    "smtps_listen = 127.0.0.1:25\nlisten = 127.0.0.1:25\n", &l);
	assert_err(&l, 2, "[smtp] submission_listen: '127.0.0.1:25' is also "
	    "in listen");
	assert_err(&l, 3, "[smtp] smtps_listen: '127.0.0.1:25' is also in "
	    "listen");
	assert_int_equal(count_lines(l.err), 2);	/* one per key */
	/* A bad list is not blamed twice. */
	load("[smtp]\nlisten = 127.0.0.1:2587 x\n", &l);
	assert_err(&l, 2, "'x': expected ADDR:PORT");
	assert_int_equal(count_lines(l.err), 1);
	/* Moving a default out of the way is fine. */
	load("[smtp]\nlisten = 127.0.0.1:2587\n"
	    "submission_listen = 127.0.0.1:587\n", &l);
	if (l.rc != 0)
		fail_msg("%s", l.err);
	unload(&l);
}

/* [tls] sni = NAME=CERT:KEY, ... */
static void
test_sni(void **state)
{
	static const struct {
		const char	*value;
		const char	*err;	/* NULL: loads */
	} bad[] = {
		{ "a.example", "'a.example': expected NAME=CERTFILE:KEYFILE" },
		{ "a.example=c.pem", "expected NAME=CERTFILE:KEYFILE" },
		{ "a.example=:k.pem", "expected NAME=CERTFILE:KEYFILE" },
		{ "a.example=c.pem:", "expected NAME=CERTFILE:KEYFILE" },
		{ "=c.pem:k.pem",
		  "'=c.pem:k.pem': not a host name or *.domain" },
		{ "*=c:k", "not a host name" },
		{ "*.=c:k", "not a host name" },
		{ "a.*.example=c:k", "not a host name" },
		{ "**.example=c:k", "not a host name" },
		{ "bad_name.example=c:k", "not a host name" },
		{ "a.example=c:k A.Example=d:e", "'A.Example=d:e': name listed "
		  "twice" },
	};
	char	 text[4096];
	struct loaded l;
	const struct config_sni *s;

	(void)state;
	load("[tls]\nsni = Mail.Example.ORG=/etc/c.pem:/etc/k.pem,"
	    "*.example.net=c2:k2\n  b.example=/a:b/c.pem:k3\n", &l);
	if (l.rc != 0)
		fail_msg("%s", l.err);
	assert_int_equal(l.cfg->tls_sni_len, 3);
	s = l.cfg->tls_sni;
	assert_string_equal(s[0].name, "mail.example.org");
	assert_string_equal(s[0].cert_file, "/etc/c.pem");
	assert_string_equal(s[0].key_file, "/etc/k.pem");
	assert_string_equal(s[1].name, "*.example.net");
	assert_string_equal(s[1].cert_file, "c2");
	assert_string_equal(s[1].key_file, "k2");
	/* the last ':' splits: a certificate path may hold one */
	assert_string_equal(s[2].cert_file, "/a:b/c.pem");
	assert_string_equal(s[2].key_file, "k3");
	unload(&l);

	load("[tls]\nsni =\n", &l);
	assert_int_equal(l.rc, 0);
	assert_int_equal(l.cfg->tls_sni_len, 0);
	unload(&l);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "[tls]\nsni = %s\n", bad[i].value);
		load(text, &l);
		assert_err_key(&l, 2, "[tls] sni: ", bad[i].err);
		assert_int_equal(count_lines(l.err), 1);
	}

	/* CONFIG_SNI_MAX names fit, one more does not. */
	snprintf(text, sizeof(text), "[tls]\nsni =\n");
	for (int i = 0; i < CONFIG_SNI_MAX; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "  n%d.example=c%d.pem:k%d.pem\n", i, i, i);
	load(text, &l);
	if (l.rc != 0)
		fail_msg("%s", l.err);
	assert_int_equal(l.cfg->tls_sni_len, CONFIG_SNI_MAX);
	assert_string_equal(l.cfg->tls_sni[CONFIG_SNI_MAX - 1].key_file,
	    "k15.pem");
	unload(&l);
	snprintf(text + strlen(text), sizeof(text) - strlen(text),
	    "  more.example=c.pem:k.pem\n");
	load(text, &l);
	assert_err(&l, 3 + CONFIG_SNI_MAX, "[tls] sni: more than 16 items");
	assert_int_equal(count_lines(l.err), 1);
}

/* [tls] cert_file and key_file: both or neither. */
static void
test_tls_pair(void **state)
{
	struct loaded l;

	(void)state;
	load("[tls]\ncert_file = /etc/petrel/c.pem\n"
	    "key_file = /etc/petrel/k.pem\n", &l);
	if (l.rc != 0)
		fail_msg("%s", l.err);
	assert_string_equal(l.cfg->tls_cert_file, "/etc/petrel/c.pem");
	assert_string_equal(l.cfg->tls_key_file, "/etc/petrel/k.pem");
	unload(&l);

	load("[tls]\ncert_file =\nkey_file =\n", &l);
	assert_int_equal(l.rc, 0);
	assert_null(l.cfg->tls_cert_file);
	assert_null(l.cfg->tls_key_file);
	unload(&l);

	load("[tls]\ndir = x\ncert_file = c.pem\n", &l);
	assert_err(&l, 3, "[tls] cert_file: set key_file as well");
	assert_int_equal(count_lines(l.err), 1);
	load("[tls]\nkey_file = k.pem\n", &l);
	assert_err(&l, 2, "[tls] key_file: set cert_file as well");
	assert_int_equal(count_lines(l.err), 1);
	load("[tls]\ncert_file = c.pem\nkey_file =\n", &l);
	assert_err(&l, 2, "[tls] cert_file: set key_file as well");
	/* a key set twice is reported once, not as a missing pair too */
	load("[tls]\nkey_file = k.pem\ncert_file = c.pem\n"
	    "cert_file = d.pem\n", &l);
	assert_err(&l, 4, "[tls] cert_file: duplicate key");
	assert_int_equal(count_lines(l.err), 1);
}

static void
test_unknown(void **state)
{
	struct loaded l;

	(void)state;
	/* Keys of an unknown section are not blamed one by one. */
	load("[nope]\nx = 1\ny = 2\n[server]\nworkers = 3\n", &l);
	assert_err(&l, 1, "[nope]: unknown section");
	assert_int_equal(count_lines(l.err), 1);

	load("[SMTP]\n", &l);
	assert_err(&l, 1, "[SMTP]: unknown section");
	load("[ smtp ]\n", &l);
	assert_err(&l, 1, "[ smtp ]: unknown section");
	load("[]\n", &l);
	assert_err(&l, 1, "[]: unknown section");

	load("[smtp]\nmax_message_size = 1M\nlisten_port = 25\n", &l);
	assert_err(&l, 3, "[smtp] listen_port: unknown key");
	assert_int_equal(count_lines(l.err), 1);

	load("[smtp]\nWorkers = 2\n", &l);
	assert_err(&l, 2, "[smtp] Workers: unknown key");
	/* A key in the wrong section is unknown there. */
	load("[smtp]\nworkers = 2\n", &l);
	assert_err(&l, 2, "[smtp] workers: unknown key");

	load("workers = 4\n[server]\n", &l);
	assert_err(&l, 1, "workers: key before any [section]");
	assert_int_equal(count_lines(l.err), 1);
}

static void
test_duplicate(void **state)
{
	struct loaded l;

	(void)state;
	load("[server]\nworkers = 2\n\nworkers = 3\n", &l);
	assert_err(&l, 4, "[server] workers: duplicate key (first set on "
	    "line 2)");
	assert_int_equal(count_lines(l.err), 1);

	/* A section may be reopened, but a key is still set only once. */
	load("[server]\nworkers = 2\n[smtp]\n[server]\nlog_level = warn\n"
	    "workers = 2\n", &l);
	assert_err(&l, 6, "[server] workers: duplicate key (first set on "
	    "line 2)");

	load("[server]\nworkers = 2\n[server]\nlog_level = warn\n", &l);
	assert_int_equal(l.rc, 0);
	assert_int_equal(l.cfg->log_level, 2);
	unload(&l);

	/* A duplicate list's continuation lines are dropped with it. */
	load("[local]\ndomains = a.example\ndomains = b.example\n"
	    "  not_valid\n", &l);
	assert_err(&l, 3, "[local] domains: duplicate key");
	assert_int_equal(count_lines(l.err), 1);
}

static void
test_syntax(void **state)
{
	static const char nul[] = "[server]\nwork\0ers = 2\nworkers = 0\n";
	struct loaded l;

	(void)state;
	load("[server]\nworkers\n", &l);
	assert_err(&l, 2, "syntax error: expected [section] or key = value");
	load("[server\nworkers = 2\n", &l);
	assert_err(&l, 1, "syntax error: missing ']'");
	load("[server ; ]\n", &l);
	assert_err(&l, 1, "missing ']'");
	load("[server]\nworkers ; = 2\n", &l);
	assert_err(&l, 2, "syntax error");

	load_len(nul, sizeof(nul) - 1, &l);
	assert_err(&l, 2, "NUL byte in line");
	assert_err(&l, 3, "[server] workers: '0' is out of range");

	/* name: value is inih's alias for name = value */
	load("[server]\nworkers: 3\n", &l);
	assert_int_equal(l.rc, 0);
	assert_int_equal(l.cfg->workers, 3);
	unload(&l);
}

static void
test_format(void **state)
{
	struct loaded l;

	(void)state;
	/* Comments with '#' or ';', inline " ;" comments, CRLF, a BOM. */
	load("\xEF\xBB\xBF# petrel\r\n; more\r\n[server] ; main\r\n"
	    "workers = 8 ; eight\r\n\r\n  # indented comment\r\n"
	    "log_level=debug\r\n[local]\r\n"
	    "users_file = etc/u;x\r\n", &l);
	if (l.rc != 0)
		fail_msg("%s", l.err);
	assert_int_equal(l.cfg->workers, 8);
	assert_int_equal(l.cfg->log_level, 0);
	assert_string_equal(l.cfg->users_file, "etc/u;x");
	unload(&l);

	/* No newline at the end. */
	load("[server]\nworkers = 9", &l);
	assert_int_equal(l.rc, 0);
	assert_int_equal(l.cfg->workers, 9);
	unload(&l);

	/* '#' is only a comment at the start of a line. */
	load("[server]\nworkers = 9 # nine\n", &l);
	assert_err(&l, 2, "[server] workers: '9 # nine' is not a number");

	/* Control characters in values are escaped in messages. */
	load("[server]\nlog_level = de\tbug\"\n", &l);
	assert_err(&l, 2, "'de\\x09bug\\x22': unknown level");
}

/* All problems come back at once, in file order, one per line. */
static void
test_many_errors(void **state)
{
	struct loaded l;
	const char *p;

	(void)state;
	load("[server]\nworkers = 0\nlog_level = loud\n[smtp]\n"
	    "listen = 1.2.3.4\nbogus = 1\n[queue]\nretry_max = 1\n"
	    "[local]\ndomains = x_y\n[x]\n", &l);
	assert_int_equal(count_lines(l.err), 7);
	assert_err(&l, 2, "[server] workers: ");
	assert_err(&l, 3, "[server] log_level: ");
	assert_err(&l, 5, "[smtp] listen: '1.2.3.4': expected ADDR:PORT");
	assert_err(&l, 6, "[smtp] bogus: unknown key");
	assert_err(&l, 8, "[queue] retry_max: 1 is less than retry_initial");
	assert_err(&l, 10, "[local] domains: 'x_y'");
	assert_err(&l, 11, "[x]: unknown section");
	/* in file order, except checks between keys come last */
	p = strstr(l.err, ":2: ");
	assert_non_null(p);
	assert_non_null(strstr(p, ":3: "));
	assert_true(strstr(l.err, ":6: ") < strstr(l.err, ":10: "));
	assert_int_equal(l.err[strlen(l.err) - 1] != '\n', 1);
}

static void
test_err_buffer(void **state)
{
	char	 text[16384] = "[server]\n", err[100];
	struct config *c = NULL;
	char	 path[] = "/tmp/test_config.XXXXXX";
	int	 fd;

	(void)state;
	for (int i = 0; i < 150; i++)
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
		    "k%d = 1\n", i);
	fd = mkstemp(path);
	assert_true(fd != -1);
	assert_int_equal(write(fd, text, strlen(text)),
	    (ssize_t)strlen(text));
	close(fd);

	/* Whole lines, then a marker, within errlen. */
	memset(err, 'x', sizeof(err));
	assert_int_equal(config_load(path, &c, err, sizeof(err)), -1);
	assert_null(c);
	assert_true(strlen(err) < sizeof(err));
	assert_non_null(strstr(err, ":2: [server] k0: unknown key\n"));
	assert_non_null(strstr(err, "\n(more errors not shown)"));

	/* Not even one line fits: it is cut. */
	memset(err, 'x', sizeof(err));
	assert_int_equal(config_load(path, &c, err, 10), -1);
	assert_int_equal(strlen(err), 9);
	assert_int_equal(err[10], 'x');
	assert_memory_equal(err, path, 9);

	/* No room at all. */
	assert_int_equal(config_load(path, &c, err, 0), -1);
	assert_int_equal(config_load(path, &c, NULL, 0), -1);

	/* Past 100 errors the rest are counted. */
	{
		static char big[ERR_MAX * 4];

		assert_int_equal(config_load(path, &c, big, sizeof(big)), -1);
		assert_int_equal(count_lines(big), 101);
		assert_non_null(strstr(big, ":101: [server] k99: unknown"));
		assert_null(strstr(big, "k100:"));
		assert_non_null(strstr(big, ": 50 more errors not shown"));
	}
	unlink(path);
}

static void
test_missing(void **state)
{
	struct config *c = (struct config *)1;
	char	 err[256];

	(void)state;
	assert_int_equal(config_load("/nonexistent/petrel.conf", &c, err,
	    sizeof(err)), -1);
	assert_null(c);
	assert_string_equal(err,
	    "/nonexistent/petrel.conf: No such file or directory");
	config_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_shipped_file),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_name_limits),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_continuation),
		cmocka_unit_test(test_nets_parse),
		cmocka_unit_test(test_trusted),
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_listen_more),
		cmocka_unit_test(test_sni),
		cmocka_unit_test(test_tls_pair),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_duplicate),
		cmocka_unit_test(test_syntax),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_many_errors),
		cmocka_unit_test(test_err_buffer),
		cmocka_unit_test(test_missing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

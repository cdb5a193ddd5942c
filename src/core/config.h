#ifndef PETREL_CORE_CONFIG_H
#define PETREL_CORE_CONFIG_H
/*
 * config.h: the configuration snapshot, loaded from an INI file (libinih).
 * A loaded config is immutable; SIGHUP builds a new one. Relative paths
 * in the file are taken relative to the current directory at startup.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_LISTEN_MAX	8
#define CONFIG_DOMAINS_MAX	64
#define CONFIG_NETS_MAX		64
#define CONFIG_SNI_MAX		16

struct config_sni {			/* a certificate for one TLS SNI name */
	char	*name;			/* owned, lowercased; "*.x" allowed */
	char	*cert_file;		/* owned: PEM, full chain */
	char	*key_file;		/* owned: PEM */
};

struct config_listen {
	char	 host[64];	/* numeric address, "127.0.0.1" or "::1" */
	char	 port[8];	/* numeric port */
	bool	 optional;	/* skip quietly if the address is not there
				   (e.g. [::1] on a host without IPv6) */
};

struct config_net {			/* a trusted network, CIDR */
	int	 family;		/* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int	 prefix;
};

struct config {
	/* [server] */
	char	*hostname;		/* owned; default: gethostname() */
	char	*spool_dir;		/* owned; default "var/spool" */
	char	*mail_dir;		/* owned; default "var/mail" */
	int	 log_level;		/* enum log_level; default info */
	int	 workers;		/* default 8 */

	/* [smtp] */
	struct config_listen mx_listen[CONFIG_LISTEN_MAX];
	size_t	 mx_listen_len;
	/* submission (RFC 6409, STARTTLS + AUTH); default 127.0.0.1:2587 */
	struct config_listen submission_listen[CONFIG_LISTEN_MAX];
	size_t	 submission_listen_len;
	/* implicit TLS submission (RFC 8314); default 127.0.0.1:2465 */
	struct config_listen smtps_listen[CONFIG_LISTEN_MAX];
	size_t	 smtps_listen_len;
	uint64_t max_message_size;	/* bytes; default 52428800 */
	size_t	 max_recipients;	/* default 1000 */
	size_t	 max_line_length;	/* command line incl. CRLF; default 2048 */
	int	 max_errors;		/* default 20, then 421 and close */
	int	 max_sessions;		/* default 1000 */
	int	 max_sessions_per_client; /* default 50 */
	int	 command_timeout;	/* seconds; default 300 */
	int	 data_timeout;		/* seconds; default 300 */
	struct config_net trusted_networks[CONFIG_NETS_MAX];
	size_t	 trusted_networks_len;	/* default none */

	/* [local] */
	char	*domains[CONFIG_DOMAINS_MAX];	/* owned, lowercased */
	size_t	 domains_len;		/* default: "localhost" */
	char	*users_file;		/* owned or NULL; default "etc/users" */
	char	*aliases_file;		/* owned or NULL; default "etc/aliases" */

	/* [tls] */
	char	*tls_cert_file;		/* owned or NULL: PEM full chain; NULL
					   = self-signed one in tls_dir */
	char	*tls_key_file;		/* owned or NULL */
	char	*tls_dir;		/* owned; default "var/tls" */
	struct config_sni tls_sni[CONFIG_SNI_MAX];
	size_t	 tls_sni_len;		/* default none */
	char	*tls_client_ca_file;	/* owned or NULL: ask for client
					   certificates, verify, log them */
	char	*tls_ciphers;		/* owned: TLS 1.2 cipher list */
	int	 tls_handshake_timeout;	/* seconds; default 30 */

	/* [auth] */
	int	 auth_max_failures;	/* per client address before 421;
					   default 5 */
	int	 auth_failure_window;	/* seconds the count is kept; 300 */
	char	*sender_map_file;	/* owned or NULL: "sender: login, ..."
					   lines; a login may always use its
					   own address and aliases that point
					   to it */

	/* [delivery]: outbound (issue 5) */
	char	*dns_servers;		/* owned or NULL: "ADDR:PORT,..." ;
					   NULL = /etc/resolv.conf */
	int	 dns_timeout;		/* seconds per try; default 5 */
	int	 remote_port;		/* SMTP port of MX hosts; default 25 */
	char	*smarthost;		/* owned or NULL: "host[:port]" */
	char	*smarthost_user;	/* owned or NULL: AUTH to it */
	char	*smarthost_password;	/* owned or NULL */
	char	*outbound_tls;		/* owned: none, opportunistic (default)
					   or required */
	char	*lmtp_routes;		/* owned or NULL: "dest=host:port" or
					   "dest=unix:/path", dest a domain
					   or user@domain, comma separated */
	int	 max_mx_hosts;		/* MX hosts tried per attempt; 5 */
	int	 max_addresses;		/* addresses tried per attempt; 10 */
	int	 connect_timeout;	/* seconds; default 30 */
	int	 client_command_timeout; /* seconds; default 300 */
	int	 client_data_timeout;	/* seconds; default 600 */
	int	 destination_concurrency; /* per destination; default 20 */
	int	 connection_reuse_time;	/* seconds a connection stays open,
					   idle, for the next message to its
					   destination; 0 = never; default 5 */
	int	 delay_warning;		/* seconds; 0 = never; default 4h */
	char	*double_bounce;		/* owned: "postmaster" or "drop" */
	uint64_t bounce_return_max;	/* original bytes returned in a bounce;
					   default 1M */

	/* [queue] */
	int	 retry_initial;		/* seconds; default 300 */
	int	 retry_max;		/* seconds; default 4000 */
	int	 max_lifetime;		/* seconds; default 432000 (5 days) */
	int	 max_deliveries;	/* concurrent delivery jobs; default 16 */
	bool	 direct_local;		/* Maildir deliveries before the 250,
					   skipping the queue; default yes */
	bool	 batch_sync;		/* a pass writing several Maildir
					   files syncs them with one syncfs;
					   default yes */
	bool	 always_dir_sync;	/* fsync a new file's directory even
					   where the file's fsync covers its
					   name (newfile.h); default no */
};

/*
 * Load and validate path. On success *out is a new config (free with
 * config_free()). On failure returns -1 and err holds every problem, one
 * per line, as "FILE:LINE: [section] key: message".
 */
int	config_load(const char *path, struct config **out, char *err,
	    size_t errlen);
/* A config with every default, as if loaded from an empty file. */
struct config *config_default(void);
void	config_free(struct config *c);
/* True if addr (AF_INET/AF_INET6, raw bytes) is in trusted_networks. */
bool	config_trusted(const struct config *c, int family, const void *addr);
/* True if domain (lowercase) is one of the local domains. */
bool	config_local_domain(const struct config *c, const char *domain);

#endif

#ifndef PETREL_NET_TLS_H
#define PETREL_NET_TLS_H
/*
 * tls.h: server TLS contexts (OpenSSL 3): TLS 1.2 and 1.3 only, a modern
 * cipher list, server preference, session tickets, SNI with per-name
 * certificates, optional client certificates. Building a context does
 * blocking file I/O: do it at startup or on SIGHUP, never per session.
 */
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/config.h"

struct tls_ctx;

/*
 * Build the server contexts from cfg (certificate, key, SNI entries,
 * client CA, ciphers). When cfg has no certificate, a self-signed one for
 * cfg->hostname is created in cfg->tls_dir on first use and reused after
 * (its SHA-256 fingerprint goes to *fingerprint if not NULL, else ""). A
 * key that does not match its certificate, an unreadable file or a bad
 * PEM is an error: -1 with err naming the file. Returns 0 and *out.
 */
int		 tls_ctx_new(const struct config *cfg, struct tls_ctx **out,
		    char *fingerprint, size_t fplen, char *err, size_t errlen);
/* Drop a reference; live SSL objects keep what they use. */
void		 tls_ctx_free(struct tls_ctx *t);
/* A new server SSL object for one connection (SNI handled inside). */
SSL		*tls_ssl_new(struct tls_ctx *t);
/*
 * Only validate cfg's TLS files without creating anything (for "petrel
 * check"): 0 or -1 with err.
 */
int		 tls_check(const struct config *cfg, char *err, size_t errlen);
/*
 * "TLSv1.3 TLS_AES_256_GCM_SHA384" style description of an established
 * connection, for logs and the Received header; plus the client
 * certificate subject when one was presented ("" otherwise).
 */
void		 tls_describe(SSL *ssl, char *out, size_t cap);
void		 tls_peer_subject(SSL *ssl, char *out, size_t cap);
/*
 * tls-exporter channel binding (RFC 9266): 32 bytes of keying material
 * with label "EXPORTER-Channel-Binding" and no context. 0 or -1 (TLS
 * below 1.3 has no exporter binding usable here: -1).
 */
int		 tls_exporter_binding(SSL *ssl, unsigned char out[32]);

#endif

/*
 * fuzz_config.c: the configuration file parser (config_load over libinih
 * and our line reader) and the lookup-table loader (users, aliases), fed
 * arbitrary file contents. Neither may crash, leak or accept a file and
 * then hand back a config that fails its own invariants.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/table.h"

static char	 path[] = "/tmp/petrel-fuzz-config-XXXXXX";
static int	 fd = -1;

static void
rm_file(void)
{
	unlink(path);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config	*c = NULL;
	struct table	*t = NULL;
	char		 err[4096];

	if (fd == -1) {
		if ((fd = mkstemp(path)) == -1)
			abort();
		atexit(rm_file);
	}
	if (ftruncate(fd, 0) == -1 || pwrite(fd, data, size, 0) !=
	    (ssize_t)size)
		abort();
	if (config_load(path, &c, err, sizeof(err)) == 0) {
		/* what loads must be usable */
		if (c->mx_listen_len == 0 || c->domains_len == 0 ||
		    c->hostname == NULL || c->spool_dir == NULL ||
		    c->retry_max < c->retry_initial)
			abort();
		config_free(c);
	} else if (err[0] == '\0')
		abort();		/* a refusal always says why */
	if (table_load(path, 0, &t, err, sizeof(err)) == 0)
		table_free(t);
	else if (err[0] == '\0')
		abort();
	return 0;
}

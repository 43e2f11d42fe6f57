/*
 * fuzz_instance.c — the instance config file through its public reader.
 *
 * Each input becomes INSTANCE/lamfs.conf in a private temporary instance
 * directory, then instance_load() reads it.  Checks, besides memory safety
 * and leaks:
 *   - the result is 0, -EBADMSG (bad config, with a message), -EPROTO (newer
 *     config version, with a message) or -ENOMEM;
 *   - on success the mandatory fields are set and the derived paths are the
 *     instance's; on failure every field is NULL again (nothing half-loaded);
 *   - loading is deterministic: a second load of the same file gives the same
 *     result and the same fields.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "instance.h"
#include "log.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond)) {                                                          \
			fprintf(stderr, "fuzz_instance: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                              \
			abort();                                                        \
		}                                                                       \
	} while (0)

static char inst_dir[PATH_MAX];
static char conf_path[PATH_MAX + 16];

static void cleanup(void)
{
	unlink(conf_path);
	rmdir(inst_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char tmpl[PATH_MAX];

	(void)argc;
	(void)argv;
	snprintf(tmpl, sizeof(tmpl), "%s/lamfs-fuzz-inst.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpl) || !realpath(tmpl, inst_dir)) {
		perror("fuzz_instance: mkdtemp");
		exit(1);
	}
	snprintf(conf_path, sizeof(conf_path), "%s/%s", inst_dir, INSTANCE_CONF);
	atexit(cleanup);
	log_set_level(LL_ERR);
	return 0;
}

static int streq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static int all_null(const struct instance_config *c)
{
	return !c->dir && !c->storage_url && !c->meta_url && !c->staging_dir && !c->log_path &&
	       !c->s3_profile && !c->s3_endpoint && !c->s3_region;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct instance_config a = INSTANCE_CONFIG_INIT, b = INSTANCE_CONFIG_INIT;
	char *ea = NULL, *eb = NULL;
	int fd, ra, rb;
	char want[PATH_MAX + 32];

	if (size > 64 * 1024)
		return -1;
	fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	CHECK(size == 0 || write(fd, data, size) == (ssize_t)size);
	close(fd);

	ra = instance_load(inst_dir, &a, &ea);
	CHECK(ra == 0 || ra == -EBADMSG || ra == -EPROTO || ra == -ENOMEM);
	if (ra == 0) {
		CHECK(a.storage_url && a.meta_url && a.dir && a.staging_dir && a.log_path);
		CHECK(!strcmp(a.dir, inst_dir));
		snprintf(want, sizeof(want), "%s/staging", inst_dir);
		CHECK(!strcmp(a.staging_dir, want));
		snprintf(want, sizeof(want), "%s/lamfs.log", inst_dir);
		CHECK(!strcmp(a.log_path, want));
	} else {
		CHECK(all_null(&a));
		CHECK(ra == -ENOMEM || (ea && ea[0]));
	}

	rb = instance_load(inst_dir, &b, &eb);
	CHECK(ra == rb);
	CHECK(streq(ea, eb));
	CHECK(streq(a.storage_url, b.storage_url) && streq(a.meta_url, b.meta_url) &&
	      streq(a.s3_profile, b.s3_profile) && streq(a.s3_endpoint, b.s3_endpoint) &&
	      streq(a.s3_region, b.s3_region));

	instance_config_release(&a);
	instance_config_release(&b);
	CHECK(all_null(&a));
	free(ea);
	free(eb);
	return 0;
}

/*
 * fuzz_s3_config.c — the AWS profile files and the S3 settings from the
 * environment (backend/s3_config.c, parsed with inih).
 *
 * The input is NUL-separated fields (missing fields are empty):
 *   0  opts.s3_profile        (empty: not given)
 *   1  ~/.aws/credentials     (AWS_SHARED_CREDENTIALS_FILE points at it)
 *   2  ~/.aws/config          (AWS_CONFIG_FILE points at it)
 *   3  AWS_PROFILE            (empty: unset)
 *   4  LAMFS_S3_ADDRESSING    (empty: unset)
 *   5  LAMFS_S3_PART_SIZE     (empty: unset; likewise 6-8)
 *   6  LAMFS_S3_MULTIPART_THRESHOLD
 *   7  LAMFS_S3_READAHEAD
 *   8  LAMFS_S3_PARALLEL
 * Checks, besides memory safety and leaks:
 *   - the result is 0, -EACCES (no credentials), -EINVAL (bad setting) or
 *     -ENOMEM, with a message on failure;
 *   - on success the profile, both keys and the region are set, the
 *     addressing style is one of the three, and every tunable is within the
 *     range s3_config.c documents;
 *   - no secret is ever in the message: neither the secret key nor the
 *     session token of the wanted profile shows up in *errmsg.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "s3_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_s3_config: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                               \
			abort();                                                         \
		}                                                                        \
	} while (0)

#define NFIELDS 9

static char dir[PATH_MAX];
static char cred_path[PATH_MAX + 16];
static char conf_path[PATH_MAX + 16];

static void cleanup(void)
{
	unlink(cred_path);
	unlink(conf_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const clear[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
		"AWS_CA_BUNDLE", "AWS_PROFILE", "LAMFS_S3_ATTEMPTS", "LAMFS_S3_RETRY_BASE_MS",
		"LAMFS_S3_CONNECT_TIMEOUT", "LAMFS_S3_STALL_TIMEOUT",
	};
	const char *tmp = getenv("TMPDIR");
	size_t i;

	(void)argc;
	(void)argv;
	snprintf(dir, sizeof(dir), "%s/lamfs-fuzz-aws.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		perror("fuzz_s3_config: mkdtemp");
		exit(1);
	}
	snprintf(cred_path, sizeof(cred_path), "%s/credentials", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/config", dir);
	atexit(cleanup);
	for (i = 0; i < sizeof(clear) / sizeof(clear[0]); i++)
		unsetenv(clear[i]);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
	setenv("AWS_CONFIG_FILE", conf_path, 1);
	log_set_level(LL_ERR);
	return 0;
}

static void write_file(const char *path, const char *s, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	CHECK(fd >= 0);
	CHECK(n == 0 || write(fd, s, n) == (ssize_t)n);
	close(fd);
}

static void env(const char *name, const char *v)
{
	if (v[0])
		setenv(name, v, 1);
	else
		unsetenv(name);
}

/* Whether a secret of the files shows up in msg: every value of
 * "aws_secret_access_key" or "aws_session_token" that contains the marker
 * "SECRET" (so that a value can not be in the message by coincidence: the
 * fixed text has no such word) and is not also a field the message may
 * legitimately quote (profile names, the addressing style from the
 * environment or from the config file). */
static const char *quotable[3];
/* The two files: a bad addressing_style in either is quoted back too. */
static const char *quotable_files[2];

/* Whether val is inside an addressing_style value of either file (the
 * whole rest of its line: a superset of what inih reads). */
static int in_addressing_style(const char *val)
{
	const char *p, *eq;
	size_t n, vn = strlen(val), i;
	int found = 0;

	for (i = 0; i < 2 && !found; i++) {
		for (p = strstr(quotable_files[i], "addressing_style"); p && !found;
		     p = strstr(p + 1, "addressing_style")) {
			eq = strchr(p, '=');
			if (!eq)
				break;
			eq += 1 + strspn(eq + 1, " \t");
			n = strcspn(eq, "\r\n");
			found = n >= vn && memmem(eq, n, val, vn) != NULL;
		}
	}
	return found;
}

static void check_no_secret(const char *msg, const char *file)
{
	static const char *const names[] = { "aws_secret_access_key", "aws_session_token" };
	const char *p = file;
	size_t i;

	if (!msg)
		return;
	for (i = 0; i < 2; i++) {
		for (p = strstr(file, names[i]); p; p = strstr(p + 1, names[i])) {
			const char *eq = strchr(p, '=');
			char val[256];
			size_t n;

			if (!eq)
				break;
			eq += 1 + strspn(eq + 1, " \t");
			n = strcspn(eq, "\r\n;#");
			while (n && (eq[n - 1] == ' ' || eq[n - 1] == '\t'))
				n--;
			if (n < 8 || n >= sizeof(val))
				continue;
			memcpy(val, eq, n);
			val[n] = '\0';
			if (!strstr(val, "SECRET") || strstr(quotable[0], val) ||
			    strstr(quotable[1], val) || strstr(quotable[2], val) ||
			    in_addressing_style(val))
				continue;
			if (strstr(msg, val)) {
				fprintf(stderr, "fuzz_s3_config: a secret is in the message: %s\n", msg);
				abort();
			}
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *f[NFIELDS];
	size_t flen[NFIELDS];
	char *copy;
	size_t i, start = 0, k = 0;
	struct backend_opts opts = { 0 };
	struct s3_config cfg;
	char *err = NULL;
	int rc;

	if (size > 64 * 1024)
		return -1;
	copy = malloc(size + 1);
	CHECK(copy);
	memcpy(copy, data, size);
	copy[size] = '\0';
	for (i = 0; i <= size && k < NFIELDS; i++) {
		if (i == size || copy[i] == '\0') {
			f[k] = copy + start;
			flen[k] = i - start;
			k++;
			start = i + 1;
		}
	}
	for (; k < NFIELDS; k++) {
		f[k] = "";
		flen[k] = 0;
	}

	opts.s3_profile = f[0][0] ? f[0] : NULL;
	write_file(cred_path, f[1], flen[1]);
	write_file(conf_path, f[2], flen[2]);
	env("AWS_PROFILE", f[3]);
	env("LAMFS_S3_ADDRESSING", f[4]);
	env("LAMFS_S3_PART_SIZE", f[5]);
	env("LAMFS_S3_MULTIPART_THRESHOLD", f[6]);
	env("LAMFS_S3_READAHEAD", f[7]);
	env("LAMFS_S3_PARALLEL", f[8]);

	rc = s3_config_load(&opts, &cfg, &err);
	CHECK(rc == 0 || rc == -EACCES || rc == -EINVAL || rc == -ENOMEM);
	if (rc == 0) {
		CHECK(cfg.profile && cfg.access_key && cfg.secret_key && cfg.region);
		CHECK(cfg.access_key[0] && cfg.secret_key[0]);
		CHECK(cfg.addressing == S3_ADDR_AUTO || cfg.addressing == S3_ADDR_PATH ||
		      cfg.addressing == S3_ADDR_VIRTUAL);
		CHECK(cfg.t.part_size >= 4096 && cfg.t.part_size <= (5ull << 30));
		CHECK(cfg.t.multipart_threshold >= 1 && cfg.t.multipart_threshold <= S3_MAX_OBJECT);
		CHECK(cfg.t.readahead_max >= (64u << 10) && cfg.t.readahead_max <= (256u << 20));
		CHECK(cfg.t.parallel >= 1 && cfg.t.parallel <= 16);
		CHECK(cfg.t.attempts == 5);
		if (opts.s3_profile)
			CHECK(!strcmp(cfg.profile, opts.s3_profile));
	} else {
		CHECK(rc == -ENOMEM || (err && err[0]));
	}
	quotable[0] = f[0];
	quotable[1] = f[3];
	quotable[2] = f[4];
	quotable_files[0] = f[1];
	quotable_files[1] = f[2];
	check_no_secret(err, f[1]);
	check_no_secret(err, f[2]);
	s3_config_release(&cfg);
	free(err);
	free(copy);
	return 0;
}

/*
 * fuzz_mountopts.c — the mount -o option filter (tools/cli_mountopts.c).
 *
 * Input: byte 0 picks the flags (bit 0: sloppy) and byte 1 the size of the
 * message buffer (1..256, heap-allocated at exactly that size so ASan sees an
 * overflow); the rest, up to a NUL, is the option string (so lists over
 * MOUNTOPTS_MAX are reached too).  Checks, besides memory safety and leaks:
 *   - the result is one cli.h lists: 0, -EINVAL, -E2BIG, -EPERM, -ENOMEM;
 *     a list over MOUNTOPTS_MAX bytes is -E2BIG;
 *   - on failure *out is NULL and msg holds a reason; msg is always a
 *     terminated string within its buffer;
 *   - on success *out has no empty entries, no duplicates, only options the
 *     daemon takes (ro, allow_other, allow_root, nodev, nosuid, noexec,
 *     writeback), and filtering it again gives it back unchanged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fs.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                      \
	do {                                                                             \
		if (!(cond)) {                                                           \
			fprintf(stderr, "fuzz_mountopts: check failed: %s (line %d)\n", #cond, \
				__LINE__);                                               \
			abort();                                                         \
		}                                                                        \
	} while (0)

static const char *const passed[] = {
	"ro", "allow_other", "allow_root", "nodev", "nosuid", "noexec", "writeback",
};

static int is_passed(const char *tok, size_t len)
{
	static const char ct[] = "cache_timeout=";
	char value[64];
	double seconds;
	size_t i;

	for (i = 0; i < sizeof(passed) / sizeof(passed[0]); i++)
		if (strlen(passed[i]) == len && !memcmp(passed[i], tok, len))
			return 1;
	/* cache_timeout= only with a value the daemon accepts */
	if (len > sizeof(ct) - 1 && !memcmp(tok, ct, sizeof(ct) - 1) &&
	    len - (sizeof(ct) - 1) < sizeof(value)) {
		memcpy(value, tok + sizeof(ct) - 1, len - (sizeof(ct) - 1));
		value[len - (sizeof(ct) - 1)] = '\0';
		return fs_cache_timeout_parse(value, &seconds) == 0;
	}
	return 0;
}

static void check_output(const char *out)
{
	const char *p = out, *q;
	size_t len;

	if (!*out)
		return;
	for (;;) {
		q = strchr(p, ',');
		len = q ? (size_t)(q - p) : strlen(p);
		CHECK(len > 0);
		if (!is_passed(p, len)) {
			fprintf(stderr, "fuzz_mountopts: '%.*s' handed to the daemon\n", (int)len, p);
			abort();
		}
		/* no duplicate later in the list */
		{
			const char *r = q;

			while (r) {
				const char *s = r + 1, *t = strchr(s, ',');
				size_t l2 = t ? (size_t)(t - s) : strlen(s);

				CHECK(!(l2 == len && !memcmp(s, p, len)));
				r = t;
			}
		}
		if (!q)
			break;
		p = q + 1;
	}
}

static FILE *quiet;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	quiet = fopen("/dev/null", "w");
	if (!quiet) {
		perror("fuzz_mountopts: /dev/null");
		exit(1);
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned flags;
	size_t msglen;
	char *in, *out = (char *)"untouched", *msg, *again = NULL;
	int rc;

	if (size < 2 || size > 2 * MOUNTOPTS_MAX + 64)
		return -1;
	flags = data[0] & MOUNTOPTS_SLOPPY;
	msglen = (size_t)data[1] + 1;
	in = malloc(size - 1);
	msg = malloc(msglen);
	CHECK(in && msg);
	memcpy(in, data + 2, size - 2);
	in[size - 2] = '\0';

	/* Sloppy mode warns on stderr for every unknown option: keep that out of
	 * the fuzzer's log (sanitizer reports use fd 2 directly and still show). */
	{
		FILE *real = stderr;

		stderr = quiet;
		rc = mountopts_filter(in, flags, &out, msg, msglen);
		stderr = real;
	}
	CHECK(rc == 0 || rc == -EINVAL || rc == -E2BIG || rc == -EPERM || rc == -ENOMEM);
	CHECK(strnlen(msg, msglen) < msglen);
	if (strlen(in) > MOUNTOPTS_MAX)
		CHECK(rc == -E2BIG);
	if (rc < 0) {
		CHECK(out == NULL);
		CHECK(msglen == 1 || msg[0] != '\0');
	} else {
		CHECK(out != NULL);
		check_output(out);
		/* what the daemon gets passes the filter again, unchanged */
		rc = mountopts_filter(out, 0, &again, msg, msglen);
		CHECK(rc == 0);
		if (strcmp(again, out) != 0) {
			fprintf(stderr, "fuzz_mountopts: filter('%s') = '%s', filter again = '%s'\n",
				in, out, again);
			abort();
		}
		free(again);
		free(out);
	}
	free(in);
	free(msg);
	return 0;
}

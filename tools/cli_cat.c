/*
 * cli_cat.c — `lamfs cat` and `lamfs get`: the bytes of any stored version,
 * read through the core (core_reader), without a mount.
 *
 * The bytes are checked against the record while they stream: the size and
 * the sha256 checksum must match, or the command fails (for `get`, the
 * destination is then left untouched: the copy goes to a temporary file that is
 * renamed into place only when it is complete and verified).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli.h"

static const char cat_usage[] =
	"usage: lamfs cat INSTANCE KEY|UID\n"
	"\n"
	"Write the bytes of the latest version at KEY, or of the version UID (any\n"
	"version), to standard output.  The content is verified against the\n"
	"record's size and sha256 checksum.\n"
	"\n"
	"  -h, --help   this help\n";

static const char get_usage[] =
	"usage: lamfs get INSTANCE KEY|UID DEST\n"
	"\n"
	"Copy the latest version at KEY, or the version UID, to the local file DEST\n"
	"(or into DEST when it is a directory, under the key's last name).  DEST\n"
	"gets the record's permission bits (less the umask) and mtime.  The copy is\n"
	"verified before it replaces DEST.\n"
	"\n"
	"  -h, --help   this help\n";

static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/*
 * Stream rec's bytes to fd, verifying size and checksum.  Returns 0, -errno
 * (*where says "reading" or "writing"), or -EBADMSG when the content does not
 * match the record.
 */
static int stream(struct core *c, const struct lamfs_record *rec, int fd, const char **where)
{
	struct core_reader *r = NULL;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char dig[EVP_MAX_MD_SIZE];
	char hex[LAMFS_CHECKSUM_LEN + 1];
	const size_t bufsz = 1u << 20;
	char *buf = malloc(bufsz);
	uint64_t off = 0;
	unsigned dlen = 0, i;
	int rc;

	*where = "reading";
	if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		rc = -ENOMEM;
		goto out;
	}
	rc = core_reader_open(c, rec, &r);
	if (rc < 0)
		goto out;
	for (;;) {
		ssize_t n = core_reader_pread(r, buf, bufsz, off);

		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		EVP_DigestUpdate(md, buf, (size_t)n);
		rc = write_all(fd, buf, (size_t)n);
		if (rc < 0) {
			*where = "writing";
			goto out;
		}
		off += (uint64_t)n;
	}
	EVP_DigestFinal_ex(md, dig, &dlen);
	for (i = 0; i < dlen && 2 * i + 2 < sizeof(hex); i++)
		snprintf(hex + 2 * i, 3, "%02x", dig[i]);
	hex[2 * i] = '\0';
	if (off != (uint64_t)rec->size || strcmp(hex, rec->checksum) != 0)
		rc = -EBADMSG;
out:
	core_reader_close(r);
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

static void stream_error(const char *cmd, const char *arg, const struct lamfs_record *rec,
			 int rc, const char *where)
{
	if (rc == -EBADMSG)
		cli_err(cmd, "%s: the stored bytes of %s do not match its record (size or "
			"checksum); run lamfs-repair --verify", arg, rec->uid);
	else
		cli_err(cmd, "%s: %s %s: %s", arg, where, rec->uid, strerror(-rc));
}

/* Parse "CMD INSTANCE ARG..." with nargs operands; -1 to go on. */
static int parse(const char *cmd, int argc, char **argv, const char *usage, int nargs)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (ch == 'h')
			return cli_usage(usage, CLI_OK);
		return cli_usage(usage, CLI_USAGE);
	}
	if (argc - optind != nargs) {
		cli_err(cmd, nargs == 2 ? "expected INSTANCE and KEY|UID"
			: "expected INSTANCE, KEY|UID and DEST");
		return cli_usage(usage, CLI_USAGE);
	}
	return -1;
}

/* Open the instance and find a readable record; NULL core on failure. */
static struct core *open_record(const char *cmd, const char *inst, const char *arg,
				struct lamfs_record *rec)
{
	struct core *c = cli_open(cmd, inst, CORE_READONLY);

	if (!c)
		return NULL;
	if (cli_resolve(cmd, c, arg, rec) < 0)
		goto fail;
	if (rec->storage_ongoing) {
		cli_err(cmd, "%s: storage of %s is still ongoing; it cannot be read until its "
			"save completes", arg, rec->uid);
		goto fail;
	}
	return c;
fail:
	core_close(c);
	return NULL;
}

int cli_cat(int argc, char **argv)
{
	struct lamfs_record rec;
	struct core *c;
	const char *where;
	int status, rc;

	status = parse("cat", argc, argv, cat_usage, 2);
	if (status >= 0)
		return status;
	c = open_record("cat", argv[optind], argv[optind + 1], &rec);
	if (!c)
		return CLI_FAIL;
	fflush(stdout);
	rc = stream(c, &rec, STDOUT_FILENO, &where);
	if (rc < 0 && !(rc == -EPIPE && !strcmp(where, "writing")))
		stream_error("cat", argv[optind + 1], &rec, rc, where);
	core_close(c);
	return rc < 0 ? CLI_FAIL : CLI_OK;
}

int cli_get(int argc, char **argv)
{
	struct lamfs_record rec;
	struct core *c;
	struct timespec ts[2];
	struct stat st;
	char dest[PATH_MAX], tmp[PATH_MAX + 16] = "";
	const char *where, *name;
	mode_t um;
	int status, rc, fd = -1;

	status = parse("get", argc, argv, get_usage, 3);
	if (status >= 0)
		return status;
	c = open_record("get", argv[optind], argv[optind + 1], &rec);
	if (!c)
		return CLI_FAIL;
	status = CLI_FAIL;
	name = strrchr(rec.key, '/');
	name = name ? name + 1 : rec.key;
	if (stat(argv[optind + 2], &st) == 0 && S_ISDIR(st.st_mode))
		rc = snprintf(dest, sizeof(dest), "%s/%s", argv[optind + 2], name);
	else
		rc = snprintf(dest, sizeof(dest), "%s", argv[optind + 2]);
	if (rc < 0 || (size_t)rc >= sizeof(dest)) {
		cli_err("get", "%s: destination path too long", argv[optind + 2]);
		goto out;
	}
	snprintf(tmp, sizeof(tmp), "%s.lamfs-XXXXXX", dest);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		cli_err("get", "%s: %s", dest, strerror(errno));
		goto out;
	}
	rc = stream(c, &rec, fd, &where);
	if (rc < 0) {
		stream_error("get", argv[optind + 1], &rec, rc, where);
		goto out;
	}
	um = umask(0);
	umask(um);
	ts[0].tv_sec = 0;
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_sec = (time_t)(rec.mtime_ns / 1000000000LL);
	ts[1].tv_nsec = (long)(rec.mtime_ns % 1000000000LL);
	if (fchmod(fd, (mode_t)(rec.mode & 0777) & ~um) != 0 || futimens(fd, ts) != 0 ||
	    close(fd) != 0) {
		fd = -1;
		cli_err("get", "%s: %s", tmp, strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, dest) != 0) {
		cli_err("get", "%s: %s", dest, strerror(errno));
		goto out;
	}
	tmp[0] = '\0';
	status = CLI_OK;
out:
	if (fd >= 0)
		close(fd);
	if (tmp[0])
		unlink(tmp);
	core_close(c);
	return status;
}

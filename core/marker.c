/*
 * marker.c — storage_uid.txt through the storage backend (see marker.h).
 */
#include "marker.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"

int marker_read(struct backend *b, struct lamindb_ident *out, const char **why)
{
	struct backend_reader *r = NULL;
	char buf[LAMINDB_MARKER_MAX];
	uint64_t size = 0;
	size_t got = 0;
	int rc;

	*why = NULL;
	rc = backend_reader_open(b, MARKER_OBJECT, &r, &size);
	if (rc < 0)
		goto out;
	if (size > sizeof(buf)) {
		*why = "it is larger than a storage marker can be";
		rc = -EBADMSG;
		goto out;
	}
	rc = backend_reader_pread(r, buf, (size_t)size, 0, &got);
	if (rc == 0 && got != size)
		rc = -EIO;
	if (rc == 0)
		rc = lamindb_ident_parse(buf, got, out, why);
out:
	if (r)
		backend_reader_close(r);
	return rc;
}

int marker_write(struct backend *b, const char *staging_dir, const struct lamindb_ident *id)
{
	char text[LAMINDB_MARKER_MAX], *tmp = NULL;
	struct backend_src src = { 0 };
	int fd = -1, consumed = 0, n, rc = 0;

	n = lamindb_ident_format(id, text, sizeof(text));
	if (n < 0) {
		rc = n;
		goto out;
	}
	if (asprintf(&tmp, "%s/marker.XXXXXX", staging_dir) < 0) {
		tmp = NULL;
		rc = -ENOMEM;
		goto out;
	}
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		free(tmp);
		tmp = NULL;
		goto out;
	}
	if (write(fd, text, (size_t)n) != n || fsync(fd) != 0) {
		rc = errno ? -errno : -EIO;
		goto out;
	}
	src.path = tmp;
	src.fd = fd;
	src.size = (uint64_t)n;
	src.synced = 1;
	rc = backend_put(b, MARKER_OBJECT, &src, &consumed);
out:
	if (fd >= 0)
		close(fd);
	if (tmp)
		unlink(tmp);
	free(tmp);
	return rc;
}

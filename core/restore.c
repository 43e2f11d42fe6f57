/*
 * restore.c — registering objects saved after a restored backup (restore.h).
 */
#include "restore.h"
#include "save_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "core_internal.h"
#include "key.h"
#include "log.h"
#include "meta.h"
#include "uid.h"

#define STEM_SEARCH_MAX 4096        /* earlier versions tried, newest first */
#define OBJ_KEY_XATTR "user.lamfs.key"
#define COPY_CHUNK (1u << 20)

const char *restore_key_source_name(enum restore_key_source src)
{
	switch (src) {
	case RESTORE_KEY_STEM:
		return "an earlier version";
	case RESTORE_KEY_OBJECT:
		return "kept with the object";
	default:
		return "unknown";
	}
}

/* The key of any other version of uid's stem (the nearest older first, then
 * newer ones: a version may have been purged).  1 found, 0 not. */
static int key_from_stem(struct core *c, const char *uid, char *key, size_t keylen)
{
	char stem[LAMFS_STEM_LEN + 1], other[LAMFS_UID_LEN + 1];
	struct lamfs_record rec;
	long v = uid_version(uid), n;

	if (v < 0)
		return 0;
	memcpy(stem, uid, LAMFS_STEM_LEN);
	stem[LAMFS_STEM_LEN] = '\0';
	for (n = 0; n < STEM_SEARCH_MAX; n++) {
		long try = n < v ? v - 1 - n : n + 1;   /* v-1 .. 0, then v+1 .. */

		if (uid_make(stem, try, other) < 0)
			break;
		if (meta_get_uid(core_meta(c), other, &rec) == 0) {
			snprintf(key, keylen, "%s", rec.key);
			return 1;
		}
	}
	return 0;
}

/* The key kept with a local object (backend_src.key). */
static int key_from_object(struct core *c, const char *obj, char *key, size_t keylen)
{
	const char *root = c->cfg.storage_url;
	char path[PATH_MAX];
	ssize_t n;

	if (!root || root[0] != '/' ||
	    snprintf(path, sizeof(path), "%s/%s", root, obj) >= (int)sizeof(path))
		return 0;
	n = getxattr(path, OBJ_KEY_XATTR, key, keylen - 1);
	if (n <= 0)
		return 0;
	key[n] = '\0';
	return key_check(key) == 0;
}

enum restore_key_source restore_object_key(struct core *c, const char *uid, const char *obj,
					   char *key, size_t keylen)
{
	const char *base = strrchr(obj, '/');

	if (key_from_stem(c, uid, key, keylen))
		return RESTORE_KEY_STEM;
	if (key_from_object(c, obj, key, keylen))
		return RESTORE_KEY_OBJECT;
	snprintf(key, keylen, "lost+found/%s", base ? base + 1 : obj);
	return RESTORE_KEY_UNKNOWN;
}

/* Copy obj into a new file in the staging folder; its path into tmp. */
static int fetch(struct core *c, const char *obj, char *tmp, size_t tmplen)
{
	struct backend_reader *r = NULL;
	unsigned char *buf = NULL;
	uint64_t size = 0, off = 0;
	int fd = -1, rc;

	snprintf(tmp, tmplen, "%s/r.%ld.XXXXXX", core_staging_dir(c), (long)getpid());
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = -errno;
		tmp[0] = '\0';
		goto out;
	}
	rc = backend_reader_open(core_backend(c), obj, &r, &size);
	buf = rc == 0 ? malloc(COPY_CHUNK) : NULL;
	if (rc == 0 && !buf)
		rc = -ENOMEM;
	while (rc == 0 && off < size) {
		size_t got = 0;

		rc = backend_reader_pread(r, buf, COPY_CHUNK, off, &got);
		if (rc == 0 && got == 0)
			rc = -EIO;      /* shorter than it said */
		if (rc == 0 && write(fd, buf, got) != (ssize_t)got)
			rc = -errno ? -errno : -EIO;
		off += got;
	}
out:
	if (r)
		backend_reader_close(r);
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp[0]) {
		unlink(tmp);
		tmp[0] = '\0';
	}
	free(buf);
	return rc;
}

int restore_register(struct core *c, const char *obj, const char *key, struct lamfs_record *out)
{
	struct core_attrs attrs = { 0644, (uint32_t)getuid(), (uint32_t)getgid(), 0 };
	const char *name = strrchr(obj, '/');
	char tmp[PATH_MAX] = "", mine[LAMFS_OBJ_MAX];
	int rc;

	rc = fetch(c, obj, tmp, sizeof(tmp));
	if (rc == 0)
		rc = core_save_file(c, tmp, key, &attrs, NULL, out);
	if (rc == 0) {
		key_object(out->uid, out->suffix, mine, sizeof(mine));
		/* Another uid (a new stem, or the version number was taken): the
		 * bytes are stored under it now, so the old name goes. */
		if (strcmp(mine, obj)) {
			int e = backend_remove(core_backend(c), obj);

			if (e < 0 && e != -ENOENT)
				log_warn("restore: %s registered as %s; removing %s failed: %s",
					 name ? name + 1 : obj, out->uid, obj, strerror(-e));
		}
	}
	if (tmp[0])
		unlink(tmp);
	return rc;
}

const char *restore_backup_of(const struct core *c)
{
	return c->cfg.restored_from;
}

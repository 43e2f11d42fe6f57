/*
 * save_file.c — saving a local file from where it is (save_file.h).
 */
#include "save_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "core_internal.h"
#include "fault.h"
#include "hash.h"
#include "key.h"
#include "log.h"
#include "meta.h"

/* The bytes the backend reads while storing: hashed, counted, shown. */
struct sent {
	struct hash_state *h;
	uint64_t bytes, size;
	const struct core_save_progress *pg;
};

static void on_sent(void *ctx, const void *buf, size_t len)
{
	struct sent *s = ctx;

	hash_update(s->h, buf, len);
	s->bytes += len;
	if (s->pg && s->pg->fn)
		s->pg->fn(s->pg->ctx, CORE_SAVE_STORING, s->bytes, s->size);
}

/* The same file, unchanged: size, mtime and ctime (ns). */
static int same_stat(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_ino == b->st_ino && a->st_dev == b->st_dev &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

struct hashing {
	const struct core_save_progress *pg;
	uint64_t size;
};

static void on_hashed(void *ctx, uint64_t done)
{
	struct hashing *hg = ctx;

	if (hg->pg && hg->pg->fn)
		hg->pg->fn(hg->pg->ctx, CORE_SAVE_HASHING, done, hg->size);
}

/* Read 1: the hashes of the whole file, in hr. */
static int hash_file(int fd, uint64_t size, const struct core_save_progress *pg,
		     struct hash_result *hr)
{
	struct hashing hg = { pg, size };
	int rc = hash_fd_progress(fd, on_hashed, &hg, hr);

	if (rc == 0 && hr->size != size)
		rc = -ESTALE;      /* grew or shrank while it was read */
	return rc;
}

int core_save_file(struct core *c, const char *path, const char *key,
		   const struct core_attrs *attrs, const struct core_save_progress *pg,
		   struct lamfs_record *out)
{
	struct stat st0, st1;
	struct hash_result hr, hs;
	struct lamfs_record rec;
	enum meta_save_state state = META_SAVE_EXISTS;
	struct sent sent = { NULL, 0, 0, pg };
	struct backend_src src = { 0 };
	char obj[LAMFS_OBJ_MAX];
	int fd = -1, rc, begun = 0, consumed = 0;

	rc = key_check(key);
	if (rc < 0)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st0) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st0.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	sent.size = (uint64_t)st0.st_size;
	rc = hash_file(fd, (uint64_t)st0.st_size, pg, &hr);
	if (rc == 0 && (fstat(fd, &st1) < 0 || !same_stat(&st0, &st1)))
		rc = -ESTALE;
	if (rc < 0)
		goto out;
	core_record_fill(c, &rec, key, &hr, attrs);
	rc = meta_save_begin(core_meta(c), &rec, &state, META_BEGIN_LAZY);
	if (rc < 0 || state == META_SAVE_EXISTS)
		goto out;
	begun = 1;
	rc = fault_check("save.flagged");
	if (rc < 0)
		goto out;
	rc = hash_new(&sent.h);
	if (rc < 0)
		goto out;
	src.fd = fd;
	src.size = hr.size;
	src.md5 = hr.md5_ok ? hr.md5 : NULL;
	src.sha256_hex = hr.checksum;
	src.key = rec.key;
	src.on_read = on_sent;
	src.on_read_ctx = &sent;
	/* may_consume stays 0: the user's file is never linked into storage */
	key_object(rec.uid, rec.suffix, obj, sizeof(obj));
	rc = backend_put(core_backend(c), obj, &src, &consumed);
	if (rc == -ENOENT)
		rc = -EIO;  /* storage lost the bucket under us: not a missing file */
	if (rc == 0 && (fstat(fd, &st1) < 0 || !same_stat(&st0, &st1)))
		rc = -ESTALE;
	if (rc == 0 && sent.bytes) {
		/* The backend showed what it read: it must be what was hashed. */
		rc = hash_finish(sent.h, fd, &hs);
		if (rc == 0 && (sent.bytes != hr.size || strcmp(hs.checksum, hr.checksum)))
			rc = -ESTALE;
	}
	if (rc == 0)
		rc = fault_check("save.uploaded");
	if (rc == 0)
		rc = meta_save_finish(core_meta(c), rec.uid, &rec);
out:
	if (rc < 0 && begun) {
		if (rc == -ESTALE)
			log_err("save %s from %s: the file changed while it was saved; rolled back",
				key, path);
		else
			log_err("save %s (%s) from %s failed: %s; rolled back", key, rec.uid, path,
				strerror(-rc));
		core_save_undo(c, &rec, rc == -EEXIST ? -1 : 1);
	}
	if (rc == 0 && out)
		*out = rec;
	hash_free(sent.h);
	if (fd >= 0)
		close(fd);
	return rc;
}

/*
 * marker.h — LaminDB's storage marker, <storage root>/.lamindb/storage_uid.txt,
 * read and written through the storage backend (local or S3 alike).
 *
 * The marker says which LaminDB instance owns a storage root (lamindb_id.h
 * has its format).  lamfs init writes it as the last step of a new instance
 * and reads it to attach to an existing one; lamfs info shows it.  The repair
 * tool never takes it for an object (objects are "<uid><suffix>").
 */
#ifndef LAMFS_MARKER_H
#define LAMFS_MARKER_H

#include "lamindb_id.h"

struct backend;

/* The marker's object name, relative to the storage root. */
#define MARKER_OBJECT ".lamindb/" LAMINDB_MARKER_NAME

/* Read the marker of b's storage.  0: *out is set.  -ENOENT: there is none.
 * -EBADMSG: the object is not a marker (*why says why, a static string);
 * another -errno from the backend (-EACCES, -EIO). */
int marker_read(struct backend *b, struct lamindb_ident *out, const char **why);

/* Write the marker of id, replacing any (a backend put: atomic and durable
 * when it returns 0).  The bytes go through a temporary file in staging_dir,
 * removed before it returns.  0 or -errno. */
int marker_write(struct backend *b, const char *staging_dir, const struct lamindb_ident *id);

#endif

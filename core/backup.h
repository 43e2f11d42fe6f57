/*
 * backup.h — a consistent copy of an instance's metadata, and its restore.
 *
 * Works from the metadata url of the instance config (instance.h), never
 * from table or file names, so it follows wherever the store keeps its data:
 *  - SQLite ("sqlite:/abs/path"): a second connection to the database file
 *    copies it with SQLite's online backup API in one step: one read
 *    transaction, so the copy is the database as of one commit while mounts
 *    keep saving (WAL: readers never block writers).  DEST is a SQLite
 *    database, written to DEST.tmp-<pid> and renamed into place.
 *  - PostgreSQL (postgresql://...): pg_dump in custom format (-Fc) to DEST
 *    (one snapshot, as pg_dump takes); restored with pg_restore.
 * Storage objects are not copied: they never change under their name, and a
 * save never replaces an object (backend.h), so what was saved after the
 * backup stays in storage for lamfs-repair to register again.
 *
 * Both return 0 or -errno with a one-line reason in *errmsg (caller frees).
 */
#ifndef LAMFS_BACKUP_H
#define LAMFS_BACKUP_H

/* Copy the store at meta_url to dest (which must not exist).  -EEXIST dest
 * exists; -ENOENT no store; -EPROTONOSUPPORT pg_dump older than the server
 * (the message says which versions); -EIO the copy failed. */
int backup_take(const char *meta_url, const char *dest, char **errmsg);

/* Replace the store at meta_url with the backup src: SQLite: src's pages
 * copied over the (new, empty) database; PostgreSQL: pg_restore into the
 * database, which must hold no lamfs schema yet.  -ENOENT src missing;
 * -EINVAL src is no backup of this kind of store; -EIO restore failed. */
int backup_restore(const char *meta_url, const char *src, char **errmsg);

/* 1 when url names a PostgreSQL store. */
int backup_is_pg(const char *url);

#endif

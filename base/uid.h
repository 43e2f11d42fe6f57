/*
 * uid.h — artifact uids: 16 random base62 characters (the stem shared by all
 * versions of an artifact) followed by a 4-character base62 version counter,
 * "0000" first.  Base62 digits are 0-9A-Za-z in that order.
 */
#ifndef LAMFS_UID_H
#define LAMFS_UID_H

#include "lamfs.h"

/* Fill out[LAMFS_UID_LEN + 1] with a new random stem and version "0000".
 * Returns 0 or -errno from getrandom(). */
int uid_new(char out[LAMFS_UID_LEN + 1]);
/* Build stem + version n into out.  -ERANGE when n >= 62^4, -EINVAL bad stem. */
int uid_make(const char *stem, long n, char out[LAMFS_UID_LEN + 1]);
/* Version number of a uid, or -EINVAL when it is not a well-formed uid. */
long uid_version(const char *uid);
/* 1 when s is a well-formed 20-character base62 uid, else 0. */
int uid_valid(const char *s);

#endif

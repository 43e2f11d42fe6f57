/*
 * key.h — keys (paths under the mount) and storage suffixes.
 *
 * A key is a '/'-separated relative path: "seqs/sample.fasta".  The root is "".
 * FUSE paths ("/seqs/sample.fasta") are turned into keys by dropping the
 * leading '/'.
 */
#ifndef LAMFS_KEY_H
#define LAMFS_KEY_H

#include <stddef.h>

#include "lamfs.h"

/*
 * Validate a key for creating or naming an artifact or folder.
 * Returns 0, or:
 *   -EINVAL        empty key, empty component ("a//b"), "." or "..", leading or
 *                  trailing '/'
 *   -ENAMETOOLONG  a component over LAMFS_NAME_MAX bytes or the key over
 *                  LAMFS_KEY_MAX bytes
 *   -EILSEQ        not valid UTF-8
 *   -EPERM         a component named ".lamindb" (the storage folder), or
 *                  ".lamfs" as the first component (reserved)
 */
int key_check(const char *key);
/* Like key_check, but for one path component. */
int key_check_name(const char *name);
/* 1 when the key names something that can never be visible (".lamindb"
 * anywhere, ".lamfs" at the root), else 0.  Lookups of such keys say ENOENT. */
int key_hidden(const char *key);

/*
 * The storage suffix of a key, LaminDB's rules (extract_suffix_from_path over
 * Python's Path.suffixes of the last component, where leading dots do not
 * start a suffix and a name ending in '.' has none): with one suffix, that
 * suffix (".fasta"); with several, all of them when they form a known suffix
 * (".tar.gz"), else the known composite suffix they end with
 * (".anndata.zarr"), else the last two when the second-to-last is a known
 * suffix (".csv.gz", ".fastq.gz", ".csv.1"), else the last one ("a.random.gz"
 * -> ".gz").  "" for none, for dot-files, for all-digit suffixes (".1"), and
 * (lamfs's own rule, so object names stay safe) for suffixes with bytes
 * outside [A-Za-z0-9._-] or longer than LAMFS_SUFFIX_MAX.
 */
void key_suffix(const char *key, char out[LAMFS_SUFFIX_MAX + 1]);

/* Split key into parent folder ("" at the top) and last name.  parent must
 * hold LAMFS_KEY_MAX + 1 bytes.  Returns a pointer to the name inside key. */
const char *key_split(const char *key, char *parent);

/* The object key of an artifact: ".lamindb/<uid><suffix>" into out
 * (LAMFS_OBJ_MAX bytes). */
void key_object(const char *uid, const char *suffix, char *out, size_t outlen);

#endif

/*
 * lamfs.h — constants and the artifact record shared by every module.
 *
 * An artifact is a key (its path under the mount), bytes in a storage backend
 * at ".lamindb/<uid><suffix>", and a record in the metadata store.  This header
 * holds only plain data; no module's functions are declared here.
 */
#ifndef LAMFS_LAMFS_H
#define LAMFS_LAMFS_H

#include <stdint.h>
#include <sys/types.h>

#define LAMFS_UID_LEN 20        /* 16-char random stem + 4-char version, base62 */
#define LAMFS_STEM_LEN 16
#define LAMFS_VERSION_LEN 4
#define LAMFS_HASH_LEN 22       /* LaminDB hash: url-safe base64, no '=', 22 chars */
#define LAMFS_CHECKSUM_LEN 64   /* sha256, lower-case hex */
#define LAMFS_HASH_TYPE_MAX 8   /* "md5" or "sha1-fl" */
#define LAMFS_NAME_MAX 255      /* bytes in one path component */
#define LAMFS_KEY_MAX 1024      /* bytes in a whole key */
#define LAMFS_SUFFIX_MAX 32     /* bytes in a storage suffix such as ".csv.gz" */
#define LAMFS_HASH_CHUNK (50ull * 1024 * 1024) /* md5 up to here, sha1-fl above */

/* The folder in a storage root that holds objects; never visible under the mount. */
#define LAMFS_STORAGE_DIR ".lamindb"
/* Object key of an artifact relative to its storage root: ".lamindb/<uid><suffix>". */
#define LAMFS_OBJ_MAX (sizeof(LAMFS_STORAGE_DIR) + LAMFS_UID_LEN + LAMFS_SUFFIX_MAX + 2)

/*
 * One artifact version.  Column names follow LaminDB where the concept is the
 * same.  Plain data: copying the struct copies the record.
 */
struct lamfs_record {
	int64_t id;                             /* store's row id */
	char uid[LAMFS_UID_LEN + 1];
	char key[LAMFS_KEY_MAX + 1];            /* "seqs/sample.fasta"; no leading '/' */
	char suffix[LAMFS_SUFFIX_MAX + 1];      /* ".fasta", "" when none */
	int64_t size;
	char hash[LAMFS_HASH_LEN + 1];
	char hash_type[LAMFS_HASH_TYPE_MAX + 1];
	char checksum[LAMFS_CHECKSUM_LEN + 1];  /* sha256 of the whole content, hex */
	int is_latest;
	int storage_ongoing;                    /* _aux = {"so": 1} */
	int branch_id;                          /* 1 live, -1 trash */
	int storage_id;
	int64_t created_at;                     /* ns since the epoch */
	int64_t updated_at;
	uint32_t mode;                          /* permission bits only (07777) */
	uint32_t owner_uid;
	uint32_t owner_gid;
	int64_t mtime_ns;
};

/* A folder: an explicit row (mkdir) or the ancestor of a saved key. */
struct lamfs_folder {
	char path[LAMFS_KEY_MAX + 1];           /* "" is the root */
	uint32_t mode;
	uint32_t owner_uid;
	uint32_t owner_gid;
	int64_t mtime_ns;
};

/* The 4-character version part of a uid ("0000" for the first version). */
static inline const char *lamfs_uid_version(const char *uid)
{
	return uid + LAMFS_STEM_LEN;
}

#endif

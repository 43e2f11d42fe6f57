/*
 * fs.h — the FUSE front end: mount an instance and serve it until unmounted.
 *
 * Each FUSE handler unpacks its request, makes one core call and replies once.
 * No SQL and no HTTP here.
 */
#ifndef LAMFS_FS_H
#define LAMFS_FS_H

struct fs_mount_opts {
	const char *instance;     /* instance directory */
	const char *mountpoint;
	int foreground;           /* -f: stay in the foreground, log to stderr */
	int debug;                /* -d: FUSE debug output (implies foreground) */
	const char *fuse_opts;    /* comma-separated options for FUSE, or NULL */
};

/*
 * Mount and serve.  Without foreground, returns in the parent only once the
 * mount is ready (0) or has failed (1, with a one-line message on stderr); the
 * daemon serves in the background.  With foreground, returns when unmounted.
 * Returns a process exit status.
 */
int fs_mount_main(const struct fs_mount_opts *o);

/* How long the kernel may keep names and attributes (-o cache_timeout=S). */
#define FS_CACHE_TIMEOUT_DEFAULT 1.0
#define FS_CACHE_TIMEOUT_MAX 3600.0

/*
 * Parse the value of cache_timeout: seconds as a decimal number (digits, at
 * most one '.'), 0 to FS_CACHE_TIMEOUT_MAX.  0 and *seconds, or -EINVAL.
 */
int fs_cache_timeout_parse(const char *value, double *seconds);

#endif

/*
 * key.c — keys (relative '/'-separated paths under the mount), their checks,
 * and the storage suffix LaminDB derives from a key.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "key.h"

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is
 * not one: overlong forms, surrogates and code points above U+10FFFF fail. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len = 0;
	unsigned lo = 0x80, hi = 0xBF;   /* allowed range of the second byte */
	size_t i;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;       /* overlong below U+0800 */
		else if (c == 0xED)
			hi = 0x9F;       /* UTF-16 surrogates D800-DFFF */
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;       /* overlong below U+10000 */
		else if (c == 0xF4)
			hi = 0x8F;       /* above U+10FFFF */
	}
	if (len == 0 || len > n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return len;
}

/* 1 when the n bytes at s are valid UTF-8 without NUL. */
static int utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, step = 1;

	while (i < n && step > 0) {
		step = utf8_seq(p + i, n - i);
		i += step;
	}
	return i == n && step > 0;
}

/* Check one component [name, name+len) at position `first` (1 for the top). */
static int check_component(const char *name, size_t len, int first)
{
	int rc = 0;

	if (len == 0 || (len == 1 && name[0] == '.') ||
	    (len == 2 && name[0] == '.' && name[1] == '.'))
		rc = -EINVAL;
	else if (len > LAMFS_NAME_MAX)
		rc = -ENAMETOOLONG;
	else if (memchr(name, '/', len) || memchr(name, '\0', len))
		rc = -EINVAL;
	else if (!utf8_valid(name, len))
		rc = -EILSEQ;
	else if (len == sizeof(LAMFS_STORAGE_DIR) - 1 &&
		 memcmp(name, LAMFS_STORAGE_DIR, len) == 0)
		rc = -EPERM;
	else if (first && len == 6 && memcmp(name, ".lamfs", 6) == 0)
		rc = -EPERM;
	return rc;
}

int key_check(const char *key)
{
	size_t klen = key ? strlen(key) : 0;
	const char *p = key;
	int first = 1;
	int rc = 0;

	if (klen == 0) {
		rc = -EINVAL;
		goto out;
	}
	if (klen > LAMFS_KEY_MAX) {
		rc = -ENAMETOOLONG;
		goto out;
	}
	/* Components are checked in order, so "a//b" is -EINVAL even when a
	 * later component would also be too long. */
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		rc = check_component(p, len, first);
		if (rc < 0 || !slash)
			break;
		p = slash + 1;
		first = 0;
	}
out:
	return rc;
}

int key_check_name(const char *name)
{
	int rc = -EINVAL;

	if (name)
		rc = check_component(name, strlen(name), 0);
	return rc;
}

int key_hidden(const char *key)
{
	const char *p = key;
	int first = 1;
	int hidden = 0;

	while (p && !hidden) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (len == sizeof(LAMFS_STORAGE_DIR) - 1 &&
		    memcmp(p, LAMFS_STORAGE_DIR, len) == 0)
			hidden = 1;
		if (first && len == 6 && memcmp(p, ".lamfs", 6) == 0)
			hidden = 1;
		p = slash ? slash + 1 : NULL;
		first = 0;
	}
	return hidden;
}

/* LaminDB's known suffixes (lamindb's extract_suffix_from_path keeps two
 * suffixes only when they, or the first of them, are known). */
static const char *const known_suffixes[] = {
	".csv", ".tsv", ".txt", ".json", ".parquet", ".fasta", ".fa", ".fastq",
	".fq", ".h5ad", ".h5mu", ".h5", ".zarr", ".anndata.zarr",
	".spatialdata.zarr", ".tar", ".gz", ".zip", ".bam", ".sam", ".vcf",
	".bed", ".gff", ".gtf", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".pdf",
	".html", ".md", ".yaml", ".yml", ".xml", ".npy", ".npz", ".pt", ".pkl",
	".ipynb", ".py", ".R", ".tar.gz", ".vitessce.json", ".tiledbsoma",
	".mtx", ".loom", ".rds", ".svg", ".xlsx", ".feather",
};

static int suffix_known(const char *s, size_t len)
{
	size_t i;
	int known = 0;

	for (i = 0; !known && i < sizeof(known_suffixes) / sizeof(known_suffixes[0]); i++)
		known = strlen(known_suffixes[i]) == len &&
			memcmp(known_suffixes[i], s, len) == 0;
	return known;
}

/* Start of the longest known composite suffix (".anndata.zarr", ".tar.gz")
 * that [all, end) ends with, or NULL. */
static const char *suffix_composite(const char *all, const char *end)
{
	const char *best = NULL;
	size_t i;

	for (i = 0; i < sizeof(known_suffixes) / sizeof(known_suffixes[0]); i++) {
		const char *k = known_suffixes[i];
		size_t klen = strlen(k);

		if (!strchr(k + 1, '.') || klen > (size_t)(end - all))
			continue;
		if (memcmp(end - klen, k, klen) == 0 && (!best || end - klen < best))
			best = end - klen;
	}
	return best;
}

/* 1 when [s, s+len) is '.' followed by digits only (".1", ".003"). */
static int suffix_digits(const char *s, size_t len)
{
	size_t i = 1;

	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	return len > 1 && i == len;
}

/* 1 when the suffix is safe in a storage name: short, [A-Za-z0-9._-] only. */
static int suffix_safe(const char *s, size_t len)
{
	size_t i;
	int ok = len <= LAMFS_SUFFIX_MAX;

	for (i = 0; ok && i < len; i++) {
		char c = s[i];

		ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		     (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
	}
	return ok;
}

/*
 * Python's PurePath.suffixes of the name: the name loses its leading dots
 * (a dot-file has no suffix), a name ending in '.' has none, and the rest is
 * split at each '.'.  Sets *first to the start of the first suffix in name
 * and fills starts[] with up to `max` suffix starts counted from the end
 * (starts[0] the last suffix).  Returns how many suffixes there are.
 */
static size_t path_suffixes(const char *name, const char **starts, size_t max)
{
	size_t len = strlen(name);
	const char *stem = name;
	const char *p;
	size_t n = 0;

	if (len == 0 || name[len - 1] == '.')
		goto out;
	while (*stem == '.')
		stem++;
	for (p = name + len - 1; p > stem; p--) {
		if (*p != '.')
			continue;
		if (n < max)
			starts[n] = p;
		n++;
	}
out:
	return n;
}

void key_suffix(const char *key, char out[LAMFS_SUFFIX_MAX + 1])
{
	const char *slash = strrchr(key, '/');
	const char *name = slash ? slash + 1 : key;
	const char *end = name + strlen(name);
	const char *starts[2] = { NULL, NULL };
	const char *pick = NULL;
	const char *all = NULL;   /* start of all suffixes joined */
	size_t n = path_suffixes(name, starts, 2);

	out[0] = '\0';
	if (n == 0)
		goto out;
	pick = starts[0];
	if (n > 1) {
		/* The joined suffixes start at the first '.' after the stem. */
		const char *stem = name;

		while (*stem == '.')
			stem++;
		all = strchr(stem, '.');
		if (suffix_known(all, (size_t)(end - all)))
			pick = all;
		else if (suffix_composite(all, end))
			pick = suffix_composite(all, end);
		else if (suffix_known(starts[1], (size_t)(starts[0] - starts[1])))
			pick = starts[1];
	}
	if (suffix_digits(pick, (size_t)(end - pick)) ||
	    !suffix_safe(pick, (size_t)(end - pick)))
		goto out;
	memcpy(out, pick, (size_t)(end - pick));
	out[end - pick] = '\0';
out:
	return;
}

const char *key_split(const char *key, char *parent)
{
	const char *slash = strrchr(key, '/');
	const char *name = key;
	size_t plen = 0;

	if (slash) {
		plen = (size_t)(slash - key);
		if (plen > LAMFS_KEY_MAX)
			plen = LAMFS_KEY_MAX;
		name = slash + 1;
	}
	memcpy(parent, key, plen);
	parent[plen] = '\0';
	return name;
}

void key_object(const char *uid, const char *suffix, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/%s%s", LAMFS_STORAGE_DIR, uid, suffix ? suffix : "");
}

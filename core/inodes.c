/*
 * inodes.c — the inode table (contract in inodes.h): two chained hash tables
 * over one set of inodes, by node id and by identity (a folder's parent and
 * name, a version's kind and record id).
 */
#include "inodes.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct ino {
	uint64_t id;
	uint64_t nlookup;
	uint64_t st_ino;
	int64_t rec_id;
	uint32_t opens;
	uint32_t children;           /* inodes whose parent this is */
	enum core_inode_kind kind;
	struct ino *parent;          /* NULL for the root */
	struct ino *by_id;           /* chain of ids[] */
	struct ino *by_ident;        /* chain of idents[] (not for stages) */
	char *name;                  /* in parent; "" for the root */
};

struct core_inodes {
	pthread_mutex_t lock;
	struct ino **ids, **idents;  /* nbuckets each */
	size_t nbuckets, n;
	uint64_t next_id;
};

static uint64_t fnv(uint64_t h, const void *p, size_t len)
{
	const unsigned char *s = p;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

#define FNV0 14695981039346656037ULL

/* Identity hash: a folder by (parent, name), a version by (kind, rec_id). */
static uint64_t ident_hash(enum core_inode_kind kind, uint64_t parent, const char *name,
			   int64_t rec_id)
{
	uint64_t h = fnv(FNV0, &kind, sizeof(kind));

	if (kind == CORE_INO_FOLDER)
		return fnv(fnv(h, &parent, sizeof(parent)), name, strlen(name));
	return fnv(h, &rec_id, sizeof(rec_id));
}

static uint64_t ino_ident(const struct ino *i)
{
	return ident_hash(i->kind, i->parent ? i->parent->id : 0, i->name, i->rec_id);
}

uint64_t core_st_ino_stem(const char *uid)
{
	return fnv(FNV0, uid, LAMFS_STEM_LEN) >> 1;
}

uint64_t core_st_ino_uid(const char *uid)
{
	return (fnv(FNV0, uid, strlen(uid)) >> 1) | (1ULL << 63);
}

uint64_t core_st_ino_folder(const char *key)
{
	/* a different seed from the stems', so a folder named like a stem
	 * does not collide by construction */
	return fnv(fnv(FNV0, "/", 1), key, strlen(key)) >> 1;
}

static void link_id(struct core_inodes *t, struct ino *i)
{
	size_t b = i->id % t->nbuckets;

	i->by_id = t->ids[b];
	t->ids[b] = i;
}

static void link_ident(struct core_inodes *t, struct ino *i)
{
	size_t b;

	if (i->kind == CORE_INO_STAGE)
		return;
	b = ino_ident(i) % t->nbuckets;
	i->by_ident = t->idents[b];
	t->idents[b] = i;
}

static void unlink_from(struct ino **head, struct ino *i, int ident)
{
	struct ino **p = head;

	while (*p && *p != i)
		p = ident ? &(*p)->by_ident : &(*p)->by_id;
	if (*p)
		*p = ident ? i->by_ident : i->by_id;
}

static void unlink_ident(struct core_inodes *t, struct ino *i)
{
	if (i->kind != CORE_INO_STAGE)
		unlink_from(&t->idents[ino_ident(i) % t->nbuckets], i, 1);
}

/* Double the buckets when the table is fuller than one inode per bucket. */
static int grow(struct core_inodes *t)
{
	struct ino **old_ids = t->ids, **ids, **idents, *i, *next;
	size_t old = t->nbuckets, b;

	if (t->n < old)
		return 0;
	ids = calloc(2 * old, sizeof(*ids));
	idents = calloc(2 * old, sizeof(*idents));
	if (!ids || !idents) {
		free(ids);
		free(idents);
		return -ENOMEM;
	}
	free(t->idents);
	t->ids = ids;
	t->idents = idents;
	t->nbuckets = 2 * old;
	for (b = 0; b < old; b++) {
		for (i = old_ids[b]; i; i = next) {
			next = i->by_id;
			link_id(t, i);
			link_ident(t, i);
		}
	}
	free(old_ids);
	return 0;
}

static struct ino *find_id(struct core_inodes *t, uint64_t id)
{
	struct ino *i = t->ids[id % t->nbuckets];

	while (i && i->id != id)
		i = i->by_id;
	return i;
}

static struct ino *find_ident(struct core_inodes *t, enum core_inode_kind kind,
			      struct ino *parent, const char *name, int64_t rec_id)
{
	uint64_t h = ident_hash(kind, parent->id, name, rec_id);
	struct ino *i = t->idents[h % t->nbuckets];

	for (; i; i = i->by_ident) {
		if (i->kind != kind)
			continue;
		if (kind == CORE_INO_FOLDER ? (i->parent == parent && !strcmp(i->name, name))
					    : i->rec_id == rec_id)
			return i;
	}
	return NULL;
}

int core_inodes_new(struct core_inodes **out)
{
	struct core_inodes *t = calloc(1, sizeof(*t));
	struct ino *root = calloc(1, sizeof(*root));
	int rc = -ENOMEM;

	*out = NULL;
	if (!t || !root)
		goto out;
	t->nbuckets = 1024;
	t->ids = calloc(t->nbuckets, sizeof(*t->ids));
	t->idents = calloc(t->nbuckets, sizeof(*t->idents));
	root->name = strdup("");
	if (!t->ids || !t->idents || !root->name)
		goto out;
	pthread_mutex_init(&t->lock, NULL);
	root->id = CORE_ROOT_INO;
	root->kind = CORE_INO_FOLDER;
	root->st_ino = core_st_ino_folder("");
	root->nlookup = 1;           /* the kernel never forgets the root */
	link_id(t, root);
	t->n = 1;
	t->next_id = CORE_ROOT_INO + 1;
	*out = t;
	root = NULL;
	t = NULL;
	rc = 0;
out:
	if (root)
		free(root->name);
	free(root);
	if (t) {
		free(t->ids);
		free(t->idents);
	}
	free(t);
	return rc;
}

void core_inodes_free(struct core_inodes *t)
{
	struct ino *i, *next;
	size_t b;

	if (!t)
		return;
	for (b = 0; b < t->nbuckets; b++)
		for (i = t->ids[b]; i; i = next) {
			next = i->by_id;
			free(i->name);
			free(i);
		}
	free(t->ids);
	free(t->idents);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

static void info_of(const struct ino *i, struct core_inode_info *out)
{
	out->ino = i->id;
	out->kind = i->kind;
	out->rec_id = i->rec_id;
	out->st_ino = i->st_ino;
}

/* Build the key of i into key; caller holds the lock. */
static int key_of(const struct ino *i, char *key)
{
	const struct ino *p;
	size_t len = 0, n;

	for (p = i; p->parent; p = p->parent)
		len += strlen(p->name) + (p->parent->parent ? 1 : 0);
	if (len > LAMFS_KEY_MAX)
		return -ENAMETOOLONG;
	key[len] = '\0';
	for (p = i; p->parent; p = p->parent) {
		n = strlen(p->name);
		len -= n;
		memcpy(key + len, p->name, n);
		if (p->parent->parent)
			key[--len] = '/';
	}
	return 0;
}

static uint64_t st_ino_for(const struct ino *i, const char *uid)
{
	char key[LAMFS_KEY_MAX + 1];

	switch (i->kind) {
	case CORE_INO_UID_VERSION:
		return core_st_ino_uid(uid);
	case CORE_INO_FOLDER:
		return key_of(i, key) == 0 ? core_st_ino_folder(key) : i->id;
	default:
		return core_st_ino_stem(uid);
	}
}

/* A new inode named name in parent; caller holds the lock. */
static int ino_new(struct core_inodes *t, struct ino *parent, const char *name,
		   enum core_inode_kind kind, int64_t rec_id, const char *uid, struct ino **out)
{
	struct ino *i;

	if (grow(t) < 0 || !(i = calloc(1, sizeof(*i))))
		return -ENOMEM;
	i->name = strdup(name);
	if (!i->name) {
		free(i);
		return -ENOMEM;
	}
	i->id = t->next_id++;
	i->kind = kind;
	i->rec_id = rec_id;
	i->parent = parent;
	parent->children++;
	i->st_ino = st_ino_for(i, uid);
	link_id(t, i);
	link_ident(t, i);
	t->n++;
	*out = i;
	return 0;
}

/* Rename i to (parent, name); caller holds the lock. */
static int ino_move(struct core_inodes *t, struct ino *i, struct ino *parent, const char *name)
{
	char *copy = strdup(name);

	if (!copy)
		return -ENOMEM;
	unlink_ident(t, i);
	free(i->name);
	i->name = copy;
	i->parent->children--;
	i->parent = parent;
	parent->children++;
	link_ident(t, i);
	return 0;
}

static int kind_ok(enum core_inode_kind kind, const char *name, const char *uid)
{
	if (!name || !*name || strchr(name, '/'))
		return 0;
	if (kind == CORE_INO_FOLDER)
		return 1;
	return (kind == CORE_INO_VERSION || kind == CORE_INO_UID_VERSION ||
		kind == CORE_INO_STAGE) && uid && strlen(uid) >= LAMFS_STEM_LEN;
}

int core_inode_found(struct core_inodes *t, uint64_t parent, const char *name,
		     enum core_inode_kind kind, int64_t rec_id, const char *uid,
		     struct core_inode_info *out)
{
	struct ino *p, *i = NULL;
	int rc = 0;

	if (!kind_ok(kind, name, uid))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	p = find_id(t, parent);
	if (!p || p->kind != CORE_INO_FOLDER) {
		rc = -ENOENT;
		goto out;
	}
	if (kind != CORE_INO_STAGE)
		i = find_ident(t, kind, p, name, rec_id);
	if (i && kind != CORE_INO_FOLDER && (i->parent != p || strcmp(i->name, name)))
		rc = ino_move(t, i, p, name); /* renamed since */
	if (!i && rc == 0)
		rc = ino_new(t, p, name, kind, rec_id, uid, &i);
	if (rc == 0) {
		i->nlookup++;
		info_of(i, out);
	}
out:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Free i when nothing holds it any more; caller holds the lock. */
static void ino_maybe_free(struct core_inodes *t, struct ino *i)
{
	if (i->nlookup || i->opens || i->children || !i->parent)
		return;
	unlink_ident(t, i);
	unlink_from(&t->ids[i->id % t->nbuckets], i, 0);
	i->parent->children--;
	t->n--;
	/* a folder kept only by this child may go now */
	ino_maybe_free(t, i->parent);
	free(i->name);
	free(i);
}

int core_inode_forget(struct core_inodes *t, uint64_t ino, uint64_t n)
{
	struct ino *i;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	i = find_id(t, ino);
	if (!i) {
		rc = -ENOENT;
	} else if (i->parent) {
		i->nlookup = n > i->nlookup ? 0 : i->nlookup - n;
		ino_maybe_free(t, i);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int core_inode_open(struct core_inodes *t, uint64_t ino, int delta)
{
	struct ino *i;
	int rc = 0;

	pthread_mutex_lock(&t->lock);
	i = find_id(t, ino);
	if (!i || (delta < 0 && i->opens == 0)) {
		rc = i ? -EINVAL : -ENOENT;
	} else {
		i->opens = (uint32_t)((int64_t)i->opens + delta);
		ino_maybe_free(t, i);
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int core_inode_get(struct core_inodes *t, uint64_t ino, struct core_inode_info *out)
{
	struct ino *i;

	pthread_mutex_lock(&t->lock);
	i = find_id(t, ino);
	if (i)
		info_of(i, out);
	pthread_mutex_unlock(&t->lock);
	return i ? 0 : -ENOENT;
}

int core_inode_key(struct core_inodes *t, uint64_t ino, char *key)
{
	struct ino *i;
	int rc;

	pthread_mutex_lock(&t->lock);
	i = find_id(t, ino);
	rc = i ? key_of(i, key) : -ENOENT;
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int core_inode_move(struct core_inodes *t, uint64_t ino, uint64_t parent, const char *name)
{
	struct ino *i, *p;
	int rc;

	if (!name || !*name || strchr(name, '/'))
		return -EINVAL;
	pthread_mutex_lock(&t->lock);
	i = find_id(t, ino);
	p = find_id(t, parent);
	if (!i || !p || !i->parent || p->kind != CORE_INO_FOLDER)
		rc = -ENOENT;
	else
		rc = ino_move(t, i, p, name);
	pthread_mutex_unlock(&t->lock);
	return rc;
}

size_t core_inodes_count(struct core_inodes *t)
{
	size_t n;

	pthread_mutex_lock(&t->lock);
	n = t->n;
	pthread_mutex_unlock(&t->lock);
	return n;
}

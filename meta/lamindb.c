/*
 * lamindb.c — readers of LaminDB's embedded schema files (lamindb.h).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "lamindb.h"

int lamindb_gunzip(const unsigned char *gz, size_t gzlen, unsigned char **out, size_t *len)
{
	z_stream z;
	unsigned char *buf = NULL, *nb;
	size_t cap = gzlen * 8 + 4096;
	int zrc = Z_OK, rc = 0;

	*out = NULL;
	*len = 0;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)   /* 16: a gzip header */
		return -ENOMEM;
	z.next_in = (unsigned char *)gz;
	z.avail_in = (uInt)gzlen;
	while (zrc != Z_STREAM_END) {
		nb = realloc(buf, cap + 1);
		if (!nb) {
			rc = -ENOMEM;
			goto out;
		}
		buf = nb;
		z.next_out = buf + z.total_out;
		z.avail_out = (uInt)(cap - z.total_out);
		zrc = inflate(&z, Z_NO_FLUSH);
		if (zrc != Z_OK && zrc != Z_STREAM_END) {
			rc = zrc == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
			goto out;
		}
		if (zrc == Z_OK && z.avail_out != 0 && z.avail_in == 0) {
			rc = -EBADMSG;   /* cut short */
			goto out;
		}
		if (z.avail_out == 0)
			cap *= 2;
	}
	buf[z.total_out] = '\0';
	*len = z.total_out;
	*out = buf;
	buf = NULL;
out:
	inflateEnd(&z);
	free(buf);
	return rc;
}

/* ---- pg_dump scripts ---- */

void lamindb_script_init(struct lamindb_script *s, const char *text, size_t len)
{
	s->p = text;
	s->end = text + len;
	s->in_copy = 0;
}

/* The next line (without its newline) as [*b, *e); 0 at the end. */
static int next_line(struct lamindb_script *s, const char **b, const char **e)
{
	const char *nl;

	if (s->p >= s->end)
		return 0;
	nl = memchr(s->p, '\n', (size_t)(s->end - s->p));
	*b = s->p;
	*e = nl ? nl : s->end;
	s->p = nl ? nl + 1 : s->end;
	return 1;
}

static int starts(const char *b, const char *e, const char *word)
{
	size_t n = strlen(word);

	return (size_t)(e - b) >= n && memcmp(b, word, n) == 0;
}

/* Dollar-quote markers in a line: an odd count toggles "inside a body". */
static int dollar_marks(const char *b, const char *e)
{
	int n = 0;

	for (; b + 1 < e; b++)
		if (b[0] == '$' && b[1] == '$') {
			n++;
			b++;
		}
	return n;
}

/* Copy [b, e) with "public." and "\"public\"." qualifications replaced. */
static char *requalify(const char *b, const char *e, const char *schema)
{
	static const char *const pats[] = { "\"public\".", "public." };
	size_t slen = strlen(schema), cap = (size_t)(e - b) * (slen + 2) / 7 + (size_t)(e - b) + 1;
	char *out = malloc(cap), *o = out;
	size_t i, n;

	if (!out)
		return NULL;
	while (b < e) {
		for (i = 0; i < 2; i++) {
			n = strlen(pats[i]);
			if ((size_t)(e - b) >= n && memcmp(b, pats[i], n) == 0 &&
			    (o == out || !(isalnum((unsigned char)o[-1]) || o[-1] == '_')))
				break;
		}
		if (i < 2) {
			memcpy(o, schema, slen);
			o += slen;
			*o++ = '.';
			b += n;
		} else {
			*o++ = *b++;
		}
	}
	*o = '\0';
	return out;
}

int lamindb_script_next(struct lamindb_script *s, const char *schema, char **out)
{
	const char *b, *e, *first = NULL, *last = NULL;
	int inside = 0, rc = LAMINDB_END;

	*out = NULL;
	while (next_line(s, &b, &e)) {
		if (s->in_copy) {
			if (e - b == 2 && b[0] == '\\' && b[1] == '.') {
				s->in_copy = 0;
				continue;
			}
			*out = strndup(b, (size_t)(e - b));
			rc = *out ? LAMINDB_COPY_ROW : -ENOMEM;
			goto out;
		}
		if (!first && (b == e || starts(b, e, "--") || b[0] == '\\'))
			continue;   /* blank, comment or psql meta-command between statements */
		if (!first)
			first = b;
		last = e;
		if (dollar_marks(b, e) % 2)
			inside = !inside;
		while (e > b && isspace((unsigned char)e[-1]))
			e--;
		if (inside || e == b || e[-1] != ';')
			continue;
		if (starts(first, last, "SET ") ||
		    starts(first, last, "SELECT pg_catalog.set_config(")) {
			first = NULL;   /* a session setting: not for the caller's connection */
			continue;
		}
		if (starts(first, last, "COPY ") && last - first > 12 &&
		    memcmp(e - 12, " FROM stdin;", 12) == 0)
			s->in_copy = 1;
		*out = requalify(first, last, schema);
		rc = *out ? LAMINDB_SQL : -ENOMEM;
		goto out;
	}
out:
	return rc;
}

int lamindb_copy_header(const char *sql, char *table, size_t tsize, char *cols, size_t csize)
{
	const char *t, *dot, *open, *close;
	size_t tn, cn;

	if (strncmp(sql, "COPY ", 5) != 0)
		return -EINVAL;
	t = sql + 5;
	open = strchr(t, '(');
	close = open ? strchr(open, ')') : NULL;
	if (!close)
		return -EINVAL;
	dot = memchr(t, '.', (size_t)(open - t));
	if (dot)
		t = dot + 1;
	tn = (size_t)(open - t);
	while (tn && t[tn - 1] == ' ')
		tn--;
	cn = (size_t)(close - open - 1);
	if (tn == 0 || tn >= tsize || cn == 0 || cn >= csize)
		return -EINVAL;
	memcpy(table, t, tn);
	table[tn] = '\0';
	memcpy(cols, open + 1, cn);
	cols[cn] = '\0';
	return 0;
}

/* ---- the supported migration ---- */

static char supported[LAMINDB_MIGRATION_MAX + 1];
static pthread_once_t supported_once = PTHREAD_ONCE_INIT;

/* a before b in LAMINDB_NEWEST_SQL's order (newest first)? */
static int newer(const char *a, long aid, const char *b, long bid)
{
	int c = strncmp(a, b, 4);

	if (c != 0)
		return c > 0;
	c = (strstr(a, "squashed") != NULL) - (strstr(b, "squashed") != NULL);
	if (c != 0)
		return c < 0;
	return aid > bid;
}

/* Read django_migrations' rows (id, app, name, applied) of the seed file. */
static void supported_init(void)
{
	struct lamindb_script s;
	char table[64], cols[256], app[64], name[LAMINDB_MIGRATION_MAX + 1];
	char *piece = NULL;
	long id, best_id = -1;
	int kind, in_migrations = 0;

	lamindb_script_init(&s, (const char *)lamindb_pg_seed, lamindb_pg_seed_len);
	while ((kind = lamindb_script_next(&s, "public", &piece)) > 0) {
		if (kind == LAMINDB_SQL)
			in_migrations = lamindb_copy_header(piece, table, sizeof(table), cols,
							    sizeof(cols)) == 0 &&
					strcmp(table, "django_migrations") == 0;
		else if (in_migrations &&
			 sscanf(piece, "%ld\t%63[^\t]\t%127[^\t]", &id, app, name) == 3 &&
			 strcmp(app, "lamindb") == 0 &&
			 (best_id < 0 || newer(name, id, supported, best_id))) {
			snprintf(supported, sizeof(supported), "%s", name);
			best_id = id;
		}
		free(piece);
		piece = NULL;
	}
}

const char *lamindb_supported_migration(void)
{
	pthread_once(&supported_once, supported_init);
	return supported;
}

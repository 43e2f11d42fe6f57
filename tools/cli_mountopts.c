/*
 * cli_mountopts.c — which mount options lamfs accepts, and what the daemon
 * gets of them.  One table for `lamfs mount -o`, mount.lamfs (fstab type
 * lamfs) and the `lamfs SOURCE MOUNTPOINT -o ...` form mount.fuse3 runs
 * (fstab type fuse.lamfs), so all three accept the same set.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fs.h"

enum opt_action {
	OPT_DROP,       /* meaningful to mount(8)/systemd, or the default anyway */
	OPT_PASS,       /* handed to the daemon as is */
	OPT_RO,
	OPT_RW,
};

struct opt_rule {
	const char *name;
	int prefix;             /* name is a prefix ("x-", "comment=") */
	enum opt_action action;
};

static const struct opt_rule rules[] = {
	/* for mount(8), fstab and systemd; nothing for the daemon to do */
	{ "defaults", 0, OPT_DROP },
	{ "auto", 0, OPT_DROP },
	{ "noauto", 0, OPT_DROP },
	{ "user", 0, OPT_DROP },
	{ "user=", 1, OPT_DROP },
	{ "users", 0, OPT_DROP },
	{ "nouser", 0, OPT_DROP },
	{ "owner", 0, OPT_DROP },
	{ "group", 0, OPT_DROP },
	{ "_netdev", 0, OPT_DROP },
	{ "nofail", 0, OPT_DROP },
	{ "x-", 1, OPT_DROP },
	{ "comment=", 1, OPT_DROP },
	/* defaults (libfuse mounts nodev,nosuid unless told otherwise, and
	 * artifacts have no devices nor set-id programs: we keep it so) */
	{ "dev", 0, OPT_DROP },
	{ "suid", 0, OPT_DROP },
	{ "exec", 0, OPT_DROP },
	{ "async", 0, OPT_DROP },
	/* access times are not stored */
	{ "atime", 0, OPT_DROP },
	{ "noatime", 0, OPT_DROP },
	{ "relatime", 0, OPT_DROP },
	{ "norelatime", 0, OPT_DROP },
	{ "strictatime", 0, OPT_DROP },
	{ "nostrictatime", 0, OPT_DROP },
	{ "diratime", 0, OPT_DROP },
	{ "nodiratime", 0, OPT_DROP },
	{ "lazytime", 0, OPT_DROP },
	{ "nolazytime", 0, OPT_DROP },
	{ "default_permissions", 0, OPT_DROP },  /* always on */
	/* read-only or not: the last one wins, as in mount(8) */
	{ "rw", 0, OPT_RW },
	{ "ro", 0, OPT_RO },
	/* restrictions the kernel enforces: honoured */
	{ "nodev", 0, OPT_PASS },
	{ "nosuid", 0, OPT_PASS },
	{ "noexec", 0, OPT_PASS },
	/* FUSE */
	{ "allow_other", 0, OPT_PASS },
	{ "allow_root", 0, OPT_PASS },
	/* lamfs */
	{ "writeback", 0, OPT_PASS },
	{ "cache_timeout=", 1, OPT_PASS },      /* checked below; the last one wins */
};

static const struct opt_rule *rule_of(const char *opt)
{
	size_t i;

	for (i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct opt_rule *r = &rules[i];

		if (r->prefix ? !strncmp(opt, r->name, strlen(r->name)) : !strcmp(opt, r->name))
			return r;
	}
	return NULL;
}

/* user_allow_other set in /etc/fuse.conf (fusermount3's rule for non-root). */
static int fuse_conf_allows_other(void)
{
	char line[256];
	FILE *f = fopen("/etc/fuse.conf", "re");
	int ok = 0;

	while (f && fgets(line, sizeof(line), f)) {
		char *s = line, *e;

		while (*s == ' ' || *s == '\t')
			s++;
		e = s + strcspn(s, "#\n");
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (e - s == 15 && !strncmp(s, "user_allow_other", 15))
			ok = 1;
	}
	if (f)
		fclose(f);
	return ok;
}

/* Append opt to the output list unless it is there already. */
static void out_add(char *out, const char *opt)
{
	size_t n = strlen(opt);
	const char *p = out;

	while ((p = strstr(p, opt)) != NULL) {
		if ((p == out || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
			return;
		p += n;
	}
	if (out[0])
		strcat(out, ",");
	strcat(out, opt);
}

/* Check a cache_timeout= option; on error say why in msg (the value is shown
 * cut short and with anything unprintable as '?'). */
static int check_cache_timeout(const char *tok, char *msg, size_t msglen)
{
	const char *v = tok + strlen("cache_timeout=");
	char shown[41];
	double s;
	size_t i;

	if (fs_cache_timeout_parse(v, &s) == 0)
		return 0;
	for (i = 0; v[i] && i < sizeof(shown) - 1; i++)
		shown[i] = (v[i] >= 0x20 && v[i] < 0x7f) ? v[i] : '?';
	shown[i] = '\0';
	snprintf(msg, msglen, "invalid value '%s%s' for mount option 'cache_timeout' (seconds, "
		 "0 to %.0f)", shown, v[i] ? "..." : "", FS_CACHE_TIMEOUT_MAX);
	return -EINVAL;
}

int mountopts_filter(const char *in, unsigned flags, char **out, char *msg, size_t msglen)
{
	char *copy = NULL, *res = NULL, *tok, *save = NULL;
	const char *timeout = NULL;
	int ro = 0, other = 0, root = 0, rc = 0;
	size_t len = in ? strlen(in) : 0;

	*out = NULL;
	msg[0] = '\0';
	if (len > MOUNTOPTS_MAX) {
		snprintf(msg, msglen, "mount options too long (%zu bytes, at most %d)", len,
			 MOUNTOPTS_MAX);
		return -E2BIG;
	}
	copy = strdup(in ? in : "");
	res = calloc(1, len + 4);   /* the output is never longer than the input + "ro" */
	if (!copy || !res) {
		rc = -ENOMEM;
		snprintf(msg, msglen, "out of memory");
		goto out;
	}
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		const struct opt_rule *r = rule_of(tok);

		if (!r) {
			if (flags & MOUNTOPTS_SLOPPY) {
				fprintf(stderr, "lamfs: ignoring unknown mount option '%s' (sloppy "
					"mount)\n", tok);
				continue;
			}
			snprintf(msg, msglen, "unknown mount option '%s'", tok);
			rc = -EINVAL;
			goto out;
		}
		switch (r->action) {
		case OPT_DROP:
			break;
		case OPT_RO:
			ro = 1;
			break;
		case OPT_RW:
			ro = 0;
			break;
		case OPT_PASS:
			if (!strcmp(tok, "allow_other")) {
				other = 1;
			} else if (!strcmp(tok, "allow_root")) {
				root = 1;
			} else if (!strncmp(tok, "cache_timeout=", 14)) {
				rc = check_cache_timeout(tok, msg, msglen);
				if (rc < 0)
					goto out;
				timeout = tok;
			} else {
				out_add(res, tok);
			}
			break;
		}
	}
	if (other && root) {
		snprintf(msg, msglen, "mount options 'allow_other' and 'allow_root' exclude "
			 "each other");
		rc = -EINVAL;
		goto out;
	}
	if ((other || root) && geteuid() != 0 && !fuse_conf_allows_other()) {
		snprintf(msg, msglen, "option '%s' needs 'user_allow_other' in /etc/fuse.conf "
			 "(or mount as root)", other ? "allow_other" : "allow_root");
		rc = -EPERM;
		goto out;
	}
	/* A stable order: ro first, then FUSE's, then the restrictions and ours. */
	{
		char *tail = strdup(res);

		if (!tail) {
			rc = -ENOMEM;
			snprintf(msg, msglen, "out of memory");
			goto out;
		}
		res[0] = '\0';
		if (ro)
			out_add(res, "ro");
		if (other)
			out_add(res, "allow_other");
		if (root)
			out_add(res, "allow_root");
		if (tail[0])
			out_add(res, tail);
		if (timeout)
			out_add(res, timeout);
		free(tail);
	}
	*out = res;
	res = NULL;
out:
	free(copy);
	free(res);
	return rc;
}

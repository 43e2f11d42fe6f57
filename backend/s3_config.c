/*
 * s3_config.c — where the S3 backend's settings come from: opts, the AWS_*
 * environment, the AWS profile files (~/.aws/credentials, ~/.aws/config,
 * parsed with inih) and LAMFS_S3_* tuning variables.  The order is in s3.h.
 * Secrets are copied into the config, wiped when it is released, and never
 * logged or put into messages.
 */
#include <errno.h>
#include <ini.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "s3_int.h"

/* What one profile says, from both files. */
struct s3_profile_vals {
	const char *want;            /* profile name */
	const char *file;            /* for warnings */
	int config_file;             /* sections are "profile NAME" (except default) */
	char *access_key;
	char *secret_key;
	char *session_token;
	char *region;
	char *endpoint;
	char *ca_bundle;
	char *addressing;
	int oom;
};

static void s3_wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static void s3_profile_release(struct s3_profile_vals *p)
{
	s3_wipe_free(p->access_key);
	s3_wipe_free(p->secret_key);
	s3_wipe_free(p->session_token);
	free(p->region);
	free(p->endpoint);
	free(p->ca_bundle);
	free(p->addressing);
}

/* Set *dst to a copy of v unless already set (the first file read wins). */
static void s3_keep(struct s3_profile_vals *p, char **dst, const char *v)
{
	if (*dst || !v || !*v)
		return;
	*dst = strdup(v);
	if (!*dst)
		p->oom = 1;
}

/* Whether an ini section is the wanted profile in this kind of file. */
static int s3_section_is(const struct s3_profile_vals *p, const char *section)
{
	if (!p->config_file || strcmp(p->want, "default") == 0)
		if (strcmp(section, p->want) == 0)
			return 1;
	return p->config_file && strncmp(section, "profile ", 8) == 0 &&
	       strcmp(section + 8 + strspn(section + 8, " "), p->want) == 0;
}

/* inih handler; "s3 =" followed by indented "addressing_style = x" arrives as
 * name "s3" with the continuation line as its value. */
static int s3_ini_handler(void *user, const char *section, const char *name, const char *value)
{
	struct s3_profile_vals *p = user;
	const char *eq;

	if (!s3_section_is(p, section))
		return 1;
	if (strcmp(name, "aws_access_key_id") == 0) {
		s3_keep(p, &p->access_key, value);
	} else if (strcmp(name, "aws_secret_access_key") == 0) {
		s3_keep(p, &p->secret_key, value);
	} else if (strcmp(name, "aws_session_token") == 0) {
		s3_keep(p, &p->session_token, value);
	} else if (strcmp(name, "region") == 0) {
		s3_keep(p, &p->region, value);
	} else if (strcmp(name, "endpoint_url") == 0) {
		s3_keep(p, &p->endpoint, value);
	} else if (strcmp(name, "ca_bundle") == 0) {
		s3_keep(p, &p->ca_bundle, value);
	} else if (strcmp(name, "s3") == 0 && strncmp(value, "addressing_style", 16) == 0) {
		eq = strchr(value, '=');
		if (eq)
			s3_keep(p, &p->addressing, eq + 1 + strspn(eq + 1, " \t"));
	}
	return 1;
}

/* "$HOME/.aws/<name>" or the path in env var `var`; malloc'd or NULL. */
static char *s3_aws_file(const char *var, const char *name)
{
	const char *env = getenv(var);
	const char *home = getenv("HOME");
	struct passwd *pw;
	char *path = NULL;

	if (env && *env)
		return strdup(env);
	if (!home || !*home) {
		pw = getpwuid(getuid());
		home = pw ? pw->pw_dir : NULL;
	}
	if (home && asprintf(&path, "%s/.aws/%s", home, name) < 0)
		path = NULL;
	return path;
}

/* Read one profile file into p; a missing file is not an error. */
static int s3_read_file(struct s3_profile_vals *p, const char *var, const char *name,
			int config_file)
{
	char *path = s3_aws_file(var, name);
	int rc = 0, prc;

	if (!path)
		goto out;
	p->file = path;
	p->config_file = config_file;
	prc = ini_parse(path, s3_ini_handler, p);
	if (prc > 0)
		log_warn("s3: %s: cannot parse line %d; ignoring that line", path, prc);
	if (p->oom)
		rc = -ENOMEM;
out:
	p->file = NULL;
	free(path);
	return rc;
}

static const char *s3_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* First non-NULL of a, b, c, d duplicated into *dst; 0 or -ENOMEM. */
static int s3_pick(char **dst, const char *a, const char *b, const char *c, const char *d)
{
	const char *v = a ? a : b ? b : c ? c : d;

	*dst = v ? strdup(v) : NULL;
	return (v && !*dst) ? -ENOMEM : 0;
}

/* A size with an optional K/M/G suffix (powers of 1024); 0 on success. */
static int s3_parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	default: break;
	}
	if ((*end == 'i' || *end == 'B') && shift)
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end || v > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)v << shift;
	return 0;
}

/* The value of env var `name` within [min, max], or def; a bad value is
 * reported and ignored.  *set says whether the variable was used. */
static uint64_t s3_env_size(const char *name, uint64_t def, uint64_t min, uint64_t max, int *set)
{
	const char *v = s3_env(name);
	uint64_t x = def;

	if (set)
		*set = 0;
	if (!v)
		goto out;
	if (s3_parse_size(v, &x) || x < min || x > max) {
		log_warn("s3: ignoring %s=%s (allowed: %llu..%llu)", name, v,
			 (unsigned long long)min, (unsigned long long)max);
		x = def;
		goto out;
	}
	if (set)
		*set = 1;
out:
	return x;
}

static void s3_tunables_load(struct s3_tunables *t)
{
	t->multipart_threshold = s3_env_size("LAMFS_S3_MULTIPART_THRESHOLD", 8ull << 20, 1,
					     S3_MAX_OBJECT, NULL);
	/* Below S3_MIN_PART only on purpose (test servers with a lower minimum). */
	t->part_size = s3_env_size("LAMFS_S3_PART_SIZE", 8ull << 20, 4096, 5ull << 30,
				   &t->part_size_from_env);
	t->parallel = (unsigned)s3_env_size("LAMFS_S3_PARALLEL", 4, 1, 16, NULL);
	t->attempts = (unsigned)s3_env_size("LAMFS_S3_ATTEMPTS", 5, 1, 20, NULL);
	t->retry_base_ms = (unsigned)s3_env_size("LAMFS_S3_RETRY_BASE_MS", 200, 1, 60000, NULL);
	t->connect_timeout_s = (long)s3_env_size("LAMFS_S3_CONNECT_TIMEOUT", 10, 1, 600, NULL);
	t->stall_timeout_s = (long)s3_env_size("LAMFS_S3_STALL_TIMEOUT", 30, 1, 3600, NULL);
	t->readahead_max = (size_t)s3_env_size("LAMFS_S3_READAHEAD", 8u << 20, 64u << 10,
					       256u << 20, NULL);
	t->read_parallel = (unsigned)s3_env_size("LAMFS_S3_READ_PARALLEL", 2, 1,
						 S3_READ_PARALLEL_MAX, NULL);
}

static int s3_addressing_parse(const char *v, int *out)
{
	int rc = 0;

	if (!v || strcmp(v, "auto") == 0)
		*out = S3_ADDR_AUTO;
	else if (strcmp(v, "path") == 0)
		*out = S3_ADDR_PATH;
	else if (strcmp(v, "virtual") == 0)
		*out = S3_ADDR_VIRTUAL;
	else
		rc = -EINVAL;
	return rc;
}

/* Credentials: the environment unless a profile was named in opts, else the
 * profile.  A half-set pair is an error rather than a silent fallback. */
static int s3_creds_pick(struct s3_config *cfg, const struct s3_profile_vals *p,
			 int explicit_profile, char **errmsg)
{
	int rc = 0;
	const char *ak = s3_env("AWS_ACCESS_KEY_ID");
	const char *sk = s3_env("AWS_SECRET_ACCESS_KEY");
	const char *tok = s3_env("AWS_SESSION_TOKEN");

	if (explicit_profile || (!ak && !sk)) {
		ak = p->access_key;
		sk = p->secret_key;
		tok = p->session_token;
	}
	if (!ak || !sk) {
		rc = -EACCES;
		backend_set_errmsg(errmsg, "no S3 credentials: set AWS_ACCESS_KEY_ID and "
				   "AWS_SECRET_ACCESS_KEY, or add aws_access_key_id and "
				   "aws_secret_access_key to profile '%s' in ~/.aws/credentials",
				   cfg->profile);
		goto out;
	}
	rc = s3_pick(&cfg->access_key, ak, NULL, NULL, NULL);
	if (rc == 0)
		rc = s3_pick(&cfg->secret_key, sk, NULL, NULL, NULL);
	if (rc == 0)
		rc = s3_pick(&cfg->session_token, tok, NULL, NULL, NULL);
out:
	return rc;
}

int s3_config_load(const struct backend_opts *opts, struct s3_config *cfg, char **errmsg)
{
	static const struct backend_opts none;
	struct s3_profile_vals p = { 0 };
	const char *addr;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (!opts)
		opts = &none;
	rc = s3_pick(&cfg->profile, opts->s3_profile, s3_env("AWS_PROFILE"), "default", NULL);
	if (rc)
		goto out;
	p.want = cfg->profile;
	rc = s3_read_file(&p, "AWS_SHARED_CREDENTIALS_FILE", "credentials", 0);
	if (rc == 0)
		rc = s3_read_file(&p, "AWS_CONFIG_FILE", "config", 1);
	if (rc)
		goto out;
	rc = s3_creds_pick(cfg, &p, opts->s3_profile != NULL, errmsg);
	if (rc)
		goto out;
	rc = s3_pick(&cfg->region, opts->s3_region, s3_env("AWS_REGION"),
		     s3_env("AWS_DEFAULT_REGION"), p.region ? p.region : "us-east-1");
	if (rc == 0)
		rc = s3_pick(&cfg->endpoint, opts->s3_endpoint, s3_env("AWS_ENDPOINT_URL_S3"),
			     s3_env("AWS_ENDPOINT_URL"), p.endpoint);
	if (rc == 0)
		rc = s3_pick(&cfg->ca_bundle, s3_env("AWS_CA_BUNDLE"), p.ca_bundle, NULL, NULL);
	if (rc)
		goto out;
	addr = s3_env("LAMFS_S3_ADDRESSING") ? s3_env("LAMFS_S3_ADDRESSING") : p.addressing;
	if (s3_addressing_parse(addr, &cfg->addressing)) {
		rc = -EINVAL;
		backend_set_errmsg(errmsg, "S3 addressing style '%s' is not one of path, "
				   "virtual, auto", addr);
		goto out;
	}
	s3_tunables_load(&cfg->t);
out:
	if (rc == -ENOMEM)
		backend_set_errmsg(errmsg, "out of memory reading the S3 settings");
	s3_profile_release(&p);
	return rc;
}

void s3_config_release(struct s3_config *cfg)
{
	free(cfg->profile);
	s3_wipe_free(cfg->access_key);
	s3_wipe_free(cfg->secret_key);
	s3_wipe_free(cfg->session_token);
	free(cfg->region);
	free(cfg->endpoint);
	free(cfg->ca_bundle);
	memset(cfg, 0, sizeof(*cfg));
}

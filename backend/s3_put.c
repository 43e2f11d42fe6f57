/*
 * s3_put.c — storing a staging file as an S3 object.
 *
 * Below the multipart threshold: one PUT with Content-MD5 (the md5 the core
 * already computed) and x-amz-content-sha256 (its sha256), so the server
 * refuses a body that changed on the way.  Above it: a multipart upload whose
 * parts go out LAMFS_S3_PARALLEL at a time, each with its own sha256 in the
 * signature (x-amz-content-sha256: the server checks the body against it, so
 * a per-part Content-MD5 would only cost another, slower, pass over the
 * bytes), streamed from the staging fd with pread; any failure aborts the
 * upload, so no part is left behind (cleanup_incomplete catches a crash).
 * Both forms are atomic on S3: the key shows the old object or the new one.
 *
 * Memory bound per upload (whatever the object size): one S3_HASH_BUF (1 MiB)
 * per part in flight, i.e. LAMFS_S3_PARALLEL (default 4) MiB, plus
 * S3_ETAG_MAX (80) bytes per part for the ETags and the completion body
 * (about 90 bytes per part): under 2 MiB at the 10,000-part maximum.
 * Parts are hashed in a first pass and sent in a second (from the page
 * cache), rather than held in part-sized buffers that would grow with the
 * object (a 5 TiB object needs 525 MiB parts).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "fault.h"
#include "hash.h"
#include "log.h"
#include "s3_int.h"

int s3_hash_range(int fd, uint64_t off, uint64_t len, unsigned char *md5, char *sha256_hex)
{
	EVP_MD_CTX *m = md5 ? EVP_MD_CTX_new() : NULL, *h = EVP_MD_CTX_new();
	unsigned char *buf = malloc(S3_HASH_BUF), dig[32];
	uint64_t done = 0;
	ssize_t n;
	int rc = 0;

	if ((md5 && (!m || !EVP_DigestInit_ex(m, EVP_md5(), NULL))) || !h || !buf ||
	    !EVP_DigestInit_ex(h, EVP_sha256(), NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	while (done < len) {
		size_t want = len - done < S3_HASH_BUF ? (size_t)(len - done) : S3_HASH_BUF;

		n = pread(fd, buf, want, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;        /* 0: the file is shorter */
			goto out;
		}
		if (m)
			EVP_DigestUpdate(m, buf, (size_t)n);
		EVP_DigestUpdate(h, buf, (size_t)n);
		done += (uint64_t)n;
	}
	if (md5)
		EVP_DigestFinal_ex(m, md5, NULL);
	if (sha256_hex) {
		EVP_DigestFinal_ex(h, dig, NULL);
		hash_hex(dig, 32, sha256_hex);
	}
out:
	free(buf);
	EVP_MD_CTX_free(m);
	EVP_MD_CTX_free(h);
	return rc;
}

/* 64 lower-case hex digits. */
static int s3_is_sha256_hex(const char *s)
{
	size_t i;

	for (i = 0; s && i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s && s[64] == '\0';
}

static void s3_md5_b64(const unsigned char md5[16], char out[32])
{
	EVP_EncodeBlock((unsigned char *)out, md5, 16);
}

/* ---- single PUT ---- */

static int s3_put_single(struct s3 *s, const char *key, const struct backend_src *src)
{
	unsigned char md5[16];
	char md5b64[32], sha[65];
	struct s3_body bd = { .fd = src->fd, .off = 0, .len = src->size };
	struct sigv4_header h[1] = { { "Content-MD5", md5b64 } };
	struct s3_request rq = { .method = "PUT", .key = key, .headers = h, .nheaders = 1,
				 .body = &bd, .payload_sha256 = sha };
	struct s3_response rs;
	int rc = 0;

	if (src->md5 && s3_is_sha256_hex(src->sha256_hex)) {
		memcpy(md5, src->md5, 16);
		memcpy(sha, src->sha256_hex, 65);
	} else {
		rc = s3_hash_range(src->fd, 0, src->size, md5, sha);
		if (rc)
			goto out;
	}
	s3_md5_b64(md5, md5b64);
	rc = fault_check("backend.put.mid");
	if (rc == 0)
		rc = s3_perform(s, &rq, &rs);
out:
	return rc;
}

/* ---- multipart ---- */

struct s3_mpu {
	struct s3 *s;
	const char *key;
	char *upload_id;
	int fd;
	uint64_t size;
	uint64_t part_size;
	unsigned nparts;
	char (*etags)[S3_ETAG_MAX];   /* etags[i]: part i+1; each written by one worker */
	pthread_mutex_t lock;
	unsigned next;                /* next part index to send; guarded by lock */
	int rc;                       /* first failure; guarded by lock */
	int lost_ids;                 /* the create may have made uploads whose id we
				       * never learnt (retried, or an unreadable answer) */
};

/* Part size: the configured one (at least S3_MIN_PART unless a test set it),
 * grown to whole MiB so the object fits in S3_MAX_PARTS parts. */
static uint64_t s3_part_size(const struct s3_tunables *t, uint64_t size)
{
	uint64_t ps = t->part_size;
	uint64_t need = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;

	if (!t->part_size_from_env && ps < S3_MIN_PART)
		ps = S3_MIN_PART;
	if (ps < need)
		ps = (need + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1);
	return ps;
}

static int s3_mpu_create(struct s3_mpu *m)
{
	struct sigv4_param q[] = { { "uploads", NULL } };
	struct s3_buf xml = S3_BUF_INIT;
	struct s3_body none = { .mem = "", .fd = -1, .len = 0 };
	struct s3_request rq = { .method = "POST", .key = m->key, .query = q, .nquery = 1,
				 .body = &none, .payload_sha256 = SIGV4_EMPTY_SHA256,
				 .xml = &xml };
	struct s3_response rs;
	int rc;

	xml.limit = S3_XML_MAX;
	rc = s3_perform(m->s, &rq, &rs);
	/* every try that reached the server may have created an upload */
	m->lost_ids = rs.attempts > 1 || (rc && rs.status / 100 == 2);
	if (rc == 0) {
		rc = s3_xml_upload_id(xml.data, xml.len, &m->upload_id);
		if (rc) {
			log_err("s3: POST %s?uploads: no UploadId in the answer", m->key);
			rc = -EIO;
			m->lost_ids = 1;
		}
	}
	s3_buf_release(&xml);
	return rc;
}

struct s3_sweep {
	struct s3 *s;
	const char *key;
	const char *keep;             /* upload id not to abort, or NULL */
	unsigned n;
};

static int s3_sweep_one(void *ctx, const char *key, const char *upload_id)
{
	struct s3_sweep *w = ctx;

	if (strcmp(key, w->key) == 0 && (!w->keep || strcmp(upload_id, w->keep) != 0) &&
	    s3_abort_upload(w->s, key, upload_id) == 0)
		w->n++;
	return 0;
}

/*
 * Abort the other uploads of this object: those whose id was lost (a retried
 * create, or a 2xx answer we could not read), and, once the object is
 * complete, those an earlier attempt at the same save left open (a daemon
 * killed mid-upload, whose save a later mount resumed).  The object name
 * holds the save's uid, and a save is uploaded by one process at a time
 * (its staging file is locked), so every upload under it is this save's.
 * Best effort: what stays is logged, and cleanup_incomplete (lamfs-repair)
 * aborts it.
 */
static void s3_mpu_sweep(struct s3_mpu *m, const char *keep)
{
	struct sigv4_param q[] = { { "uploads", NULL }, { "prefix", m->key } };
	struct s3_buf xml = S3_BUF_INIT;
	struct s3_request rq = { .method = "GET", .query = q, .nquery = 2, .xml = &xml };
	struct s3_response rs;
	struct s3_xml_page page = { 0 };
	struct s3_sweep w = { m->s, m->key, keep, 0 };
	int rc;

	xml.limit = S3_XML_MAX;
	rc = s3_perform(m->s, &rq, &rs);
	if (rc == 0)
		rc = s3_xml_list_uploads(xml.data, xml.len, s3_sweep_one, &w, &page);
	s3_xml_page_release(&page);
	s3_buf_release(&xml);
	if (rc)
		log_err("s3: cannot list the multipart uploads of %s (%d); an upload whose id "
			"was lost may stay open: cleanup_incomplete will abort it", m->key, rc);
	else if (w.n)
		log_info("s3: aborted %u earlier multipart upload%s of %s", w.n,
			 w.n == 1 ? "" : "s", m->key);
}

/* Hash part i (sha256, signed), then send it; its ETag goes to m->etags[i]. */
static int s3_mpu_part(struct s3_mpu *m, unsigned i)
{
	uint64_t off = (uint64_t)i * m->part_size;
	uint64_t len = m->size - off < m->part_size ? m->size - off : m->part_size;
	char sha[65], num[16];
	struct sigv4_param q[] = { { "partNumber", num }, { "uploadId", m->upload_id } };
	struct s3_body bd = { .fd = m->fd, .off = off, .len = len };
	struct s3_request rq = { .method = "PUT", .key = m->key, .query = q, .nquery = 2,
				 .body = &bd, .payload_sha256 = sha };
	struct s3_response rs;
	int rc;

	snprintf(num, sizeof(num), "%u", i + 1);
	rc = s3_hash_range(m->fd, off, len, NULL, sha);
	if (rc)
		goto out;
	rc = s3_perform(m->s, &rq, &rs);
	if (rc == 0 && !rs.etag[0]) {
		log_err("s3: part %u of %s: no ETag in the answer", i + 1, m->key);
		rc = -EIO;
	}
	if (rc == 0)
		memcpy(m->etags[i], rs.etag, sizeof(rs.etag));
	/* after the first part: a crash here leaves an open multipart upload */
	if (rc == 0 && i == 0)
		rc = fault_check("backend.put.mid");
out:
	return rc;
}

static void *s3_mpu_worker(void *arg)
{
	struct s3_mpu *m = arg;
	unsigned i;
	int rc;

	for (;;) {
		pthread_mutex_lock(&m->lock);
		i = m->next;
		if (m->rc == 0 && i < m->nparts)
			m->next++;
		else
			i = m->nparts;
		pthread_mutex_unlock(&m->lock);
		if (i >= m->nparts)
			break;
		rc = s3_mpu_part(m, i);
		if (rc) {
			pthread_mutex_lock(&m->lock);
			if (m->rc == 0)
				m->rc = rc;
			pthread_mutex_unlock(&m->lock);
		}
	}
	return NULL;
}

/* Send every part with up to `parallel` threads; 0 or the first failure. */
static int s3_mpu_parts(struct s3_mpu *m, unsigned parallel)
{
	pthread_t tid[16];
	unsigned n = parallel < m->nparts ? parallel : m->nparts, started = 0, i;

	if (n > 16)
		n = 16;
	/* the calling thread is one of the workers */
	for (i = 1; i < n; i++)
		if (pthread_create(&tid[started], NULL, s3_mpu_worker, m) == 0)
			started++;
	s3_mpu_worker(m);
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	return m->rc;
}

static int s3_mpu_complete(struct s3_mpu *m)
{
	struct s3_buf body = S3_BUF_INIT, xml = S3_BUF_INIT;
	struct sigv4_param q[] = { { "uploadId", m->upload_id } };
	struct s3_body bd = { .fd = -1 };
	struct s3_request rq = { .method = "POST", .key = m->key, .query = q, .nquery = 1,
				 .body = &bd, .xml = &xml };
	struct sigv4_header h[1] = { { "Content-Type", "application/xml" } };
	struct s3_response rs;
	char sha[65];
	unsigned i;
	int rc;

	xml.limit = S3_XML_MAX;
	s3_buf_adds(&body, "<CompleteMultipartUpload>");
	for (i = 0; i < m->nparts; i++) {
		s3_buf_addf(&body, "<Part><PartNumber>%u</PartNumber><ETag>", i + 1);
		s3_xml_escape(&body, m->etags[i]);
		s3_buf_adds(&body, "</ETag></Part>");
	}
	s3_buf_adds(&body, "</CompleteMultipartUpload>");
	if (body.oom) {
		rc = -ENOMEM;
		goto out;
	}
	sigv4_sha256_hex(body.data, body.len, sha);
	bd.mem = body.data;
	bd.len = body.len;
	rq.payload_sha256 = sha;
	rq.headers = h;
	rq.nheaders = 1;
	rc = s3_perform(m->s, &rq, &rs);
	if (rc == -ENOENT && rs.attempts > 1) {
		/* an earlier try may have completed it before the answer was lost */
		struct s3_request head = { .method = "HEAD", .key = m->key, .expect_404 = 1 };

		if (s3_perform(m->s, &head, &rs) == 0 && rs.content_length == m->size)
			rc = 0;
	}
out:
	s3_buf_release(&body);
	s3_buf_release(&xml);
	return rc;
}

int s3_abort_upload(struct s3 *s, const char *key, const char *upload_id)
{
	struct sigv4_param q[] = { { "uploadId", upload_id } };
	struct s3_request rq = { .method = "DELETE", .key = key, .query = q, .nquery = 1,
				 .expect_404 = 1 };
	struct s3_response rs;

	return s3_perform(s, &rq, &rs);
}

static int s3_put_multipart(struct s3 *s, const char *key, const struct backend_src *src)
{
	struct s3_mpu m = { .s = s, .key = key, .fd = src->fd, .size = src->size };
	int rc, arc;

	pthread_mutex_init(&m.lock, NULL);
	m.part_size = s3_part_size(&s->cfg.t, src->size);
	m.nparts = (unsigned)((src->size + m.part_size - 1) / m.part_size);
	m.etags = calloc(m.nparts, sizeof(*m.etags));
	rc = m.etags ? s3_mpu_create(&m) : -ENOMEM;
	if (m.lost_ids)
		s3_mpu_sweep(&m, m.upload_id);
	if (rc)
		goto out;
	log_debug("s3: multipart %s: %u parts of %llu bytes", key, m.nparts,
		  (unsigned long long)m.part_size);
	rc = s3_mpu_parts(&m, s->cfg.t.parallel);
	if (rc == 0)
		rc = s3_mpu_complete(&m);
	if (rc == 0 && !m.lost_ids)
		s3_mpu_sweep(&m, m.upload_id);
	if (rc) {
		arc = s3_abort_upload(s, key, m.upload_id);
		if (arc && arc != -ENOENT)
			log_err("s3: cannot abort the multipart upload of %s (%d); "
				"cleanup_incomplete will", key, arc);
	}
out:
	free(m.upload_id);
	free(m.etags);
	pthread_mutex_destroy(&m.lock);
	return rc;
}

int s3_put(struct backend *b, const char *obj, const struct backend_src *src, int *consumed)
{
	struct s3 *s = s3_of(b);
	char *key = s3_full_key(s, obj);
	int rc;

	*consumed = 0;
	if (!key)
		rc = -ENOMEM;
	else if (src->size > S3_MAX_OBJECT)
		rc = -EFBIG;
	else if (src->size < s->cfg.t.multipart_threshold)
		rc = s3_put_single(s, key, src);
	else
		rc = s3_put_multipart(s, key, src);
	free(key);
	return rc;
}

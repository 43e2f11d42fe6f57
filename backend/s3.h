/*
 * s3.h — the S3 storage backend (AWS S3 and S3-compatible stores).
 *
 * Objects live at s3://bucket/<prefix>/<name>.  Requests are signed with our
 * own SigV4 signer (sigv4.h) and sent with libcurl; https always verifies the
 * peer and host; plain http only when the endpoint url says "http://".
 *
 * Settings, first found wins (the AWS conventions; `opts` is struct
 * backend_opts):
 *   credentials  AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+ AWS_SESSION_TOKEN]
 *                (skipped when opts->s3_profile names a profile), else the
 *                profile's aws_access_key_id / aws_secret_access_key /
 *                aws_session_token from ~/.aws/credentials, then ~/.aws/config
 *                (AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE move them)
 *   profile      opts->s3_profile, AWS_PROFILE, "default"
 *   region       opts->s3_region, AWS_REGION, AWS_DEFAULT_REGION, the
 *                profile's region, "us-east-1"
 *   endpoint     opts->s3_endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, the
 *                profile's endpoint_url, else https://s3.<region>.amazonaws.com
 *                (virtual-host style: https://<bucket>.s3.<region>.amazonaws.com)
 *   addressing   custom endpoints path style (http://host/bucket/key), AWS
 *                virtual-host style unless the bucket has a dot;
 *                LAMFS_S3_ADDRESSING=path|virtual or the profile's
 *                "s3 = addressing_style = …" overrides
 *   CA bundle    AWS_CA_BUNDLE, the profile's ca_bundle, else libcurl's default
 * Tuning (environment, sizes take K/M/G suffixes; mostly for tests):
 *   LAMFS_S3_MULTIPART_THRESHOLD  single PUT below it (default 8M)
 *   LAMFS_S3_PART_SIZE            multipart part size (default 8M, min 5M unless
 *                                 set here; grows so an object fits 10,000 parts)
 *   LAMFS_S3_PARALLEL             parts in flight per upload (default 4, max 16)
 *   LAMFS_S3_ATTEMPTS             tries per request (default 5)
 *   LAMFS_S3_RETRY_BASE_MS        first backoff (default 200; doubles, jitter)
 *   LAMFS_S3_CONNECT_TIMEOUT      seconds (default 10)
 *   LAMFS_S3_STALL_TIMEOUT        seconds without a byte moving (default 30)
 *   LAMFS_S3_READAHEAD            largest readahead per reader (default 8M)
 *   LAMFS_S3_READ_PARALLEL        GETs in flight ahead of a sequential reader
 *                                 (default 2, 1..8)
 *
 * Memory bounds: an open reader holds at most READ_PARALLEL + 1 readahead
 * windows (3 x LAMFS_S3_READAHEAD, 24 MiB by default) plus a few hundred
 * bytes, and runs up to READ_PARALLEL prefetch threads while it is read
 * sequentially; an upload holds
 * LAMFS_S3_PARALLEL x 1 MiB hashing buffers plus, for multipart, 80 bytes per
 * part for the ETags and ~90 per part for the completion body (under 2 MiB at
 * 10,000 parts), whatever the object size: parts stream from the staging fd.
 * libcurl adds its own per-connection buffers (tens of KiB per handle).
 *
 * Errors (one mapping, s3_errno() in s3_http.c): 403 -> -EACCES, 404 ->
 * -ENOENT, other 4xx -> -EIO (S3 error code logged), 5xx/429/network after
 * retries -> -EIO.  Secrets never appear in logs or messages.
 * Thread-safe as backend.h requires.
 */
#ifndef LAMFS_S3_H
#define LAMFS_S3_H

#include "backend.h"

/*
 * Open "s3://bucket[/prefix]".  Always checks that the bucket answers (one
 * listing request); with opts->s3_create also that it is writable (puts and
 * deletes a small probe object under the prefix).  On failure returns a
 * negative errno and sets *errmsg (when not NULL) to a one-line reason the
 * caller frees: -ENOENT "bucket X does not exist", -EACCES with the S3 code
 * and the setting to check, -EIO with libcurl's reason when unreachable,
 * -EINVAL for a malformed url or endpoint.
 */
int backend_s3_open(const char *url, const struct backend_opts *opts, struct backend **out,
		    char **errmsg);

#endif

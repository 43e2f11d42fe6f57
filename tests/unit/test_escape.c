/*
 * test_escape.c — escape.c: names for one line of human output (GNU ls -b
 * style), truncation at whole escapes, and that a log line never carries a
 * raw control byte.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "escape.h"
#include "log.h"

static const char *esc(const char *s)
{
	static char buf[ESCAPE_SIZE(256)];

	return escape_str(s, buf, sizeof(buf));
}

static void test_plain(void **state)
{
	(void)state;
	assert_string_equal(esc("seqs/sample.fasta"), "seqs/sample.fasta");
	assert_string_equal(esc("with space 'q' \"dq\""), "with space 'q' \"dq\"");
	assert_string_equal(esc("\xc3\xbcn\xc3\xaf" "code \xe6\x97\xa5 \xf0\x9f\x98\x80"),
			    "\xc3\xbcn\xc3\xaf" "code \xe6\x97\xa5 \xf0\x9f\x98\x80");
	assert_false(escape_needed("seqs/\xc3\xbc.txt"));
	assert_string_equal(esc(NULL), "(null)");
}

static void test_controls(void **state)
{
	(void)state;
	assert_string_equal(esc("a\nb"), "a\\nb");
	assert_string_equal(esc("\a\b\t\n\v\f\r"), "\\a\\b\\t\\n\\v\\f\\r");
	assert_string_equal(esc("esc\033[31m"), "esc\\033[31m");
	assert_string_equal(esc("del\177"), "del\\177");
	assert_string_equal(esc("\001\037"), "\\001\\037");
	assert_string_equal(esc("back\\slash"), "back\\\\slash");
	assert_true(escape_needed("a\nb"));
	assert_true(escape_needed("back\\slash"));
}

static void test_utf8(void **state)
{
	(void)state;
	/* C1 controls (CSI U+009B) are valid UTF-8 but obeyed by terminals */
	assert_string_equal(esc("csi\xc2\x9b" "2J"), "csi\\302\\233" "2J");
	assert_string_equal(esc("\xc2\xa0"), "\xc2\xa0");          /* U+00A0 passes */
	/* invalid: lone continuation, overlong, surrogate, > U+10FFFF, cut short */
	assert_string_equal(esc("\x80"), "\\200");
	assert_string_equal(esc("\xc0\xaf"), "\\300\\257");
	assert_string_equal(esc("\xed\xa0\x80"), "\\355\\240\\200");
	assert_string_equal(esc("\xf4\x90\x80\x80"), "\\364\\220\\200\\200");
	assert_string_equal(esc("\xe6\x97"), "\\346\\227");
	assert_string_equal(esc("\xff"), "\\377");
	assert_true(escape_needed("\xff"));
	assert_true(escape_needed("\xc2\x9b"));
}

/* Output cut at a whole escape, always terminated; *used says how far. */
static void test_truncation(void **state)
{
	char out[6];
	size_t used, n;

	(void)state;
	n = escape_buf(out, sizeof(out), "ab\ncd", 5, &used);
	assert_string_equal(out, "ab\\nc");
	assert_int_equal(n, 5);
	assert_int_equal(used, 4);
	n = escape_buf(out, sizeof(out), "abcd\033", 5, &used);
	assert_string_equal(out, "abcd");             /* "\033" does not fit whole */
	assert_int_equal(used, 4);
	n = escape_buf(out, sizeof(out), "ab\xe6\x97\xa5", 5, &used);
	assert_string_equal(out, "ab\xe6\x97\xa5");
	n = escape_buf(out, 1, "abc", 3, &used);
	assert_string_equal(out, "");
	assert_int_equal(n, 0);
	assert_int_equal(used, 0);
}

/* The worst case fits ESCAPE_SIZE. */
static void test_size(void **state)
{
	char in[64], out[ESCAPE_SIZE(64)];
	size_t used;

	(void)state;
	memset(in, '\033', sizeof(in));
	assert_int_equal(escape_buf(out, sizeof(out), in, sizeof(in), &used), 4 * sizeof(in));
	assert_int_equal(used, sizeof(in));
}

/* A key with a newline and ESC in a log message: one line, no raw byte. */
static void test_log_line(void **state)
{
	char path[] = "/tmp/lamfs-test-escape-XXXXXX", buf[512];
	int fd = mkstemp(path);
	ssize_t n;
	size_t i, lines = 0;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(log_open(path), 0);
	log_err("save %s failed", "a\n2026-01-01T00:00:00.000Z ERROR forged\033[2J");
	log_close();
	n = read(fd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	for (i = 0; i < (size_t)n; i++) {
		assert_true(buf[i] == '\n' || ((unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f));
		lines += buf[i] == '\n';
	}
	assert_int_equal(lines, 1);
	assert_non_null(strstr(buf, "save a\\n2026-01-01T00:00:00.000Z ERROR forged\\033[2J failed"));
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_controls),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_log_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

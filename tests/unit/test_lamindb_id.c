/*
 * test_lamindb_id.c — instance ids, instance uids and storage_uid.txt against
 * LaminDB's check values (lamindb-setup 1.25.1: anonymous/lamin1 ->
 * d20e685ca462516694d4315d71c696ac -> 4q6cb8VrpjgF), and bad markers.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "lamindb_id.h"

static void test_check_values(void **state)
{
	char id[LAMINDB_ID_HEX_LEN + 1], uid[LAMINDB_UID12_LEN + 1];

	(void)state;
	assert_int_equal(lamindb_instance_id("anonymous/lamin1", id), 0);
	assert_string_equal(id, "d20e685ca462516694d4315d71c696ac");
	assert_int_equal(lamindb_instance_uid(id, uid), 0);
	assert_string_equal(uid, "4q6cb8VrpjgF");
	/* the dashed form and upper case name the same id */
	assert_int_equal(lamindb_instance_uid("D20E685C-A462-5166-94D4-315D71C696AC", uid), 0);
	assert_string_equal(uid, "4q6cb8VrpjgF");
	/* a second pair, from Python's uuid.uuid5 and hashlib */
	assert_int_equal(lamindb_instance_id("anonymous/proj", id), 0);
	assert_string_equal(id, "b8b839b1fdcc5de6988276daa223a3fc");
	assert_int_equal(lamindb_instance_uid(id, uid), 0);
	assert_string_equal(uid, "REq2Qyc8EFQF");
	assert_int_equal(lamindb_instance_uid("d20e685ca462516694d4315d71c696a", uid), -EINVAL);
	assert_int_equal(lamindb_instance_uid("d20e685ca462516694d4315d71c696acc", uid), -EINVAL);
	assert_int_equal(lamindb_instance_uid("g20e685ca462516694d4315d71c696ac", uid), -EINVAL);
}

static void test_names(void **state)
{
	char name[64];

	(void)state;
	assert_int_equal(lamindb_name_of_root("/data/proj", name, sizeof(name)), 0);
	assert_string_equal(name, "proj");
	assert_int_equal(lamindb_name_of_root("/data/proj//", name, sizeof(name)), 0);
	assert_string_equal(name, "proj");
	assert_int_equal(lamindb_name_of_root("s3://bucket", name, sizeof(name)), 0);
	assert_string_equal(name, "bucket");
	assert_int_equal(lamindb_name_of_root("s3://bucket/a/b-c_d/", name, sizeof(name)), 0);
	assert_string_equal(name, "b-c_d");
	assert_int_equal(lamindb_name_of_root("/", name, sizeof(name)), -EINVAL);
	assert_int_equal(lamindb_name_of_root("/data/with space\t", name, sizeof(name)), 0);
	assert_string_equal(name, "with-space-");
	assert_int_equal(lamindb_name_of_root("/data/..", name, sizeof(name)), -EINVAL);
	assert_int_equal(lamindb_name_of_root("/data/proj", name, 4), -ENAMETOOLONG);
	assert_false(lamindb_name_valid(".."));
	assert_false(lamindb_name_valid("a\nb"));
	assert_true(lamindb_name_valid("lamin1"));
}

static void test_new_and_round_trip(void **state)
{
	struct lamindb_ident a, b, c;
	char text[LAMINDB_MARKER_MAX];
	int n;

	(void)state;
	assert_int_equal(lamindb_ident_new("lamin1", &a), 0);
	assert_int_equal(lamindb_ident_new("lamin1", &c), 0);
	assert_string_equal(a.slug, "anonymous/lamin1");
	assert_string_equal(a.instance_id, "d20e685ca462516694d4315d71c696ac");
	assert_string_equal(a.instance_uid, "4q6cb8VrpjgF");
	assert_int_equal(strlen(a.storage_uid), 12);
	assert_string_not_equal(a.storage_uid, c.storage_uid);   /* random */
	n = lamindb_ident_format(&a, text, sizeof(text));
	assert_true(n > 0);
	assert_int_equal(strlen(text), n);
	assert_non_null(strstr(text, "\ncreation info:\ninstance_slug=anonymous/lamin1\n"
				     "instance_id=d20e685ca462516694d4315d71c696ac\n"
				     "instance_uid=4q6cb8VrpjgF"));
	assert_int_equal(text[n - 1], 'F');   /* as lamin init writes it: no newline at the end */
	assert_memory_equal(text, a.storage_uid, 12);
	assert_int_equal(text[12], '\n');
	assert_int_equal(lamindb_ident_parse(text, (size_t)n, &b, NULL), 0);
	assert_string_equal(a.storage_uid, b.storage_uid);
	assert_string_equal(a.slug, b.slug);
	assert_string_equal(a.instance_id, b.instance_id);
	assert_string_equal(a.instance_uid, b.instance_uid);
	assert_int_equal(lamindb_ident_format(&a, text, 20), -ENOSPC);
	assert_int_equal(lamindb_ident_new("a/b", &a), -EINVAL);
}

/* The file as lamin init writes it (no instance_uid line is accepted too). */
static void test_parse(void **state)
{
	static const char lamin[] = "AbCdEfGh1234\ncreation info:\n"
				    "instance_slug=anonymous/lamin1\n"
				    "instance_id=d20e685ca462516694d4315d71c696ac\n"
				    "instance_uid=4q6cb8VrpjgF\n";
	static const char no_uid[] = "AbCdEfGh1234\ncreation info:\n"
				     "instance_slug=anonymous/lamin1\n"
				     "instance_id=d20e685c-a462-5166-94d4-315d71c696ac";
	struct lamindb_ident id;
	const char *why = NULL;

	(void)state;
	assert_int_equal(lamindb_ident_parse(lamin, strlen(lamin), &id, &why), 0);
	assert_null(why);
	assert_string_equal(id.storage_uid, "AbCdEfGh1234");
	assert_string_equal(id.slug, "anonymous/lamin1");
	assert_string_equal(id.instance_uid, "4q6cb8VrpjgF");
	assert_int_equal(lamindb_ident_parse(no_uid, strlen(no_uid), &id, NULL), 0);
	assert_string_equal(id.instance_id, "d20e685ca462516694d4315d71c696ac");
	assert_string_equal(id.instance_uid, "4q6cb8VrpjgF");
}

static void test_parse_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		"AbCdEfGh1234\n",                          /* an older LaminDB's: uid only */
		"AbCdEfGh123\ncreation info:\ninstance_slug=anonymous/x\n"
		"instance_id=d20e685ca462516694d4315d71c696ac\n",   /* 11 characters */
		"AbCdEfGh12-4\ncreation info:\ninstance_slug=anonymous/x\n"
		"instance_id=d20e685ca462516694d4315d71c696ac\n",
		"AbCdEfGh1234\ncreation info:\ninstance_slug=anonymous/x\n"
		"instance_id=d20e685ca462516694d4315d71c696a\n",    /* 31 hex */
		"AbCdEfGh1234\ncreation info:\ninstance_slug=anonymous/x\n"
		"instance_id=d20e685ca462516694d4315d71c696ac\ninstance_uid=4q6cb8VrpjgG\n",
		"AbCdEfGh1234\ncreation info:\ninstance_id=d20e685ca462516694d4315d71c696ac\n",
	};
	struct lamindb_ident id;
	const char *why;
	size_t i;

	(void)state;
	memset(&id, 'x', sizeof(id));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(lamindb_ident_parse(bad[i], strlen(bad[i]), &id, &why), -EBADMSG);
		assert_non_null(why);
	}
	assert_int_equal(id.slug[0], 'x');    /* out untouched on failure */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_values),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_new_and_round_trip),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

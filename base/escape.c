/*
 * escape.c — names made safe for one line of a terminal or a log; the form
 * is described in escape.h.
 */
#include <string.h>

#include "escape.h"

/* Length of the valid UTF-8 sequence at s (at most len bytes), 0 if none.
 * Overlong forms, surrogates and code points above U+10FFFF are invalid. */
static size_t escape_utf8_len(const unsigned char *s, size_t len)
{
	unsigned char c = s[0];
	size_t n, i;
	unsigned char lo = 0x80, hi = 0xBF;

	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return n;
}

/* The escape for byte c when it stands alone ("\n", "\033"), into e (5
 * bytes); its length, 0 when c is printed as it is. */
static size_t escape_byte(unsigned char c, char e[5])
{
	static const char named[] = "\a\b\t\n\v\f\r";
	static const char letter[] = "abtnvfr";
	const char *p = NULL;

	if (c == '\\' || (c != 0 && (p = memchr(named, c, sizeof(named) - 1)) != NULL)) {
		e[0] = '\\';
		e[1] = c == '\\' ? '\\' : letter[p - named];
		return 2;
	}
	if (c >= 0x20 && c < 0x7F)
		return 0;
	e[0] = '\\';
	e[1] = (char)('0' + (c >> 6));
	e[2] = (char)('0' + ((c >> 3) & 7));
	e[3] = (char)('0' + (c & 7));
	return 4;
}

size_t escape_buf(char *out, size_t size, const char *s, size_t len, size_t *used)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t i = 0, o = 0, n, k;
	char e[5];

	while (i < len) {
		n = u[i] >= 0x80 ? escape_utf8_len(u + i, len - i) : 0;
		/* C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F */
		if (n == 2 && u[i] == 0xC2 && u[i + 1] <= 0x9F)
			n = 0;
		if (n) {
			if (o + n >= size)
				break;
			memcpy(out + o, u + i, n);
			o += n;
			i += n;
			continue;
		}
		k = escape_byte(u[i], e);
		if (o + (k ? k : 1) >= size)
			break;
		if (k)
			memcpy(out + o, e, k);
		else
			out[o] = (char)u[i];
		o += k ? k : 1;
		i++;
	}
	if (size)
		out[o] = '\0';
	if (used)
		*used = i;
	return o;
}

const char *escape_str(const char *s, char *buf, size_t size)
{
	if (!s)
		s = "(null)";
	escape_buf(buf, size, s, strlen(s), NULL);
	return buf;
}

int escape_needed(const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	size_t len = strlen(s), i = 0, n;
	char e[5];

	while (i < len) {
		n = u[i] >= 0x80 ? escape_utf8_len(u + i, len - i) : 0;
		if (n == 2 && u[i] == 0xC2 && u[i + 1] <= 0x9F)
			n = 0;
		if (!n && (u[i] >= 0x80 || escape_byte(u[i], e)))
			return 1;
		i += n ? n : 1;
	}
	return 0;
}

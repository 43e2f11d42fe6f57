# Turn LaminDB's shipped schema files into a C source (run by meta/CMakeLists.txt):
#   cmake -DSRC=<meta/lamindb> -DOUT=<file.c> -P embed.cmake
# Each file becomes `const unsigned char lamindb_<name>[]` and its size
# `const size_t lamindb_<name>_len` (meta/lamindb.h declares them).
set(files "lamin.db.gz;db_gz" "postgres-schema.sql.gz;pg_schema_gz"
          "postgres-seed-rows.sql;pg_seed")
file(WRITE "${OUT}.tmp" "/* Generated from meta/lamindb by embed.cmake: do not edit. */\n"
                        "#include <stddef.h>\n")
set(i 0)
list(LENGTH files n)
while(i LESS n)
  list(GET files ${i} file)
  math(EXPR j "${i} + 1")
  list(GET files ${j} name)
  file(READ "${SRC}/${file}" hex HEX)
  string(LENGTH "${hex}" hexlen)
  math(EXPR len "${hexlen} / 2")
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" body "${body}")
  file(APPEND "${OUT}.tmp" "extern const unsigned char lamindb_${name}[];\n"
                           "extern const size_t lamindb_${name}_len;\n"
                           "const unsigned char lamindb_${name}[] = {\n${body}0x00};\n"
                           "const size_t lamindb_${name}_len = ${len};\n")
  math(EXPR i "${i} + 2")
endwhile()
file(RENAME "${OUT}.tmp" "${OUT}")

# embed.cmake — turns a file into a C source holding its bytes, for assets compiled into the binary (the
# web UI page). Run as: cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake
# Defines `const unsigned char NAME[]` (the bytes plus a terminating NUL, so it is also a C string) and
# `const size_t NAME_len` (the byte count, without the NUL). CMake only: no xxd or python needed.
get_filename_component(IN_NAME "${IN}" NAME)
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n_hex)
math(EXPR n "${n_hex} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPLACE "0x0a," "0x0a,\n" bytes "${bytes}") # one line of C per line of the file
file(WRITE "${OUT}.tmp"
  "/* Generated from ${IN_NAME} by cmake/embed.cmake: do not edit. */\n"
  "#include <stddef.h>\n"
  "const unsigned char ${NAME}[] = {\n${bytes}0x00};\n"
  "const size_t ${NAME}_len = ${n};\n")
file(RENAME "${OUT}.tmp" "${OUT}")

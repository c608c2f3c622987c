# Embedding: what a program outside the tree sees.
#
# public_headers: each include/axon/*.h alone compiles as C11 and C++17 with
# -pedantic -Werror, with the build's compilers and with clang when present
# (a compile-only check, so in the plain build only: label tool).
set(_axon_hdr_compilers ${CMAKE_C_COMPILER} ${CMAKE_CXX_COMPILER})
find_program(AXON_CLANG clang)
find_program(AXON_CLANGXX clang++)
if(AXON_CLANG AND AXON_CLANGXX AND NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
  list(APPEND _axon_hdr_compilers ${AXON_CLANG} ${AXON_CLANGXX})
endif()
add_test(NAME public_headers
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install/test_headers.sh ${PROJECT_SOURCE_DIR}
                 ${_axon_hdr_compilers})
set_tests_properties(public_headers PROPERTIES LABELS tool TIMEOUT 120)

# install_pkgconfig: install into a scratch prefix, build a consumer and every
# example out of the tree with pkg-config alone, and run them.  In sanitizer
# builds too (label install, which run.sh runs there): their axon.pc must
# carry the -fsanitize flags.
add_test(NAME install_pkgconfig
         COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install/test_install.sh ${CMAKE_BINARY_DIR}
                 ${PROJECT_SOURCE_DIR} ${CMAKE_C_COMPILER} "${AXON_SANITIZE}")
set_tests_properties(install_pkgconfig PROPERTIES LABELS install TIMEOUT 300)

# Install into a scratch prefix and build an embedder with pkg-config.
# Skipped in sanitizer builds: the consumer is built without the sanitizer
# runtime and could not link against an instrumented libaxon.
if(NOT AXON_SANITIZE)
  add_test(NAME install_pkgconfig
           COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install/test_install.sh ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR})
  set_tests_properties(install_pkgconfig PROPERTIES LABELS tool TIMEOUT 120)
endif()

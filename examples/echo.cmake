# axon-echo: TCP echo server on the public API (axon/axon.h, axon/io.h).
# The ctest runs its self-test: 10 MiB through 4 loopback connections, every
# byte checked in order, then shutdown with an fd-count check.
if(TARGET axon_engine)
  add_executable(axon-echo ${PROJECT_SOURCE_DIR}/examples/echo.c)
  target_link_libraries(axon-echo PRIVATE axon_engine)
  add_test(NAME echo_10mb COMMAND axon-echo --selftest --mb 10 --conns 4)
  set_tests_properties(echo_10mb PROPERTIES LABELS unit TIMEOUT 120)
endif()

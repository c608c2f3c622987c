# axon-echo: TCP echo server on the public API (axon/axon.h, axon/io.h).
# tests/io.cmake runs its self-test (echo_10mb): 10 MiB through 4 loopback connections, every
# byte checked in order, then shutdown with an fd-count check.
if(TARGET axon_engine)
  add_executable(axon-echo ${PROJECT_SOURCE_DIR}/examples/echo.c)
  target_link_libraries(axon-echo PRIVATE axon_engine)
endif()

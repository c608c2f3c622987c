# Conversations (issue 12): request/reply, stash and outside calls
# (axon/request.h, engine/request.c); typed messages (axon/typed.h), flow
# control (axon/flow.h) and placement options.  Public API only; engines run
# unpinned on synthetic topologies so the tests pass on one CPU.
if(NOT TARGET axon_engine)
  return()
endif()
axon_test(test_conv_request SOURCES unit/test_conv_request.c
          LIBS axon_engine LABELS unit TIMEOUT 240)
axon_test(test_conv_typed SOURCES unit/test_conv_typed.c
          LIBS axon_engine LABELS unit TIMEOUT 240)

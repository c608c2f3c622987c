# Libraries above the engine (lib/): supervisors.
if(NOT TARGET axon_lib)
  message(STATUS "axon: lib tests skipped: target axon_lib does not exist yet")
  return()
endif()

# Each strategy, restart policies, intensity escalation, restart in place
# with queued messages delivered or dropped, trees and their shutdown order.
axon_test(test_supervisor SOURCES unit/test_supervisor.c LIBS axon_lib LABELS unit TIMEOUT 120)

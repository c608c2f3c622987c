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

# examples/bank.c: exit status 0 AND the audit line (pingpong, rewritten with
# typed requests, keeps its example_pingpong test in engine.cmake).
if(TARGET bank)
  add_test(NAME example_bank
    COMMAND sh -c "out=$(\"$0\" \"$@\") || { echo \"$0 exited with status $?\"; exit 1; }; printf '%s\\n' \"$out\"; printf '%s\\n' \"$out\" | grep -q -- '^bank: money conserved: 16000000 cents$' || { echo 'expected the audit line'; exit 1; }"
            $<TARGET_FILE:bank> 16 4 2000)
  set_tests_properties(example_bank PROPERTIES LABELS tool TIMEOUT 120)
endif()

# Stress: seeded, time-boxed; exactly-once continuations and outside calls
# under replies, timeouts, late replies, forwards, stashes and stops.
axon_test(stress_conv SOURCES stress/stress_conv.c LIBS axon_engine LABELS stress TIMEOUT 300
          ARGS --workers 4 --seconds 15)

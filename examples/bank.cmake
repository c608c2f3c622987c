# bank: accounts and tellers; transfers as requests with timeouts; money
# conserved and audited from outside with ax_engine_call (public API only).
# Its ctest (example_bank) is registered in tests/conv.cmake.
if(TARGET axon_engine)
  add_executable(bank ${CMAKE_CURRENT_LIST_DIR}/bank.c)
  target_link_libraries(bank PRIVATE axon)
endif()

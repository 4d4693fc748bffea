# herald bench: the accounting unit test, and a ~2 s smoke run against a real server.
herald_add_test(bench_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_test.cc
                LIBS herald_bench_core)
if(NOT HERALD_MODE STREQUAL "fuzz")
  add_test(NAME bench_smoke
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/bench/smoke_test.sh $<TARGET_FILE:herald>)
  set_tests_properties(bench_smoke PROPERTIES LABELS "integration" TIMEOUT 120)
endif()

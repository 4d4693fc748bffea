herald_add_test(filter_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/core/filter_test.cc LIBS herald_core)
herald_add_test(principal_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/core/principal_test.cc LIBS herald_core)
herald_add_test(clock_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/core/clock_test.cc LIBS herald_core)
herald_add_test(hub_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/core/hub_test.cc LIBS herald_core)

# Unit tests of transport/ (included from src/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR is src/).
herald_add_test(batching_stream_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/transport/batching_stream_test.cc
                LIBS herald_transport)
herald_add_test(ws_fault_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/transport/ws_fault_test.cc
                LIBS herald_transport)

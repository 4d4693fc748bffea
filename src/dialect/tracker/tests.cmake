# Unit tests of the tracker dialect (included from src/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR
# is src/).
herald_add_test(tracker_codec_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dialect/tracker/tracker_codec_test.cc
                LIBS herald_dialect_tracker)
herald_add_test(tracker_socket_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dialect/tracker/tracker_socket_test.cc
                LIBS herald_dialect_tracker herald_store_memory)

# Unit tests of the zoom dialect (included from src/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR
# is src/).
herald_add_test(zoom_codec_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dialect/zoom/zoom_codec_test.cc
                LIBS herald_dialect_zoom)
herald_add_test(zoom_socket_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dialect/zoom/zoom_socket_test.cc
                LIBS herald_dialect_zoom herald_store_memory)

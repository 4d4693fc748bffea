# Unit tests of the native dialect (included from src/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR
# is src/).
herald_add_test(native_socket_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dialect/native/native_socket_test.cc
                LIBS herald_dialect_native herald_store_memory)
herald_add_test(native_codec_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dialect/native/native_codec_test.cc
                LIBS herald_dialect_native)

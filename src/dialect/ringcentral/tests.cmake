# Unit tests of the RingCentral dialect (included from src/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR
# is src/).
herald_add_test(rc_codec_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dialect/ringcentral/rc_codec_test.cc
                LIBS herald_dialect_ringcentral)
herald_add_test(rc_socket_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dialect/ringcentral/rc_socket_test.cc
                LIBS herald_dialect_ringcentral herald_store_memory)

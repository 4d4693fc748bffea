# Unit tests of the smsgw dialect (included from src/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR
# is src/).
herald_add_test(smsgw_codec_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dialect/smsgw/smsgw_codec_test.cc
                LIBS herald_dialect_smsgw)
herald_add_test(smsgw_socket_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/dialect/smsgw/smsgw_socket_test.cc
                LIBS herald_dialect_smsgw herald_store_memory)

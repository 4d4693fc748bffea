# Unit tests of auth/ (included from src/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR is src/).
herald_add_test(crypto_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/auth/crypto_test.cc
                LIBS herald_auth)
herald_add_test(tokens_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/auth/tokens_test.cc
                LIBS herald_auth)
herald_add_test(jwt_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/auth/jwt_test.cc
                LIBS herald_auth)

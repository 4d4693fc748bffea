# Tests of store/redis/ (included from src/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR is src/).
# The codec test needs no server; the connection test starts a real redis-server on a free
# loopback port (scripts/deps.sh installs it) and fails, naming it, when it is missing.
# The helper that starts that server is compiled once for the four tests that use it.
add_library(herald_redis_server_for_test STATIC
            ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/redis_server_for_test.cc)
target_include_directories(herald_redis_server_for_test PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
herald_warnings(herald_redis_server_for_test)
herald_add_test(redis_codec_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/codec_test.cc
                LIBS herald_store_redis)
herald_add_test(redis_connection_test LABEL integration
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/connection_test.cc
                LIBS herald_store_redis herald_redis_server_for_test)
set_tests_properties(redis_connection_test PROPERTIES TIMEOUT 120)
herald_add_test(redis_store_test LABEL integration
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/redis_store_test.cc
                LIBS herald_store_redis herald_redis_server_for_test)
set_tests_properties(redis_store_test PROPERTIES TIMEOUT 120)
herald_add_test(redis_control_test LABEL integration
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/control_test.cc
                LIBS herald_store_redis herald_redis_server_for_test)
set_tests_properties(redis_control_test PROPERTIES TIMEOUT 60)

# Tests of store/redis/ (included from src/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR is src/).
# The codec test needs no server; the connection test starts a real redis-server on a free
# loopback port (scripts/deps.sh installs it) and fails, naming it, when it is missing.
herald_add_test(redis_codec_test LABEL unit
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/codec_test.cc
                LIBS herald_store_redis)
herald_add_test(redis_connection_test LABEL integration
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/connection_test.cc
                        ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/redis_server_for_test.cc
                LIBS herald_store_redis)
set_tests_properties(redis_connection_test PROPERTIES TIMEOUT 120)
herald_add_test(redis_store_test LABEL integration
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/redis_store_test.cc
                        ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/redis_server_for_test.cc
                LIBS herald_store_redis)
set_tests_properties(redis_store_test PROPERTIES TIMEOUT 120)
herald_add_test(redis_control_test LABEL integration
                SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/control_test.cc
                        ${CMAKE_CURRENT_SOURCE_DIR}/store/redis/redis_server_for_test.cc
                LIBS herald_store_redis)
set_tests_properties(redis_control_test PROPERTIES TIMEOUT 60)

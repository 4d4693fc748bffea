# The store contract suite, run against every back end (redis: a redis-server per test) (included from src/CMakeLists.txt).
herald_add_test(store_contract_test LABEL unit
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/store/store_contract_test.cc
  LIBS herald_store herald_redis_server_for_test)

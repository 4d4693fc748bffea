# Unit tests of api/ (included from src/CMakeLists.txt: CMAKE_CURRENT_SOURCE_DIR is src/).
herald_add_test(raw_json_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/api/raw_json_test.cc
                LIBS herald_api)
herald_add_test(prometheus_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/api/prometheus_test.cc
                LIBS herald_api)
herald_add_test(numbers_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/api/numbers_test.cc
                LIBS herald_api)
herald_add_test(json_util_test LABEL unit SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/api/json_util_test.cc
                LIBS herald_api)

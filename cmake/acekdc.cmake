# Helper functions shared by every layer's CMakeLists.txt.

add_library(acekdc_options INTERFACE)
target_compile_options(acekdc_options INTERFACE
  -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)
if(ACEKDC_SANITIZE)
  target_compile_options(acekdc_options INTERFACE -fsanitize=${ACEKDC_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(acekdc_options INTERFACE -fsanitize=${ACEKDC_SANITIZE})
endif()
if(ACEKDC_FUZZ)
  target_compile_options(acekdc_options INTERFACE -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  target_link_options(acekdc_options INTERFACE -fsanitize=address,undefined)
endif()

set(ACEKDC_VECTORS_DIR ${PROJECT_SOURCE_DIR}/tests/vectors)

# acekdc_library(NAME SOURCES ... DEPS ... [PRIVATE_DEPS ...])
function(acekdc_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC acekdc_options ${A_DEPS} PRIVATE ${A_PRIVATE_DEPS})
endfunction()

# acekdc_test(NAME SOURCES ... DEPS ...): a GoogleTest executable registered with CTest.
function(acekdc_test name)
  if(NOT ACEKDC_TESTS)
    return()
  endif()
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main GTest::gmock Threads::Threads)
  target_compile_definitions(${name} PRIVATE ACEKDC_VECTORS_DIR="${ACEKDC_VECTORS_DIR}"
    ACEKDC_SOURCE_DIR="${PROJECT_SOURCE_DIR}" ACEKDC_BINARY_DIR="${PROJECT_BINARY_DIR}")
  add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
endfunction()

# acekdc_fuzz(NAME SOURCES ... DEPS ...): a libFuzzer target (ACEKDC_FUZZ=ON only), built into
# build/fuzz/; name it fuzz_<what>, keep its source in fuzz/ and its seeds in fuzz/corpus/<name>/.
function(acekdc_fuzz name)
  if(NOT ACEKDC_FUZZ)
    return()
  endif()
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS})
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/fuzz)
  set_property(GLOBAL APPEND PROPERTY ACEKDC_FUZZ_TARGETS ${name})
endfunction()

# acekdc_bench(NAME SOURCES ... DEPS ...): a Google Benchmark executable, built into build/bench/;
# name it bench_<what>, keep its source in bench/.
function(acekdc_bench name)
  if(NOT ACEKDC_BENCH)
    return()
  endif()
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} benchmark::benchmark Threads::Threads)
  target_compile_definitions(${name} PRIVATE ACEKDC_VECTORS_DIR="${ACEKDC_VECTORS_DIR}")
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/bench)
endfunction()

// keep_large_blocks_in_heap (called by the test main, as by `tom`): a large block freed and
// asked for again comes back without new pages for the kernel to zero.
#include <gtest/gtest.h>

#include <sys/resource.h>

#include <cstdlib>
#include <cstring>

#include "tom/core/allocator.hpp"

namespace {

long minor_page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

bool sanitized() {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  return true;
#else
  return false;
#endif
}

// Faults taken while writing a fresh 64 MiB block (16384 pages of 4 KiB).
long faults_writing_a_large_block() {
  constexpr std::size_t kBytes = std::size_t{64} << 20;
  void* block = std::malloc(kBytes);
  const long before = minor_page_faults();
  std::memset(block, 1, kBytes);
  const long faults = minor_page_faults() - before;
  std::free(block);
  return faults;
}

TEST(Allocator, AFreedLargeBlockIsReusedWithoutNewPages) {
  if (sanitized()) GTEST_SKIP() << "the sanitizers bring their own allocator";
  for (const char* name : {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"})
    if (std::getenv(name) != nullptr) GTEST_SKIP() << name << " is set: malloc is the user's to tune";
  tom::keep_large_blocks_in_heap();
  faults_writing_a_large_block();  // the heap grows to hold it once
  // Without the setting every round maps the block afresh: about 16384 faults.
  EXPECT_LT(faults_writing_a_large_block(), 1000);
}

}  // namespace

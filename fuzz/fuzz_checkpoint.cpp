// libFuzzer target: the checkpoint file's container (magic, sizes, JSON header,
// checksum). An even first byte passes the rest on as the file's bytes; an odd one fixes
// the checksum up first, so the size fields and the header parser see fuzzed bytes too.
// Bad input must end in tom::Error; any other exception or crash is a bug. (LibTorch's
// archive reader behind it is exercised by the unit test
// Checkpoint.DamagedArchivesBehindAValidChecksumAreErrors.)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tom/core/error.hpp"
#include "tom/runs/checkpoint_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::string bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 1 && bytes.size() >= 8) {
    const std::uint64_t hash = tom::runs::checkpoint_checksum(std::string_view(bytes).substr(0, bytes.size() - 8));
    std::memcpy(bytes.data() + bytes.size() - 8, &hash, 8);
  }
  try {
    const auto file = tom::runs::parse_checkpoint_file(bytes, "fuzz.pt");
    // An accepted file, written back, reads back the same.
    const auto again = tom::runs::parse_checkpoint_file(tom::runs::checkpoint_file_bytes(file.header, file.payload),
                                                        "rewritten.pt");
    if (again.header != file.header || again.payload != file.payload) {
      std::fprintf(stderr, "a checkpoint file does not round-trip\n");
      std::abort();
    }
  } catch (const tom::Error&) {
  }
  return 0;
}

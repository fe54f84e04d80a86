#pragma once
// The checkpoint file's container, without LibTorch: magic line, JSON header, payload
// (the serialized archive) and an FNV-1a checksum over everything before it. Kept apart
// from checkpoint.hpp so it can be fuzzed on its own (clang cannot compile LibTorch's
// headers in C++20 mode with this libstdc++).
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace tom::runs {

struct CheckpointFile {
  nlohmann::json header;
  std::string payload;
};

std::uint64_t checkpoint_checksum(std::string_view bytes);
// The file's bytes for a header and payload.
std::string checkpoint_file_bytes(const nlohmann::json& header, std::string_view payload);
// Throws tom::Error "checkpoint <name> is corrupt or truncated (<why>)" for anything but
// a whole, intact file.
CheckpointFile parse_checkpoint_file(std::string_view bytes, const std::string& name);

}  // namespace tom::runs

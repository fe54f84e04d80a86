#pragma once
// Checkpoint files: a small JSON header (what run, task and step this is), the LibTorch
// archive with all state, and a checksum over both, so a truncated or corrupt file is
// recognised before anything is restored from it. Writes are atomic.
#include <filesystem>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/serialize/archive.h>

namespace tom::runs {

void write_checkpoint(const std::filesystem::path& path, const nlohmann::json& header,
                      const std::function<void(torch::serialize::OutputArchive&)>& save);

struct Checkpoint {
  nlohmann::json header;
  std::string payload;  // the serialized archive
  // Restores state from the archive; LibTorch errors (missing or mis-shaped entries)
  // become tom::Error naming the file.
  void load(const std::function<void(torch::serialize::InputArchive&)>& restore) const;
  std::filesystem::path path;
};

// Throws tom::Error naming the file if it is missing, truncated or corrupt.
Checkpoint read_checkpoint(const std::filesystem::path& path);

}  // namespace tom::runs

#pragma once
// Checkpoint files: a small JSON header (what run, task and step this is), the LibTorch
// archive with all state, and a checksum over both, so a truncated or corrupt file is
// recognised before anything is restored from it. Writes are atomic.
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <torch/serialize/archive.h>

#include "tom/core/error.hpp"

namespace tom::runs {

// Writes the checkpoint atomically. With `require_finite`, a state holding NaN or inf in
// any learned (float32) entry is not written (the file keeps its last good state) and
// NonFiniteState is thrown naming the entry.
void write_checkpoint(const std::filesystem::path& path, const nlohmann::json& header,
                      const std::function<void(torch::serialize::OutputArchive&)>& save,
                      bool require_finite = false);

class NonFiniteState : public Error {
 public:
  NonFiniteState(const std::string& entry)
      : Error(fmt::format("checkpoint entry '{}' holds NaN or inf", entry)), entry(entry) {}
  std::string entry;
};

// The first float32 (or narrower) entry of a serialized archive that holds NaN or inf,
// with nested archives joined by '.' ("agent.policy"), or "" if all are finite. Learned
// state is float32; float64 entries are bookkeeping, where NaN can mean "none yet".
std::string first_nonfinite_entry(const std::string& payload);

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
// The same for the bytes of a checkpoint file; `path` names it in messages.
Checkpoint parse_checkpoint(std::string_view bytes, const std::filesystem::path& path);

}  // namespace tom::runs

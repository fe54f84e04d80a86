#include "tom/runs/checkpoint.hpp"

#include <cstdint>
#include <cstring>
#include <sstream>

#include "tom/core/error.hpp"
#include "tom/runs/checkpoint_file.hpp"
#include "tom/runs/files.hpp"

namespace tom::runs {
namespace {

std::string scan_nonfinite(torch::serialize::InputArchive& archive, const std::string& prefix) {
  // Learned state (networks, optimiser moments, buffers) is float32; float64 entries are
  // bookkeeping, where NaN may mean "none yet" (e.g. the last episode's return).
  const auto bad = [](const at::Tensor& t) {
    return t.is_floating_point() && t.scalar_type() != at::kDouble && t.numel() > 0 &&
           !torch::isfinite(t).all().item<bool>();
  };
  for (const auto& key : archive.keys()) {
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    c10::IValue value;
    if (!archive.try_read(key, value)) continue;
    if (value.isTensor()) {
      if (bad(value.toTensor())) return name;
    } else if (value.isTensorList()) {
      for (const auto& t : value.toTensorVector())
        if (bad(t)) return name;
    } else if (value.isObject()) {
      torch::serialize::InputArchive nested;
      if (archive.try_read(key, nested))
        if (auto found = scan_nonfinite(nested, name); !found.empty()) return found;
    }
  }
  return "";
}

}  // namespace

std::string first_nonfinite_entry(const std::string& payload) {
  torch::serialize::InputArchive archive;
  std::istringstream in(payload);
  archive.load_from(in);
  return scan_nonfinite(archive, "");
}

void write_checkpoint(const std::filesystem::path& path, const nlohmann::json& header,
                      const std::function<void(torch::serialize::OutputArchive&)>& save, bool require_finite) {
  torch::serialize::OutputArchive archive;
  save(archive);
  std::ostringstream payload;
  archive.save_to(payload);
  if (require_finite)
    if (const std::string entry = first_nonfinite_entry(payload.str()); !entry.empty()) throw NonFiniteState(entry);
  const std::string bytes = checkpoint_file_bytes(header, payload.str());
  write_file_atomic(path, bytes);
}

Checkpoint read_checkpoint(const std::filesystem::path& path) {
  if (!path_exists(path)) fail("checkpoint {} does not exist", path.string());
  return parse_checkpoint(read_file(path), path);
}

Checkpoint parse_checkpoint(std::string_view view, const std::filesystem::path& path) {
  CheckpointFile file = parse_checkpoint_file(view, path.string());
  Checkpoint checkpoint;
  checkpoint.path = path;
  checkpoint.header = std::move(file.header);
  checkpoint.payload = std::move(file.payload);
  return checkpoint;
}

void Checkpoint::load(const std::function<void(torch::serialize::InputArchive&)>& restore) const {
  try {
    torch::serialize::InputArchive archive;
    std::istringstream in(payload);
    archive.load_from(in);
    restore(archive);
  } catch (const c10::Error& e) {
    fail("checkpoint {} does not fit this run: {}", path.string(), e.what_without_backtrace());
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    // LibTorch's archive reader also throws plain exceptions on malformed archives.
    fail("checkpoint {} does not fit this run: {}", path.string(), e.what());
  }
}

}  // namespace tom::runs

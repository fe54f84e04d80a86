#include "tom/runs/checkpoint.hpp"

#include <cstdint>
#include <cstring>
#include <sstream>

#include "tom/core/error.hpp"
#include "tom/runs/files.hpp"

namespace tom::runs {
namespace {

constexpr std::string_view kMagic = "TOMRL-CHECKPOINT-1\n";

std::uint64_t fnv1a(std::string_view bytes) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : bytes) hash = (hash ^ c) * 1099511628211ULL;
  return hash;
}

void put_u64(std::string& out, std::uint64_t value) {
  char bytes[8];
  std::memcpy(bytes, &value, 8);
  out.append(bytes, 8);
}

std::uint64_t get_u64(std::string_view in, std::size_t at) {
  std::uint64_t value = 0;
  std::memcpy(&value, in.data() + at, 8);
  return value;
}

}  // namespace

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
  const std::string header_text = header.dump();
  std::string bytes(kMagic);
  put_u64(bytes, header_text.size());
  bytes += header_text;
  put_u64(bytes, payload.str().size());
  bytes += payload.str();
  put_u64(bytes, fnv1a(bytes));
  write_file_atomic(path, bytes);
}

Checkpoint read_checkpoint(const std::filesystem::path& path) {
  if (!path_exists(path)) fail("checkpoint {} does not exist", path.string());
  return parse_checkpoint(read_file(path), path);
}

Checkpoint parse_checkpoint(std::string_view view, const std::filesystem::path& path) {
  const auto corrupt = [&](const char* why) { fail("checkpoint {} is corrupt or truncated ({})", path.string(), why); };
  if (!view.starts_with(kMagic)) corrupt("not a tom-rl checkpoint");
  std::size_t at = kMagic.size();
  if (view.size() < at + 8 + 8) corrupt("too short");
  const std::uint64_t stored_hash = get_u64(view, view.size() - 8);
  if (fnv1a(view.substr(0, view.size() - 8)) != stored_hash) corrupt("checksum mismatch");
  const std::uint64_t header_size = get_u64(view, at);
  at += 8;
  if (header_size > view.size() - at - 16) corrupt("bad header size");
  Checkpoint checkpoint;
  checkpoint.path = path;
  try {
    checkpoint.header = nlohmann::json::parse(view.substr(at, header_size));
  } catch (const nlohmann::json::exception&) {
    corrupt("unreadable header");
  }
  at += header_size;
  const std::uint64_t payload_size = get_u64(view, at);
  at += 8;
  if (payload_size != view.size() - at - 8) corrupt("bad payload size");
  checkpoint.payload.assign(view.substr(at, payload_size));
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

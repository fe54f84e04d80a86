#include "tom/runs/checkpoint_file.hpp"

#include <cstring>

#include "tom/core/error.hpp"

namespace tom::runs {
namespace {

constexpr std::string_view kMagic = "TOMRL-CHECKPOINT-1\n";

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

std::uint64_t checkpoint_checksum(std::string_view bytes) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : bytes) hash = (hash ^ c) * 1099511628211ULL;
  return hash;
}

std::string checkpoint_file_bytes(const nlohmann::json& header, std::string_view payload) {
  const std::string header_text = header.dump();
  std::string bytes(kMagic);
  put_u64(bytes, header_text.size());
  bytes += header_text;
  put_u64(bytes, payload.size());
  bytes += payload;
  put_u64(bytes, checkpoint_checksum(bytes));
  return bytes;
}

CheckpointFile parse_checkpoint_file(std::string_view view, const std::string& name) {
  const auto corrupt = [&](const char* why) { fail("checkpoint {} is corrupt or truncated ({})", name, why); };
  if (!view.starts_with(kMagic)) corrupt("not a tom-rl checkpoint");
  std::size_t at = kMagic.size();
  if (view.size() < at + 8 + 8 + 8) corrupt("too short");
  if (checkpoint_checksum(view.substr(0, view.size() - 8)) != get_u64(view, view.size() - 8))
    corrupt("checksum mismatch");
  const std::uint64_t header_size = get_u64(view, at);
  at += 8;
  if (header_size > view.size() - at - 16) corrupt("bad header size");
  CheckpointFile file;
  try {
    file.header = nlohmann::json::parse(view.substr(at, header_size));
  } catch (const nlohmann::json::exception&) {
    corrupt("unreadable header");
  }
  if (!file.header.is_object()) corrupt("the header is not a JSON object");
  at += header_size;
  const std::uint64_t payload_size = get_u64(view, at);
  at += 8;
  if (payload_size != view.size() - at - 8) corrupt("bad payload size");
  file.payload.assign(view.substr(at, payload_size));
  return file;
}

}  // namespace tom::runs

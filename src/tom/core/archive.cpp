#include "tom/core/archive.hpp"

#include <cstring>
#include <sstream>

#include <torch/torch.h>

#include "tom/core/error.hpp"

namespace tom {

torch::Tensor read_tensor(torch::serialize::InputArchive& archive, const std::string& key, const char* what) {
  torch::Tensor tensor;
  if (!archive.try_read(key, tensor)) fail("{} checkpoint has no entry '{}'", what, key);
  return tensor;
}

torch::serialize::InputArchive reread(torch::serialize::OutputArchive& archive) {
  std::stringstream bytes;
  archive.save_to(bytes);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  return in;
}

void write_int(torch::serialize::OutputArchive& archive, const std::string& key, std::int64_t value) {
  archive.write(key, torch::tensor(value, torch::kInt64));
}

std::int64_t read_int(torch::serialize::InputArchive& archive, const std::string& key, const char* what) {
  const auto tensor = read_tensor(archive, key, what);
  if (tensor.numel() != 1 || tensor.scalar_type() != torch::kInt64)
    fail("{} checkpoint entry '{}' is not an integer", what, key);
  return tensor.item<std::int64_t>();
}

void write_double(torch::serialize::OutputArchive& archive, const std::string& key, double value) {
  archive.write(key, torch::tensor(value, torch::kFloat64));
}

double read_double(torch::serialize::InputArchive& archive, const std::string& key, const char* what) {
  const auto tensor = read_tensor(archive, key, what);
  if (tensor.numel() != 1 || tensor.scalar_type() != torch::kFloat64)
    fail("{} checkpoint entry '{}' is not a number", what, key);
  return tensor.item<double>();
}

std::vector<double> read_doubles(torch::serialize::InputArchive& archive, const std::string& key,
                                 std::int64_t count, const char* what) {
  const auto tensor = read_tensor(archive, key, what);
  if (!tensor.is_floating_point() || tensor.numel() != count)
    fail("{} checkpoint entry '{}' has {} values, expected {}", what, key, tensor.numel(), count);
  const auto values = tensor.contiguous().to(torch::kFloat64);
  return {values.data_ptr<double>(), values.data_ptr<double>() + count};
}

void write_string(torch::serialize::OutputArchive& archive, const std::string& key, const std::string& value) {
  auto bytes = torch::empty({static_cast<std::int64_t>(value.size())}, torch::kUInt8);
  std::memcpy(bytes.data_ptr(), value.data(), value.size());
  archive.write(key, bytes);
}

std::string read_string(torch::serialize::InputArchive& archive, const std::string& key, const char* what) {
  const auto bytes = read_tensor(archive, key, what).contiguous();
  if (bytes.scalar_type() != torch::kUInt8 || bytes.dim() != 1)
    fail("{} checkpoint entry '{}' is not a byte string", what, key);
  return {reinterpret_cast<const char*>(bytes.data_ptr()), static_cast<std::size_t>(bytes.numel())};
}

}  // namespace tom

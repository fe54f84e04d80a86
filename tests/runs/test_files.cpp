#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <torch/torch.h>

#include "tom/core/error.hpp"
#include "tom/runs/checkpoint.hpp"
#include "tom/runs/files.hpp"

namespace fs = std::filesystem;

namespace {

fs::path temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("tom_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void save_tensor(torch::serialize::OutputArchive& archive) { archive.write("x", torch::arange(10)); }

}  // namespace

TEST(Files, AtomicWriteReplacesWholeFileAndLeavesNoTemporaries) {
  const auto dir = temp_dir("atomic");
  tom::runs::write_file_atomic(dir / "a.txt", "first");
  tom::runs::write_file_atomic(dir / "a.txt", "second");
  EXPECT_EQ(tom::runs::read_file(dir / "a.txt"), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

TEST(Checkpoint, RoundTripKeepsHeaderAndState) {
  const auto dir = temp_dir("ckpt");
  tom::runs::write_checkpoint(dir / "c.pt", {{"step", 5}}, save_tensor);
  const auto checkpoint = tom::runs::read_checkpoint(dir / "c.pt");
  EXPECT_EQ(checkpoint.header["step"], 5);
  torch::Tensor x;
  checkpoint.load([&](torch::serialize::InputArchive& archive) { archive.read("x", x); });
  EXPECT_TRUE(torch::equal(x, torch::arange(10)));
}

TEST(Checkpoint, TruncatedCorruptMissingAndForeignFilesAreRejected) {
  const auto dir = temp_dir("bad_ckpt");
  tom::runs::write_checkpoint(dir / "c.pt", {{"step", 5}}, save_tensor);
  const std::string bytes = tom::runs::read_file(dir / "c.pt");
  const auto expect_error = [&](const std::string& contents, const std::string& fragment) {
    std::ofstream(dir / "bad.pt", std::ios::binary) << contents;
    try {
      tom::runs::read_checkpoint(dir / "bad.pt");
      ADD_FAILURE() << "accepted a bad checkpoint: " << fragment;
    } catch (const tom::Error& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error(bytes.substr(0, bytes.size() / 2), "truncated");
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x5a;
  expect_error(flipped, "checksum");
  expect_error("hello", "not a tom-rl checkpoint");
  expect_error("", "not a tom-rl checkpoint");
  EXPECT_THROW(tom::runs::read_checkpoint(dir / "absent.pt"), tom::Error);
  // A valid file whose archive lacks what the reader expects.
  const auto checkpoint = tom::runs::read_checkpoint(dir / "c.pt");
  EXPECT_THROW(checkpoint.load([](torch::serialize::InputArchive& archive) {
    torch::Tensor y;
    archive.read("y", y);
  }),
               tom::Error);
}

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <torch/torch.h>

#include "tom/core/archive.hpp"
#include "tom/core/error.hpp"
#include "tom/runs/checkpoint.hpp"
#include "tom/runs/files.hpp"
#include "../support.hpp"

namespace fs = std::filesystem;

namespace {

using tom::test::temp_dir;


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

TEST(Archive, ScalarsStringsAndNumberListsRoundTripAndWrongEntriesAreNamed) {
  torch::serialize::OutputArchive out;
  tom::write_int(out, "steps", 42);
  tom::write_double(out, "rate", 0.25);
  tom::write_string(out, "name", "tom");
  out.write("figures", torch::tensor({1.5, -2.0, 3.0}, torch::kFloat64));
  out.write("floats", torch::tensor({0.5f, 4.0f}));
  out.write("labels", torch::arange(3));
  std::stringstream bytes;
  out.save_to(bytes);
  torch::serialize::InputArchive in;
  in.load_from(bytes);
  EXPECT_EQ(tom::read_int(in, "steps", "T"), 42);
  EXPECT_EQ(tom::read_double(in, "rate", "T"), 0.25);
  EXPECT_EQ(tom::read_string(in, "name", "T"), "tom");
  EXPECT_EQ(tom::read_doubles(in, "figures", 3, "T"), (std::vector<double>{1.5, -2.0, 3.0}));
  EXPECT_EQ(tom::read_doubles(in, "floats", 2, "T"), (std::vector<double>{0.5, 4.0}));
  const auto message = [&](const char* key, std::int64_t count) {
    try {
      tom::read_doubles(in, key, count, "T");
    } catch (const tom::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("figures", 4).find("'figures' has 3 values, expected 4"), std::string::npos);
  EXPECT_NE(message("labels", 3).find("'labels' has 3 values, expected 3"), std::string::npos);  // integers
  EXPECT_NE(message("absent", 1).find("absent"), std::string::npos);
}

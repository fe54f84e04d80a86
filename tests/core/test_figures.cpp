// Named figures: the one list behind metrics.csv columns and checkpointed counters.
#include <gtest/gtest.h>

#include <cstdint>

#include "../support.hpp"
#include "tom/core/archive.hpp"
#include "tom/core/figures.hpp"

namespace tom {
namespace {

struct Counters {
  double seconds = 0;
  std::int64_t updates = 0;
  int epochs = 0;
  template <class V>
  void visit(V& v) {
    v("time_s", seconds);
    v("updates", updates);
    v("epochs", epochs);
  }
};

// Other versions' lists: one figure fewer, and a count stored as a fraction.
struct Fewer {
  double seconds = 0;
  template <class V>
  void visit(V& v) {
    v("time_s", seconds);
  }
};
struct Fractional {
  double updates = 2.5;
  template <class V>
  void visit(V& v) {
    v("updates", updates);
  }
};
struct Whole {
  std::int64_t updates = 0;
  template <class V>
  void visit(V& v) {
    v("updates", updates);
  }
};

TEST(Figures, KeepNamesWithTheirValuesInOrder) {
  Figures figures;
  figures("first", 1.5);
  figures.add(Counters{2.5, 7, 3});
  EXPECT_EQ(figures.names(), (std::vector<std::string>{"first", "time_s", "updates", "epochs"}));
  EXPECT_EQ(figures.values(), (std::vector<double>{1.5, 2.5, 7.0, 3.0}));
  EXPECT_NE(test::error_of([&] { figures("updates", 1.0); }).find("'updates' is named twice"), std::string::npos);
}

TEST(Figures, SaveAndLoadByName) {
  torch::serialize::OutputArchive out;
  save_fields(out, "counters", Counters{0.25, (std::int64_t{1} << 40) + 3, 12});
  auto in = reread(out);
  Counters loaded;
  load_fields(in, "counters", loaded, "test");
  EXPECT_EQ(loaded.seconds, 0.25);
  EXPECT_EQ(loaded.updates, (std::int64_t{1} << 40) + 3);
  EXPECT_EQ(loaded.epochs, 12);
}

// A figure missing from the checkpoint (another version's list) or of the wrong kind is
// named in the error, never read as a default.
TEST(Figures, LoadRefusesMissingOrMalformedFigures) {
  torch::serialize::OutputArchive out;
  save_fields(out, "counters", Fewer{1.5});
  auto in = reread(out);
  Counters loaded;
  EXPECT_NE(test::error_of([&] { load_fields(in, "counters", loaded, "test"); }).find("no figure 'updates'"),
            std::string::npos);
  EXPECT_NE(test::error_of([&] { load_fields(in, "other", loaded, "test"); }).find("no entry 'other'"),
            std::string::npos);

  torch::serialize::OutputArchive bad;
  save_fields(bad, "counters", Fractional{});
  auto bad_in = reread(bad);
  Whole whole;
  EXPECT_NE(test::error_of([&] { load_fields(bad_in, "counters", whole, "test"); }).find("not a whole number"),
            std::string::npos);
}

}  // namespace
}  // namespace tom

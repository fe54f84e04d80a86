// End-to-end: `tom verify-weights` prints one error line per dual form and names bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "run_util.hpp"

namespace fs = std::filesystem;
using tom::test::run_tom;

namespace {

std::string read_all(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(VerifyWeights, PrintsOneErrorLinePerForm) {
  const fs::path log = tom::test::fresh_dir("verify") += ".log";
  ASSERT_EQ(run_tom({"verify-weights", "--states", "4", "--actions", "2", "--seed", "3", "--steps", "50",
                     "--hidden", "8", "--schedule", "fixed", "--forms", "conjugate-exact", "minimax"},
                    log),
            0)
      << read_all(log);
  const std::string out = read_all(log);
  EXPECT_NE(out.find("finite MDP: 4 states, 2 actions, deterministic transitions, seed 3"), std::string::npos) << out;
  for (const char* form : {"conjugate-exact", "minimax"}) {
    const std::regex line(std::string("\n") + form +
                          ": max rel err [0-9.e+-]+, mean rel err [0-9.e+-]+, weighted L1 [0-9.e+-]+ "
                          "\\(lr [0-9.e+-]+, [0-9]+ steps, last weight change [0-9.e+-]+\\)\n");
    EXPECT_TRUE(std::regex_search(out, line)) << form << " line missing in:\n" << out;
  }
  EXPECT_NE(out.find("(lr 0.0005, 100 steps,"), std::string::npos) << "minimax's scaled lr and steps: " << out;
  // The default converge schedule stops within the budget.
  ASSERT_EQ(run_tom({"verify-weights", "--states", "4", "--actions", "2", "--seed", "3", "--steps", "300", "--hidden", "8",
                     "--forms", "conjugate-exact"},
                    log),
            0);
  std::smatch steps;
  const std::string converged = read_all(log);
  ASSERT_TRUE(std::regex_search(converged, steps, std::regex("\\(lr 0.002, ([0-9]+) steps,"))) << converged;
  EXPECT_GT(std::stoi(steps[1]), 0);
  EXPECT_LE(std::stoi(steps[1]), 300);
}

TEST(VerifyWeights, NamesBadInput) {
  const fs::path log = tom::test::fresh_dir("verify_bad") += ".log";
  EXPECT_NE(run_tom({"verify-weights", "--forms", "conjugate-k7"}, log), 0);
  EXPECT_NE(read_all(log).find("unknown dual form 'conjugate-k7'"), std::string::npos) << read_all(log);
  EXPECT_NE(run_tom({"verify-weights", "--states", "0"}, log), 0);
  EXPECT_NE(read_all(log).find("--states"), std::string::npos) << read_all(log);
  EXPECT_NE(run_tom({"verify-weights", "--lr", "nan"}, log), 0);
  EXPECT_NE(read_all(log).find("lr"), std::string::npos) << read_all(log);
  EXPECT_NE(run_tom({"verify-weights", "--schedule", "cosine"}, log), 0);
  EXPECT_NE(read_all(log).find("schedule"), std::string::npos) << read_all(log);
  EXPECT_NE(run_tom({"verify-weights", "--states", "15", "--actions", "4", "--seed", "0", "--forms", "minimax",
                     "--lr", "0.02", "--steps", "3000"},
                    log),
            0);
  EXPECT_NE(read_all(log).find("minimax: TOM dual diverged"), std::string::npos) << read_all(log);
}

}  // namespace

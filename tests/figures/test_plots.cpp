// `tom plot`'s library: every figure is produced by gnuplot as a valid image of the
// requested size, and the data gnuplot drew equals what the run directories hold.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tom/core/error.hpp"
#include "tom/figures/plots.hpp"
#include "tom/results/reference_curves.hpp"
#include "../support.hpp"

namespace fs = std::filesystem;
using namespace tom::runs;

namespace {

using tom::test::write_text;

bool have_gnuplot() { return std::system("gnuplot --version > /dev/null 2>&1") == 0; }

// An MBPO-like run to `last_step`: returns 100*objective_offset + 10*seed + step/100; fresh
// MSE falls; phases grow.
fs::path make_run(const fs::path& root, const std::string& env, const std::string& objective, int seed,
                  int last_step = 5000) {
  const fs::path dir = root / (env + "_" + objective + "_seed" + std::to_string(seed));
  write_text(dir / "config.toml", "[run]\nalgo = \"mbpo\"\nenv = \"" + env + "\"\nseed = " + std::to_string(seed) +
                                 "\n\n[objective]\nname = \"" + objective + "\"\n");
  std::string csv = "step,wall_s,eval_return_mean,model_fresh_mse,time_env_s,time_model_fit_s\n";
  const double offset = objective == "tom" ? 100 : 0;
  for (int step = 1000; step <= last_step; step += 1000)
    csv += fmt::format("{},{},{},{},{},{}\n", step, step / 100.0, offset + 10 * seed + step / 100.0,
                       step == 1000 ? std::string("nan") : fmt::format("{}", 1.0 / step), step / 1000.0,
                       2.0 * step / 1000.0);
  write_text(dir / "metrics.csv", csv);
  std::string weights = "step";
  for (int b = 0; b < 4; ++b) weights += fmt::format(",bin_{}", b);
  weights += "\n";
  for (int step = 249; step < 5000; step += 250) {
    weights += std::to_string(step);
    for (int b = 0; b < 4; ++b) weights += fmt::format(",{}", objective == "tom" ? 0.25 + 0.5 * b : 1.0);
    weights += "\n";
  }
  write_text(dir / "weights.csv", weights);
  return dir;
}

// Blocks of a gnuplot data file (separated by two blank lines), each a list of numeric rows.
std::vector<std::vector<std::vector<double>>> read_blocks(const fs::path& file) {
  std::ifstream in(file);
  std::vector<std::vector<std::vector<double>>> blocks(1);
  std::string line;
  int blank = 0;
  while (std::getline(in, line)) {
    if (line.empty()) {
      if (++blank == 2 && !blocks.back().empty()) blocks.emplace_back();
      continue;
    }
    blank = 0;
    if (line[0] == '#') continue;
    std::istringstream cells(line);
    std::vector<double> row;
    std::string cell;
    while (cells >> cell) row.push_back(std::stod(cell));
    blocks.back().push_back(row);
  }
  if (blocks.back().empty()) blocks.pop_back();
  return blocks;
}

fs::path temp_root(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("tom_plots_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

}  // namespace

TEST(Plots, EveryFigureIsAnImageOfTheRightSizeWhoseDataMatchesTheCsv) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (apt-get install gnuplot-nox)";
  const fs::path root = temp_root("all");
  for (int s = 0; s < 2; ++s) make_run(root / "runs", "inverted_pendulum", "mle", s), make_run(root / "runs", "inverted_pendulum", "tom", s);
  const auto runs = find_runs({root / "runs"});
  for (const std::string format : {"png", "svg"}) {
    PlotOptions o;
    o.out_dir = root / ("plots_" + format);
    o.format = format;
    o.width = 640;
    o.height = 400;
    const auto report = make_plots(runs, {"all"}, o);
    ASSERT_EQ(report.files.size(), 1u + 4u + 1u + 1u);  // curves, 4 heatmaps, model error, phase times
    for (const auto& f : report.files) {
      ASSERT_TRUE(fs::exists(f.image)) << f.image;
      EXPECT_EQ(image_size(f.image), std::make_pair(640, 400)) << f.image;
      EXPECT_GT(fs::file_size(f.image), 1000u) << f.image;
    }
  }
  const fs::path dir = root / "plots_png";
  // Learning curves: arm mle (block 0) and tom (block 1); mean over seeds 0 and 1 = offset + 5 + step/100.
  const auto curves = read_blocks(dir / "curves_inverted_pendulum.dat");
  ASSERT_EQ(curves.size(), 2u);
  for (std::size_t arm = 0; arm < 2; ++arm) {
    ASSERT_EQ(curves[arm].size(), 5u);
    for (const auto& row : curves[arm]) {
      const double step = row[0], expected = (arm == 1 ? 100 : 0) + 5 + step / 100.0;
      EXPECT_DOUBLE_EQ(row[1], expected);
      EXPECT_LE(row[2], expected);  // band holds the mean, within the two seeds' values
      EXPECT_GE(row[3], expected);
      EXPECT_GE(row[2], expected - 5);
      EXPECT_LE(row[3], expected + 5);
      EXPECT_EQ(row[4], 2);
    }
  }
  // Heatmap: every (bin, step, weight) of weights.csv.
  const auto heat = read_blocks(dir / "weights_inverted_pendulum_tom_seed1.dat");
  ASSERT_EQ(heat.size(), 1u);
  ASSERT_EQ(heat[0].size(), 20u * 4u);  // fits at 249, 499, ..., 4999
  for (const auto& row : heat[0]) EXPECT_DOUBLE_EQ(row[2], 0.25 + 0.5 * row[0]);
  EXPECT_EQ(heat[0].front()[1], 249);
  EXPECT_EQ(heat[0].back()[1], 4999);
  // Model error: the NaN row before the first fit is left out, the rest are 1/step.
  const auto mse = read_blocks(dir / "model_error.dat");
  ASSERT_EQ(mse.size(), 4u);
  ASSERT_EQ(mse[0].size(), 4u);
  for (const auto& row : mse[0]) EXPECT_DOUBLE_EQ(row[1], 1.0 / row[0]);
  // Phase times: the last row's seconds, mean over seeds: env 5, model fit 10, wall 50.
  std::ifstream phases(dir / "phase_times.dat");
  std::string header, line;
  std::getline(phases, header);
  std::getline(phases, line);
  EXPECT_EQ(line, "\"objective.name=mle\" 5 10 50");
  fs::remove_all(root);
}

TEST(Plots, ReferenceCurveIsThePublishedOneAndMissingOnesAreNamed) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (apt-get install gnuplot-nox)";
  const auto curve = published_curve("mbpo", "hopper");
  ASSERT_GT(curve.size(), 100u);
  EXPECT_EQ(curve[0], std::make_pair(0.0, 10.9));
  EXPECT_EQ(curve[1], std::make_pair(6019.0, 166.6));
  EXPECT_FALSE(published_curve("sac", "walker2d-v5").empty());
  EXPECT_TRUE(published_curve("mbpo", "inverted_pendulum").empty());

  const fs::path root = temp_root("ref");
  make_run(root / "runs", "hopper", "mle", 0);
  make_run(root / "runs", "inverted_pendulum", "mle", 0);
  PlotOptions o;
  o.out_dir = root / "plots";
  o.reference = "mbpo";
  const auto report = make_plots(find_runs({root / "runs"}), {"curves"}, o);
  ASSERT_EQ(report.files.size(), 2u);
  const auto blocks = read_blocks(root / "plots" / "curves_hopper.dat");
  ASSERT_EQ(blocks.size(), 2u);  // the run's arm, then the published curve up to one point past step 5000
  ASSERT_EQ(blocks[1].size(), 2u);
  EXPECT_EQ(blocks[1][1][0], 6019);
  EXPECT_DOUBLE_EQ(blocks[1][1][1], 166.6);
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_NE(report.notes[0].find("no published mbpo curve for inverted_pendulum"), std::string::npos);
  fs::remove_all(root);
}

// A run that stopped early gets one note naming the steps it lacks, not one per step.
TEST(Plots, ARunShortOfItsArmsStepsIsNamedOnce) {
  if (!have_gnuplot()) GTEST_SKIP() << "gnuplot is not installed (apt-get install gnuplot-nox)";
  const fs::path root = temp_root("short");
  make_run(root / "runs", "hopper", "mle", 0);
  const fs::path short_run = make_run(root / "runs", "hopper", "mle", 1, 2000);
  PlotOptions o;
  o.out_dir = root / "plots";
  const auto report = make_plots(find_runs({root / "runs"}), {"curves"}, o);
  ASSERT_EQ(report.notes.size(), 1u);
  EXPECT_NE(report.notes[0].find(short_run.string() + " has no evaluation at 3 of the arm's steps (3000, 4000, 5000)"),
            std::string::npos)
      << report.notes[0];
  const auto blocks = read_blocks(root / "plots" / "curves_hopper.dat");
  ASSERT_EQ(blocks[0].size(), 5u);
  EXPECT_EQ(blocks[0][4][4], 1);  // n at step 5000
  // The key says where the arm loses its seed, not the arm's full count throughout.
  std::ifstream script(root / "plots" / "curves_hopper.gp");
  const std::string text{std::istreambuf_iterator<char>(script), {}};
  EXPECT_NE(text.find(" (n=2 to 2000, then 1)"), std::string::npos) << text;
  fs::remove_all(root);
}

TEST(Plots, BadRequestsAreErrorsNamingTheProblem) {
  const fs::path root = temp_root("bad");
  make_run(root / "runs", "hopper", "mle", 0);
  const auto runs = find_runs({root / "runs"});
  PlotOptions o;
  o.out_dir = root / "plots";
  const auto message = [&](const std::vector<std::string>& kinds, const PlotOptions& opt) {
    try {
      make_plots(runs, kinds, opt);
    } catch (const tom::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"nonsense"}, o).find("unknown figure 'nonsense'"), std::string::npos);
  auto bad = o;
  bad.format = "jpg";
  EXPECT_NE(message({"curves"}, bad).find("--format must be png or svg"), std::string::npos);
  bad = o;
  bad.reference = "ppo";
  EXPECT_NE(message({"curves"}, bad).find("--reference must be mbpo or sac"), std::string::npos);
  bad = o;
  bad.metric = "nope";
  EXPECT_NE(message({"curves"}, bad).find("has no column 'nope'"), std::string::npos);
  fs::remove(root / "runs" / "hopper_mle_seed0" / "weights.csv");
  EXPECT_NE(message({"weights"}, o).find("no run has weights.csv"), std::string::npos);
  write_text(root / "x.txt", "hello");
  EXPECT_THROW(image_size(root / "x.txt"), tom::Error);
  fs::remove_all(root);
}

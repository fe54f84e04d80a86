// `tom compare`'s library: reading run directories, arms, the table and its errors,
// on small run directories written here with values worked out by hand.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "tom/core/error.hpp"
#include "tom/runs/config.hpp"
#include "tom/results/compare.hpp"
#include "tom/results/report.hpp"
#include "../support.hpp"

namespace fs = std::filesystem;
using namespace tom::runs;

namespace {

using tom::test::temp_dir;
using tom::test::write_text;

// A run directory with the given objective and seed and rows "step,return".
fs::path make_run(const fs::path& root, const std::string& objective, int seed,
                  const std::vector<std::pair<int, double>>& rows, const std::string& env = "inverted_pendulum") {
  const fs::path dir = root / (env + "_" + objective + "_seed" + std::to_string(seed));
  write_text(dir / "config.toml", "[run]\nalgo = \"mbpo\"\nenv = \"" + env + "\"\nseed = " + std::to_string(seed) +
                                 "\nthreads = " + std::to_string(1 + seed) + "\nsteps = 300\n\n[provenance]\nrevision = \"aaaaaaaaaaaa\"\n\n[objective]\nname = \"" +
                                 objective + "\"\n\n[tom]\nrecent_pool = 1000\n");
  std::string csv = "step,wall_s,eval_return_mean,eval_return_std\n";
  for (const auto& [step, ret] : rows) csv += std::to_string(step) + ",1.5," + fmt::format("{}", ret) + ",0\n";
  write_text(dir / "metrics.csv", csv);
  return dir;
}

// mle seed s: 10+s, 20+s, 30+s; tom seed s: 10+s, 40+s, 60+s at steps 100, 200, 300.
fs::path make_two_arms(const std::string& name) {
  const fs::path root = temp_dir(name);
  for (int s = 0; s < 3; ++s) {
    make_run(root / "sweep", "mle", s, {{100, 10 + s}, {200, 20 + s}, {300, 30 + s}});
    make_run(root / "sweep", "tom", s, {{100, 10 + s}, {200, 40 + s}, {300, 60 + s}});
  }
  return root;
}

const CompareRow& row_of(const CompareResult& r, const std::string& arm, const std::string& quantity,
                         std::int64_t step) {
  for (const auto& row : r.rows)
    if (row.arm == arm && row.quantity == quantity && (quantity == "auc" || row.step == step)) return row;
  throw std::runtime_error("no row " + arm + " " + quantity + " " + std::to_string(step));
}

}  // namespace

TEST(ResultsCompare, ReadsRunsAndGroupsSeedsIntoArms) {
  const fs::path root = make_two_arms("arms");
  const auto runs = find_runs({root / "sweep"});
  ASSERT_EQ(runs.size(), 6u);
  const auto arms = group_into_arms(runs);
  ASSERT_EQ(arms.size(), 2u);  // seeds and threads differ inside an arm, not between
  EXPECT_EQ(arms[0].label, "objective.name=mle");
  EXPECT_EQ(arms[1].label, "objective.name=tom");
  ASSERT_EQ(arms[0].runs.size(), 3u);
  EXPECT_EQ(arms[0].runs[2]->seed, 2);
  EXPECT_EQ(arms[0].settings.count("run.seed"), 0u);
  EXPECT_EQ(arms[0].settings.at("tom.recent_pool"), "1000");
  const auto sel = parse_selector("name=mle", arms);
  EXPECT_EQ(sel.at("objective.name"), "mle");
  EXPECT_EQ(counterpart(arms[1], sel, arms), &arms[0]);
  EXPECT_THROW(parse_selector("nosuch=1", arms), tom::Error);
  EXPECT_THROW(parse_selector("objective.name", arms), tom::Error);
  fs::remove_all(root);
}

// A run written before a setting existed has no line for it: read as `--resume` would run
// it (resumed_settings), it joins the arm of the runs that wrote the setting at that value,
// and stays apart from runs that set it otherwise.
TEST(ResultsCompare, SettingsAnOlderVersionDidNotWriteTakeTheirResumedValues) {
  const fs::path root = temp_dir("older_runs");
  const fs::path older = make_run(root, "tom", 0, {{100, 1}});  // no [tom] reference_steps line
  const fs::path newer = make_run(root, "tom", 1, {{100, 2}});
  const fs::path other = make_run(root, "tom", 2, {{100, 3}});
  const auto append = [](const fs::path& file, const std::string& line) { std::ofstream(file, std::ios::app) << line; };
  append(newer / "config.toml", "reference_steps = 0\n");  // in the [tom] table, the file's last
  append(other / "config.toml", "reference_steps = 500\n");
  EXPECT_EQ(group_into_arms(find_runs({older, newer})).size(), 2u);  // the raw files differ
  const auto runs = find_runs({older, newer, other}, resumed_settings);
  EXPECT_EQ(runs[0].settings.at("tom.reference_steps"), "0");
  const auto arms = group_into_arms(runs);
  ASSERT_EQ(arms.size(), 2u);
  EXPECT_EQ(arms[0].runs.size(), 2u);  // seeds 0 and 1
  EXPECT_EQ(arms[1].runs.size(), 1u);
  // A config this version cannot load keeps its own keys.
  append(older / "config.toml", "no_such_key = 1\n");
  EXPECT_EQ(find_runs({older}, resumed_settings)[0].settings.count("tom.reference_steps"), 0u);
  fs::remove_all(root);
}

// A binary that knows more settings fills them in for older runs (resumed_settings); the
// bootstrap intervals of those runs stay what a binary that did not know them printed,
// because a row's seed comes only from the settings the runs recorded.
TEST(ResultsCompare, IntervalsDoNotMoveWhenALaterVersionKnowsMoreSettings) {
  // Eight seeds of scattered values, so that the percentiles depend on the resamples.
  const fs::path root = temp_dir("later_version");
  for (int s = 0; s < 8; ++s) {
    make_run(root / "sweep", "mle", s, {{100, (s * 37) % 11 + 0.1 * s}});
    make_run(root / "sweep", "tom", s, {{100, (s * 53) % 13 + 0.3 * s}});
  }
  CompareOptions options;
  options.baseline = "objective.name=mle";
  const auto as_written = compare_runs(find_runs({root / "sweep"}), options);
  const auto filled_in = compare_runs(find_runs({root / "sweep"}, resumed_settings), options);
  EXPECT_GT(filled_in.arm_settings[0].size(), as_written.arm_settings[0].size() + 10);
  ASSERT_EQ(as_written.rows.size(), filled_in.rows.size());
  for (std::size_t i = 0; i < as_written.rows.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(as_written.rows[i].ci.low, filled_in.rows[i].ci.low);
    EXPECT_EQ(as_written.rows[i].ci.high, filled_in.rows[i].ci.high);
    EXPECT_EQ(as_written.rows[i].diff_ci.low, filled_in.rows[i].diff_ci.low);
    EXPECT_EQ(as_written.rows[i].diff_ci.high, filled_in.rows[i].diff_ci.high);
  }
  fs::remove_all(root);
}

TEST(ResultsCompare, TableHasHandComputedStatisticsAndBaselineDifference) {
  const fs::path root = make_two_arms("table");
  CompareOptions options;
  options.baseline = "objective.name=mle";
  const auto result = compare_runs(find_runs({root / "sweep"}), options);
  EXPECT_EQ(result.steps, (std::vector<std::int64_t>{100, 200, 300}));
  EXPECT_TRUE(result.notes.empty());
  const auto& mle300 = row_of(result, "objective.name=mle", "eval_return_mean", 300);
  EXPECT_EQ(mle300.n, 3);
  EXPECT_DOUBLE_EQ(mle300.mean, 31.0);
  EXPECT_DOUBLE_EQ(mle300.iqm, 31.0);
  EXPECT_GE(mle300.ci.low, 30.0);
  EXPECT_LE(mle300.ci.high, 32.0);
  EXPECT_FALSE(mle300.diff.has_value());  // the baseline itself
  const auto& tom300 = row_of(result, "objective.name=tom", "eval_return_mean", 300);
  EXPECT_DOUBLE_EQ(tom300.iqm, 61.0);
  ASSERT_TRUE(tom300.diff.has_value());
  EXPECT_DOUBLE_EQ(*tom300.diff, 30.0);
  EXPECT_GE(tom300.diff_ci.low, 28.0);
  EXPECT_LE(tom300.diff_ci.low, 30.0);
  EXPECT_GE(tom300.diff_ci.high, 30.0);
  EXPECT_LE(tom300.diff_ci.high, 32.0);
  const auto& tom100 = row_of(result, "objective.name=tom", "eval_return_mean", 100);
  EXPECT_DOUBLE_EQ(*tom100.diff, 0.0);
  // AUC per seed: mle (15*100 + 25*100)/200 + s = 20 + s; tom (25*100 + 50*100)/200 + s = 37.5 + s.
  const auto& mle_auc = row_of(result, "objective.name=mle", "auc", 0);
  EXPECT_DOUBLE_EQ(mle_auc.iqm, 21.0);
  EXPECT_EQ(mle_auc.step, 300);
  const auto& tom_auc = row_of(result, "objective.name=tom", "auc", 0);
  EXPECT_DOUBLE_EQ(tom_auc.iqm, 38.5);
  EXPECT_DOUBLE_EQ(*tom_auc.diff, 17.5);

  const std::string md = to_markdown(result);
  EXPECT_NE(md.find("| objective.name=tom | 300 | 3 | 61.00 | 61.00 |"), std::string::npos) << md;
  EXPECT_NE(md.find("AUC to 300"), std::string::npos);
  const std::string csv = to_csv(result);
  EXPECT_EQ(csv.substr(0, csv.find('\n')),
            "arm,quantity,step,n,mean,iqm,ci_low,ci_high,baseline,diff_iqm,diff_ci_low,diff_ci_high,welch_t,welch_df,"
            "welch_p");
  // tom 60, 61, 62 against mle 30, 31, 32 at step 300: t = 30 / sqrt(2/3) on 4 degrees of freedom.
  const auto& at_end = row_of(result, "objective.name=tom", "eval_return_mean", 300);
  ASSERT_TRUE(at_end.welch.has_value());
  EXPECT_NEAR(at_end.welch->t, 30 / std::sqrt(2.0 / 3.0), 1e-9);
  EXPECT_NEAR(at_end.welch->df, 4.0, 1e-9);
  EXPECT_NE(md.find("| < 0.001 |"), std::string::npos) << md;
  EXPECT_NE(csv.find("\"objective.name=tom\",eval_return_mean,300,3,61,61,"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\"objective.name=tom\",auc,300,3,38.5,38.5,"), std::string::npos) << csv;
  fs::remove_all(root);
}

TEST(ResultsCompare, MissingStepsAreNamedNotInterpolated) {
  const fs::path root = temp_dir("missing");
  make_run(root, "mle", 0, {{100, 1}, {200, 2}, {300, 3}});
  const fs::path gap = make_run(root, "mle", 1, {{100, 5}, {300, 7}});
  const fs::path gap2 = make_run(root, "mle", 2, {{100, 9}, {300, 11}});
  const auto result = compare_runs(find_runs({root}), {});
  const auto& at200 = row_of(result, "mbpo on inverted_pendulum (mle)", "eval_return_mean", 200);
  EXPECT_EQ(at200.n, 1);
  EXPECT_DOUBLE_EQ(at200.mean, 2.0);  // only the run that has it, nothing interpolated
  const auto& auc = row_of(result, "mbpo on inverted_pendulum (mle)", "auc", 0);
  EXPECT_DOUBLE_EQ(auc.mean, (2.0 + 6.0 + 10.0) / 3);  // all over the common steps 100 and 300
  ASSERT_EQ(result.notes.size(), 3u);
  EXPECT_NE(result.notes[0].find(gap.string()), std::string::npos) << result.notes[0];
  EXPECT_NE(result.notes[1].find(gap2.string()), std::string::npos) << result.notes[1];
  for (int i : {0, 1}) {
    EXPECT_NE(result.notes[i].find("no evaluation at step 200"), std::string::npos);
    // Both gaps leave one run at step 200, not "the other 2".
    EXPECT_NE(result.notes[i].find("use the 1 run(s) that have it"), std::string::npos) << result.notes[i];
  }
  EXPECT_NE(result.notes[2].find("different steps"), std::string::npos);
  EXPECT_NE(to_markdown(result).find("nothing is interpolated"), std::string::npos);
  fs::remove_all(root);
}

TEST(ResultsCompare, SmallValuesKeepThreeSignificantDigits) {
  const fs::path root = temp_dir("small");
  for (int s = 0; s < 2; ++s) make_run(root, "mle", s, {{100, 0.00123}, {200, 0.00456}});
  const auto md = to_markdown(compare_runs(find_runs({root}), {}));
  EXPECT_NE(md.find("| 200 | 2 | 0.00456 | 0.00456 |"), std::string::npos) << md;
  fs::remove_all(root);
}

// A per-step row is named by the metric it holds, in the CSV too.
TEST(ResultsCompare, RowsAreNamedByTheirMetric) {
  const fs::path root = temp_dir("named");
  for (int s = 0; s < 2; ++s) make_run(root, "mle", s, {{100, 1.0}, {200, 2.0}});
  CompareOptions options;
  options.metric = "eval_return_std";
  const auto result = compare_runs(find_runs({root}), options);
  EXPECT_EQ(row_of(result, "mbpo on inverted_pendulum (mle)", "eval_return_std", 200).n, 2);
  const std::string csv = to_csv(result);
  EXPECT_NE(csv.find(",eval_return_std,200,2,0,0,"), std::string::npos) << csv;
  EXPECT_EQ(csv.find(",return,"), std::string::npos) << csv;
  fs::remove_all(root);
}

TEST(ResultsCompare, DefaultStepsSpreadOverTheBudgetAndEndAtTheEnd) {
  const fs::path root = temp_dir("default");
  std::vector<std::pair<int, double>> rows;
  for (int s = 100; s <= 1000; s += 100) rows.push_back({s, s / 10.0});
  make_run(root, "mle", 0, rows);
  const auto runs = find_runs({root});
  EXPECT_EQ(default_steps(runs, 10), (std::vector<std::int64_t>{100, 200, 300, 400, 500, 600, 700, 800, 900, 1000}));
  EXPECT_EQ(default_steps(runs, 3), (std::vector<std::int64_t>{300, 700, 1000}));
  EXPECT_EQ(default_steps(runs, 1), (std::vector<std::int64_t>{1000}));
  fs::remove_all(root);
}

TEST(ResultsCompare, BadInputsGiveErrorsNamingTheProblem) {
  const fs::path root = temp_dir("bad");
  const auto message = [](auto&& f) {
    try {
      f();
    } catch (const tom::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { find_runs({root / "nosuch"}); }).find("does not exist"), std::string::npos);
  fs::create_directories(root / "empty");
  EXPECT_NE(message([&] { find_runs({root / "empty"}); }).find("holds no run directory"), std::string::npos);

  const fs::path good = make_run(root / "a", "mle", 0, {{100, 1}, {200, 2}});
  EXPECT_NE(message([&] {
              CompareOptions o;
              o.metric = "no_such_column";
              compare_runs(find_runs({good}), o);
            }).find("has no column 'no_such_column'"),
            std::string::npos);
  EXPECT_NE(message([&] {
              CompareOptions o;
              o.steps = {150};
              compare_runs(find_runs({good}), o);
            }).find("no run has an evaluation at step 150"),
            std::string::npos);

  const fs::path nan_run = make_run(root / "b", "mle", 0, {{100, 1}, {200, std::nan("")}});
  const std::string nan_msg = message([&] { compare_runs(find_runs({nan_run}), {}); });
  EXPECT_NE(nan_msg.find("line 3: column 'eval_return_mean' is empty or NaN"), std::string::npos) << nan_msg;

  const fs::path ragged = make_run(root / "c", "mle", 0, {{100, 1}});
  write_text(ragged / "metrics.csv", "step,eval_return_mean\n100,1\n200\n");
  EXPECT_NE(message([&] { find_runs({ragged}); }).find("line 3: 1 cells where the header has 2 columns"),
            std::string::npos);
  write_text(ragged / "metrics.csv", "step,eval_return_mean\n100,abc\n");
  EXPECT_NE(message([&] { find_runs({ragged}); }).find("holds 'abc', not a number"), std::string::npos);
  write_text(ragged / "metrics.csv", "");
  EXPECT_NE(message([&] { find_runs({ragged}); }).find("is empty"), std::string::npos);
  fs::remove(ragged / "metrics.csv");
  EXPECT_NE(message([&] { find_runs({ragged}); }).find("has no metrics.csv"), std::string::npos);
  write_text(ragged / "config.toml", "[run\n");
  EXPECT_NE(message([&] { find_runs({ragged}); }).find("is not valid TOML"), std::string::npos);
  // Found while writing fuzz_results: a seed that is not an integer escaped as std::invalid_argument,
  // and a step too large for an integer was undefined behaviour in steps().
  write_text(ragged / "config.toml", "[run]\nseed = \"abc\"\n");
  write_text(ragged / "metrics.csv", "step,eval_return_mean\n100,1\n");
  EXPECT_NE(message([&] { find_runs({ragged}); }).find("run.seed is 'abc', not an integer"), std::string::npos);
  write_text(ragged / "config.toml", "[run]\nseed = 99999999999999999999\n");
  EXPECT_NE(message([&] { find_runs({ragged}); }), "no error");
  write_text(ragged / "config.toml", "[run]\nseed = 1\n");
  write_text(ragged / "metrics.csv", "step,eval_return_mean\n1e300,1\n");
  EXPECT_NE(message([&] { find_runs({ragged}); }).find("line 2: step 1e+300 is not a whole number"), std::string::npos)
      << message([&] { find_runs({ragged}); });
  write_text(ragged / "metrics.csv", "step,eval_return_mean\n100.5,1\n");
  EXPECT_NE(message([&] { find_runs({ragged}); }).find("is not a whole number"), std::string::npos);
  fs::remove_all(root);
}

namespace {

// Replaces the provenance section of a run's config.toml; an empty revision removes it.
void set_binary(const fs::path& dir, const std::string& revision, bool dirty, const std::string& resumed_by = "") {
  std::ifstream in(dir / "config.toml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto start = text.find("\n[provenance]"), end = text.find("\n[", start + 1);
  text.erase(start, end - start);
  if (!revision.empty())
    text += "\n[provenance]\nrevision = \"" + revision + "\"\ndirty = " + (dirty ? "true" : "false") +
            "\nbuild_type = \"Release\"\nresumed_by = \"" + resumed_by + "\"\n";
  write_text(dir / "config.toml", text);
}

std::string notes_of(const CompareResult& result) {
  std::string all;
  for (const auto& note : result.notes) all += note + "\n";
  return all;
}

}  // namespace

TEST(ResultsCompare, NotesArmsFromDifferentBinariesButKeepsTheirSeedsTogether) {
  const fs::path root = temp_dir("binaries");
  for (int s = 0; s < 2; ++s) {
    set_binary(make_run(root, "mle", s, {{100, 10}, {200, 20}}), "aaaaaaaaaaaa", false);
    set_binary(make_run(root, "tom", s, {{100, 10}, {200, 30}}), s == 0 ? "aaaaaaaaaaaa" : "bbbbbbbbbbbb", false);
  }
  const auto runs = find_runs({root}, resumed_settings);
  EXPECT_EQ(group_into_arms(runs).size(), 2u);  // provenance does not split an arm
  const auto notes = notes_of(compare_runs(runs, {}));
  EXPECT_NE(notes.find("different binaries"), std::string::npos) << notes;
  EXPECT_NE(notes.find("aaaaaaaaaaaa (1 run), bbbbbbbbbbbb (1 run)"), std::string::npos) << notes;
  EXPECT_NE(notes.find("aaaaaaaaaaaa (2 runs)"), std::string::npos) << notes;
}

TEST(ResultsCompare, OneCleanBinaryNeedsNoNoteAndResumedPartsCount) {
  const fs::path root = temp_dir("one_binary");
  std::vector<fs::path> dirs;
  for (int s = 0; s < 2; ++s) {
    dirs.push_back(make_run(root, "mle", s, {{100, 10}, {200, 20}}));
    dirs.push_back(make_run(root, "tom", s, {{100, 10}, {200, 30}}));
  }
  for (const auto& dir : dirs) set_binary(dir, "aaaaaaaaaaaa", false);
  EXPECT_EQ(notes_of(compare_runs(find_runs({root}, resumed_settings), {})).find("binar"), std::string::npos);
  // One run continued by another binary: the arms no longer ran one binary.
  make_run(root, "tom", 1, {{100, 10}, {200, 30}});  // the same run, its config.toml written anew
  set_binary(dirs[3], "aaaaaaaaaaaa", false, "cccccccccccc+dirty");
  const auto notes = notes_of(compare_runs(find_runs({root}, resumed_settings), {}));
  EXPECT_NE(notes.find("cccccccccccc+dirty (1 run)"), std::string::npos) << notes;
}

TEST(ResultsCompare, RunsWithoutProvenanceAreSaidToBeUnchecked) {
  const fs::path root = temp_dir("no_provenance");
  for (int s = 0; s < 2; ++s) {
    set_binary(make_run(root, "mle", s, {{100, 10}, {200, 20}}), "", false);
    set_binary(make_run(root, "tom", s, {{100, 10}, {200, 30}}), "", false);
  }
  const auto notes = notes_of(compare_runs(find_runs({root}, resumed_settings), {}));
  EXPECT_NE(notes.find("no run records its binary"), std::string::npos) << notes;
}

TEST(Provenance, ANewRunRecordsThisBinaryAndTheSectionIsNotASetting) {
  ConfigSources sources;
  sources.env = "inverted_pendulum";
  const Config config = resolve_config(sources);
  EXPECT_EQ(config.provenance.revision.size(), 12u);  // a git checkout: 12 hex digits
  EXPECT_FALSE(config.provenance.build_type.empty());
  EXPECT_TRUE(config.provenance.resumed_by.empty());
  sources.overrides = {"provenance.revision=abc"};
  EXPECT_THROW(resolve_config(sources), tom::Error);
  // Resuming with the same clean binary records nothing; another binary is listed once.
  Config resumed = config;
  EXPECT_EQ(record_binary(resumed, /*creating=*/false), config.provenance.dirty);
  Config older = config;
  older.provenance.revision = "0123456789ab";
  older.provenance.dirty = false;
  EXPECT_TRUE(record_binary(older, /*creating=*/false));
  EXPECT_EQ(older.provenance.revision, "0123456789ab");
  EXPECT_FALSE(older.provenance.resumed_by.empty());
  const auto once = older.provenance.resumed_by;
  if (!config.provenance.dirty) {
    EXPECT_FALSE(record_binary(older, /*creating=*/false));
    EXPECT_EQ(older.provenance.resumed_by, once);
  }
}

namespace {

// Two tasks with different budgets: hopper to 300 steps, walker2d to 200; in each, tom
// runs `lead` above mle, seeds s = 0..3 adding s to both.
fs::path make_two_tasks(const std::string& name, double lead) {
  const fs::path root = temp_dir(name);
  for (int s = 0; s < 4; ++s) {
    make_run(root, "mle", s, {{100, 10 + s}, {200, 20 + s}, {300, 30 + s}}, "hopper");
    make_run(root, "tom", s, {{100, 10 + s}, {200, 20 + lead + s}, {300, 30 + lead + s}}, "hopper");
    make_run(root, "mle", s, {{100, 10 + s}, {200, 20 + s}}, "walker2d");
    make_run(root, "tom", s, {{100, 10 + s}, {200, 20 + lead + s}}, "walker2d");
  }
  return root;
}

CompareResult compare_with_last(const fs::path& root, std::vector<std::int64_t> steps) {
  CompareOptions options;
  options.baseline = "objective.name=mle";
  options.steps = std::move(steps);
  options.last_common = true;
  return compare_runs(find_runs({root}, resumed_settings), options);
}

}  // namespace

TEST(ResultsCompare, LastCommonStepMeetsEachArmAtItsOwnEnd) {
  const auto result = compare_with_last(make_two_tasks("last_common", 5), {300});
  // walker2d never reached 300: a note and no row there, but a row at its last step, 200.
  EXPECT_NE(notes_of(result).find("no run reached step 300"), std::string::npos) << notes_of(result);
  const auto& walker = row_of(result, "env=walker2d, objective.name=tom", "eval_return_mean", 200);
  ASSERT_TRUE(walker.diff.has_value());
  EXPECT_DOUBLE_EQ(*walker.diff, 5.0);
  ASSERT_TRUE(walker.welch.has_value());
  EXPECT_EQ(walker.values.size(), 4u);
  EXPECT_EQ(row_of(result, "env=hopper, objective.name=tom", "eval_return_mean", 300).step, 300);
  EXPECT_THROW(row_of(result, "env=walker2d, objective.name=tom", "eval_return_mean", 300), std::runtime_error);
}

// An arm's interval at a step is the same whichever other runs and steps a command names
// (a README line must not move when another task joins its block).
TEST(ResultsCompare, AnArmsIntervalsDoNotDependOnWhatElseIsCompared) {
  const fs::path root = temp_dir("interval_identity");
  for (int s = 0; s < 8; ++s) {
    const double noise = std::fmod(37.0 * s * s + 11.0 * s, 23.0);  // irregular, so intervals depend on the draws
    make_run(root / "pendulum", "mle", s, {{100, 5 + noise}, {300, 30 + noise}});
    make_run(root / "pendulum", "tom", s, {{100, 9 - noise}, {300, 50 + 2 * noise}});
    make_run(root / "hopper", "mle", s, {{100, noise}, {300, 100 + noise}}, "hopper");
    make_run(root / "hopper", "tom", s, {{100, noise}, {300, 90 - noise}}, "hopper");
  }
  CompareOptions alone;
  alone.baseline = "objective.name=mle";
  alone.steps = {300};
  CompareOptions with_more = alone;
  with_more.steps = {100, 300};
  const auto one = compare_runs(find_runs({root / "pendulum"}), alone);
  const auto both = compare_runs(find_runs({root / "hopper", root / "pendulum"}), with_more);
  const auto& a = row_of(one, "objective.name=tom", "eval_return_mean", 300);
  const auto& b = row_of(both, "env=inverted_pendulum, objective.name=tom", "eval_return_mean", 300);
  EXPECT_EQ(a.ci.low, b.ci.low);
  EXPECT_EQ(a.ci.high, b.ci.high);
  EXPECT_EQ(a.diff_ci.low, b.diff_ci.low);
  EXPECT_EQ(a.diff_ci.high, b.diff_ci.high);
  fs::remove_all(root);
}

TEST(ResultsReport, SummarySaysOnlyWhatTheIntervalAndTheTestShow) {
  // A lead of 50 over a spread of +-1.5: both the interval and Welch's test agree.
  const auto ahead = summary_markdown(compare_with_last(make_two_tasks("summary_ahead", 50), {}));
  EXPECT_NE(ahead.find("- **hopper**, eval_return_mean at 300 steps (4 seeds per arm): tom − mle = +50"),
            std::string::npos)
      << ahead;
  EXPECT_NE(ahead.find(": tom higher."), std::string::npos) << ahead;
  EXPECT_NE(ahead.find("- **walker2d**, eval_return_mean at 200 steps"), std::string::npos) << ahead;
  // No lead: nothing detectable, and no power statement for a zero difference.
  const auto none = summary_markdown(compare_with_last(make_two_tasks("summary_none", 0), {}));
  EXPECT_NE(none.find("no difference detectable at 4 seeds per arm."), std::string::npos) << none;
  // A lead of 1 within the spread: not shown, with the seeds 80 % power would need.
  const auto small = summary_markdown(compare_with_last(make_two_tasks("summary_small", 1), {}));
  EXPECT_NE(small.find("seeds per arm for 80 % power"), std::string::npos) << small;
  EXPECT_EQ(small.find("higher"), std::string::npos) << small;
}

TEST(ResultsReport, AggregateNormalisesByThePublishedCurveAndCountsImprovement) {
  const auto result = compare_with_last(make_two_tasks("aggregate", 50), {});
  std::vector<std::string> notes;
  const auto md = aggregate_markdown(result, {}, notes);
  EXPECT_TRUE(notes.empty());
  // Every tom run beats every mle run on both tasks: P(tom > mle) = 1 with a degenerate interval.
  EXPECT_NE(md.find("| tom − mle (objective.name) | hopper (300), walker2d (200) | 16 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1.00 | [1.00, 1.00] |"), std::string::npos) << md;
  // A task without a published curve is named and left out.
  const fs::path root = temp_dir("aggregate_pendulum");
  for (int s = 0; s < 2; ++s) {
    make_run(root, "mle", s, {{100, 10 + s}});
    make_run(root, "tom", s, {{100, 20 + s}});
  }
  notes.clear();
  EXPECT_THROW(aggregate_markdown(compare_with_last(root, {}), {}, notes), tom::Error);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("inverted_pendulum: no published mbpo curve"), std::string::npos) << notes[0];
}

TEST(ResultsReport, GeneratedBlocksAreFoundAndReplacedInPlace) {
  const std::string doc = "# Results\n\ntext before\n";
  const std::string once = with_generated_block(doc, "paper", "experiments/a --summary", "- line one\n");
  EXPECT_EQ(once, doc + "\n<!-- tom compare paper: experiments/a --summary -->\n- line one\n"
                        "<!-- end of tom compare paper -->\n");
  const std::string twice = with_generated_block(once + "after\n", "paper", "experiments/b", "- line two\n");
  EXPECT_NE(twice.find("experiments/b -->\n- line two\n<!-- end of tom compare paper -->\nafter\n"), std::string::npos)
      << twice;
  EXPECT_EQ(twice.find("line one"), std::string::npos);
  const auto blocks = generated_blocks(with_generated_block(twice, "other", "x", "y\n"));
  ASSERT_EQ(blocks.size(), 2u);
  EXPECT_EQ(blocks[0].name, "paper");
  EXPECT_EQ(blocks[0].args, "experiments/b");
  EXPECT_EQ(blocks[0].content, "- line two\n");
  EXPECT_EQ(blocks[1].name, "other");
  EXPECT_THROW(generated_blocks("<!-- tom compare open: args -->\nno end\n"), tom::Error);
  EXPECT_THROW(with_generated_block(doc, "two words", "a", "b\n"), tom::Error);
}

TEST(ResultsCompare, PooledSettingsJoinArmsAndTheMixIsNamed) {
  const fs::path root = temp_dir("pooled");
  for (int s = 0; s < 4; ++s) {
    const auto mle = make_run(root, "mle", s, {{100, 10 + s}});
    const auto tom = make_run(root, "tom", s, {{100, 20 + s}});
    if (s >= 2)  // seeds 2 and 3 ran with another initialisation
      for (const auto& dir : {mle, tom}) std::ofstream(dir / "config.toml", std::ios::app) << "\n[sac]\ninit = \"xavier\"\n";
  }
  const auto runs = find_runs({root});
  EXPECT_EQ(group_into_arms(runs).size(), 4u);
  EXPECT_EQ(group_into_arms(runs, {"sac.init"}).size(), 2u);
  EXPECT_EQ(group_into_arms(runs, {"sac.*"}).size(), 2u);
  CompareOptions options;
  options.pooled = {"sac.init"};
  options.baseline = "objective.name=mle";
  const auto result = compare_runs(runs, options);
  EXPECT_EQ(row_of(result, "objective.name=tom", "eval_return_mean", 100).n, 4);
  const auto notes = notes_of(result);
  EXPECT_NE(notes.find("arm 'objective.name=tom' pools runs that differ in sac.init (xavier: 2)"), std::string::npos)
      << notes;
  EXPECT_TRUE(is_pooled("tom_dual.init", {"tom_dual.*"}));
  EXPECT_FALSE(is_pooled("tom.init", {"tom_dual.*"}));
}

TEST(ResultsCompare, ABaselineMeetsTheShorterArmAtItsLastStep) {
  const fs::path root = temp_dir("baseline_meets");
  for (int s = 0; s < 2; ++s) {
    make_run(root, "mle", s, {{100, 10 + s}, {200, 20 + s}, {300, 30 + s}});
    make_run(root, "tom", s, {{100, 10 + s}, {200, 25 + s}});  // still running
  }
  const auto result = compare_with_last(root, {});
  EXPECT_EQ(row_of(result, "objective.name=mle", "eval_return_mean", 200).step, 200);
  EXPECT_THROW(row_of(result, "objective.name=mle", "eval_return_mean", 300), std::runtime_error);
  const auto& auc = row_of(result, "objective.name=tom", "auc", 0);
  ASSERT_TRUE(auc.diff.has_value());  // both AUCs end at 200
  EXPECT_DOUBLE_EQ(*auc.diff, 2.5);   // (0 + 5) / 2 over [100, 200]
}

TEST(ResultsReport, PairsOfAnotherFamilyAreSummarisedAndAggregatedApart) {
  const fs::path root = temp_dir("families");
  for (int s = 0; s < 4; ++s) {
    make_run(root, "mle", s, {{100, 10 + s}}, "hopper");
    make_run(root, "tom", s, {{100, 20 + s}}, "hopper");
    for (const auto* objective : {"mle", "tom"}) {  // the same pair with another initialisation
      const auto dir = make_run(root / "xavier", objective, s, {{100, 15.0 + s}}, "hopper");
      std::ofstream(dir / "config.toml", std::ios::app) << "\n[sac]\ninit = \"xavier\"\n";
    }
  }
  const auto result = compare_with_last(root, {});
  const auto summary = summary_markdown(result);
  EXPECT_NE(summary.find("- **hopper (sac.init=xavier)**"), std::string::npos) << summary;
  std::vector<std::string> notes;
  const auto md = aggregate_markdown(result, {}, notes);
  EXPECT_NE(md.find("| tom − mle (objective.name), sac.init=xavier | hopper (100) | 8 |"), std::string::npos) << md;
}

// Arms read against the published curve, with hand-worked numbers: hopper's published
// mbpo mean is 200.8 at step 7019 and 246.3 at 8019 (assets/reference_curves).
TEST(ResultsReport, PublishedReadsEachArmAndRunAgainstThePublishedMean) {
  const fs::path root = temp_dir("published");
  make_run(root, "mle", 0, {{7019, 300}, {8019, 100}}, "hopper");
  make_run(root, "mle", 1, {{7019, 100}, {8019, 300}}, "hopper");
  const auto runs = find_runs({root}, resumed_settings);
  CompareOptions options;
  options.steps = {7019, 8019};
  const auto result = compare_runs(runs, options);
  std::vector<std::string> notes;
  const auto md = published_markdown(result, runs, {}, {.reference = "mbpo", .last = 1}, notes);
  EXPECT_TRUE(notes.empty());
  EXPECT_NE(md.find("against the published mbpo mean: at 7019 (2 seeds): 200 [100, 300] against 201; at 8019 (2 "
                    "seeds): 200 [100, 300] against 246."),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("  - seed 0, to step 8019: the mean of its last 1 evaluations (8019-8019) is 100, the published "
                    "mean over the same steps 246; above the published mean at 1 of its 2 evaluations from step 7019."),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("  - seed 1, to step 8019: the mean of its last 1 evaluations (8019-8019) is 300"), std::string::npos)
      << md;
  // Both evaluations averaged: (300 + 100) / 2 against (200.8 + 246.3) / 2.
  const auto both = published_markdown(result, runs, {}, {.reference = "mbpo", .last = 2}, notes);
  EXPECT_NE(both.find("the mean of its last 2 evaluations (7019-8019) is 200, the published mean over the same steps "
                      "224"),
            std::string::npos)
      << both;
  // A task without a published curve is named; with no arm left, it is an error.
  const fs::path pendulum = temp_dir("published_pendulum");
  make_run(pendulum, "mle", 0, {{100, 10}});
  const auto pendulum_runs = find_runs({pendulum}, resumed_settings);
  EXPECT_THROW(published_markdown(compare_runs(pendulum_runs, {}), pendulum_runs, {}, {}, notes), tom::Error);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("inverted_pendulum: no published mbpo curve"), std::string::npos) << notes[0];
}

// Cost, seed by seed: each tom run against the mle run of its seed at the last step.
TEST(ResultsReport, CostMatchesRunsBySeedAndNamesThePhases) {
  const fs::path root = temp_dir("cost");
  const auto run = [&](const std::string& objective, int seed, double wall, double objective_s, double sac_s) {
    const fs::path dir = make_run(root, objective, seed, {{100, 10.0 + seed}, {200, 20.0 + seed}}, "hopper");
    write_text(dir / "metrics.csv", fmt::format("step,wall_s,eval_return_mean,time_sac_s,time_objective_s\n"
                                                "100,1,{},1,1\n200,{},{},{},{}\n",
                                                10 + seed, wall, 20 + seed, sac_s, objective_s));
  };
  run("mle", 0, 100, 0, 50);
  run("mle", 1, 200, 0, 50);
  run("tom", 0, 150, 40, 55);
  run("tom", 1, 300, 90, 60);
  run("tom", 2, 999, 9, 9);  // no mle seed 2: left out
  const auto runs = find_runs({root}, resumed_settings);
  const auto result = compare_with_last(root, {});
  const auto md = cost_markdown(result, runs, {});
  EXPECT_NE(md.find("- **hopper**, tom against mle to step 200, runs matched by seed: seed 0: 150 s against 100 s "
                    "(1.50x); phase seconds, tom − mle: objective +40, sac +5; seed 1: 300 s against 200 s (1.50x); "
                    "phase seconds, tom − mle: objective +90, sac +10; median ratio 1.50x over 2 seeds."),
            std::string::npos)
      << md;
  EXPECT_EQ(md.find("seed 2"), std::string::npos) << md;
  EXPECT_NE(md.find("waited for a core"), std::string::npos) << md;
}

#include "tom/figures/plots.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "tom/core/error.hpp"
#include "tom/results/reference_curves.hpp"
#include "tom/results/stats.hpp"

extern char** environ;

namespace fs = std::filesystem;

namespace tom::runs {

namespace {

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                               "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
const char* color(std::size_t i) { return kColors[i % (sizeof(kColors) / sizeof(kColors[0]))]; }

// A gnuplot string literal in single quotes ('' stands for one quote).
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}
// A string cell of a gnuplot data file, in double quotes.
std::string data_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) out += c == '"' ? '\'' : c;
  return out + "\"";
}

std::string safe_name(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.') ? c : '_';
  return out;
}

std::string terminal(const PlotOptions& o) {
  if (o.format == "png")
    return fmt::format("set terminal pngcairo size {},{} noenhanced font 'DejaVu Sans,10'", o.width, o.height);
  return fmt::format("set terminal svg size {},{} fixed noenhanced font 'DejaVu Sans,10' background '#ffffff'",
                     o.width, o.height);
}

// Writes the data and the script, runs gnuplot, checks that the image appeared.
PlotFile draw(const std::string& kind, const std::string& name, const std::string& data, const std::string& body,
              const PlotOptions& o) {
  fs::create_directories(o.out_dir);
  PlotFile file{kind, o.out_dir / (name + "." + o.format), o.out_dir / (name + ".dat")};
  const fs::path script = o.out_dir / (name + ".gp"), log = o.out_dir / (name + ".gnuplot.log");
  std::ofstream(file.data) << data;
  std::ofstream(script) << terminal(o) << "\nset output " << quote(file.image.string()) << "\n"
                        << "datafile = " << quote(file.data.string()) << "\n"
                        << body << "\nunset output\n";
  fs::remove(file.image);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  std::string program = "gnuplot", script_arg = script.string();
  char* argv[] = {program.data(), script_arg.data(), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) fail("cannot run gnuplot ({}); install it: apt-get install gnuplot-nox", std::strerror(rc));
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !fs::exists(file.image) || fs::file_size(file.image) == 0) {
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      fail("gnuplot is not installed; install it: apt-get install gnuplot-nox");
    fail("gnuplot failed on {}:\n{}", script.string(), text.str());
  }
  fs::remove(log);
  return file;
}

std::string run_name(const RunRecord& run) { return run.dir.filename().string(); }

std::map<const RunRecord*, std::string> arm_labels(const std::vector<RunRecord>& runs) {
  std::map<const RunRecord*, std::string> out;
  for (const auto& arm : group_into_arms(runs))
    for (const auto* run : arm.runs) out[run] = arm.label;
  return out;
}

std::string env_of(const RunRecord& run) {
  const auto it = run.settings.find("run.env");
  return it == run.settings.end() ? "unknown" : it->second;
}

}  // namespace

std::pair<int, int> image_size(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) fail("cannot read {}", file.string());
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<std::size_t>(in.gcount()));
  if (head.size() >= 24 && head.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0 && head.compare(12, 4, "IHDR") == 0) {
    const auto be32 = [&](std::size_t at) {
      return (static_cast<unsigned char>(head[at]) << 24) | (static_cast<unsigned char>(head[at + 1]) << 16) |
             (static_cast<unsigned char>(head[at + 2]) << 8) | static_cast<unsigned char>(head[at + 3]);
    };
    return {be32(16), be32(20)};
  }
  const auto svg = head.find("<svg");
  if (svg != std::string::npos) {
    const auto attr = [&](const std::string& name) {
      const auto at = head.find(" " + name + "=\"", svg);
      if (at == std::string::npos) fail("{}: SVG without a {} attribute", file.string(), name);
      return std::stoi(head.substr(at + name.size() + 3));
    };
    return {attr("width"), attr("height")};
  }
  fail("{} is neither a PNG nor an SVG image", file.string());
}

namespace {

// The key's seed count, per step: a run that stopped early leaves fewer seeds at the later
// steps, and the key says so rather than claiming the arm's full count everywhere.
std::string seeds_in_key(const std::vector<std::pair<std::int64_t, std::size_t>>& seeds_at_step) {
  std::size_t fewest = SIZE_MAX, most = 0;
  for (const auto& [step, n] : seeds_at_step) fewest = std::min(fewest, n), most = std::max(most, n);
  if (fewest == most) return fmt::format("n={}", most);
  std::size_t full = 0;  // leading steps that have every seed
  while (full < seeds_at_step.size() && seeds_at_step[full].second == most) ++full;
  const bool fewer_after = full > 0 && std::all_of(seeds_at_step.begin() + static_cast<std::ptrdiff_t>(full),
                                                   seeds_at_step.end(), [&](const auto& p) { return p.second < most; });
  if (!fewer_after) return fmt::format("n={}-{}", fewest, most);
  std::size_t most_after = 0;
  for (auto i = full; i < seeds_at_step.size(); ++i) most_after = std::max(most_after, seeds_at_step[i].second);
  const std::string after = most_after == fewest ? fmt::format("{}", fewest) : fmt::format("{}-{}", fewest, most_after);
  return fmt::format("n={} to {}, then {}", most, seeds_at_step[full - 1].first, after);
}

// One arm's gnuplot data block: per step, the mean over its runs and the bootstrap band
// of that mean, and how many seeds it has (a run missing a step is noted by name).
struct ArmCurve {
  std::string data;
  std::string seeds_key;  // "n=3 to 20000, then 2" for the legend
  double max_step = 0;
};

ArmCurve arm_curve(const Arm& arm, std::size_t index, const std::string& env, const PlotOptions& o,
                   std::vector<std::string>& notes) {
  std::set<std::int64_t> all_steps;
  std::vector<std::map<std::int64_t, double>> series;  // per run: step -> value
  for (const auto* run : arm.runs) {
    const auto steps = run->steps();
    const auto values = run->metrics.column(o.metric);
    std::map<std::int64_t, double> s;
    for (std::size_t i = 0; i < steps.size(); ++i) s[steps[i]] = values[i], all_steps.insert(steps[i]);
    series.push_back(s);
  }
  ArmCurve curve;
  curve.data = fmt::format("# arm: {} ({} seed(s)); columns: step mean ci_low ci_high n\n", arm.label, arm.runs.size());
  std::vector<std::vector<std::int64_t>> missing(series.size());  // per run
  std::vector<std::pair<std::int64_t, std::size_t>> seeds_at_step;
  for (auto step : all_steps) {
    std::vector<double> values;
    for (std::size_t r = 0; r < series.size(); ++r) {
      const auto it = series[r].find(step);
      if (it != series[r].end()) values.push_back(it->second);
      else missing[r].push_back(step);
    }
    const auto ci = stratified_bootstrap_ci(
        {values}, [](const Strata& s) { return mean_of(s[0]); }, o.reps, o.confidence,
        static_cast<std::uint64_t>(step) * 31 + index);
    curve.data += fmt::format("{} {} {} {} {}\n", step, mean_of(values), ci.low, ci.high, values.size());
    seeds_at_step.emplace_back(step, values.size());
    curve.max_step = std::max(curve.max_step, static_cast<double>(step));
  }
  for (std::size_t r = 0; r < missing.size(); ++r)
    if (!missing[r].empty())
      notes.push_back(fmt::format("curves {}: {} has no evaluation at {} of the arm's steps ({}); the mean there "
                                  "uses the other runs (n in the data file)",
                                  env, arm.runs[r]->dir.string(), missing[r].size(), steps_text(missing[r])));
  curve.data += "\n\n";
  curve.seeds_key = seeds_in_key(seeds_at_step);
  return curve;
}

// The published curve's data block up to (one point past) max_step; empty, with a note,
// when there is none for the task.
std::string reference_curve(const std::string& reference, const std::string& env, double max_step,
                            std::vector<std::string>& notes) {
  const auto curve = published_curve(reference, env);
  if (curve.empty()) {
    notes.push_back(fmt::format("no published {} curve for {} (assets/reference_curves has hopper, walker2d, "
                                "halfcheetah, ant, humanoid)",
                                reference, env));
    return {};
  }
  std::string data = fmt::format(
      "# published {} on {} (mean), from assets/reference_curves/published.csv; columns: step return_mean\n",
      reference, env);
  for (const auto& [step, value] : curve) {
    data += fmt::format("{} {}\n", step, value);
    if (step >= max_step) break;
  }
  return data + "\n\n";
}

}  // namespace

PlotFile plot_learning_curves(const std::vector<const RunRecord*>& runs, const std::string& env,
                              const PlotOptions& o, std::vector<std::string>& notes) {
  std::vector<RunRecord> copies;
  for (const auto* run : runs) copies.push_back(*run);
  const auto arms = group_into_arms(copies);
  // One data block per arm (a band and a mean line), then the published curve if asked.
  std::string data, plots;
  double max_step = 0;
  for (std::size_t a = 0; a < arms.size(); ++a) {
    const ArmCurve curve = arm_curve(arms[a], a, env, o, notes);
    data += curve.data;
    max_step = std::max(max_step, curve.max_step);
    if (!plots.empty()) plots += ", \\\n     ";
    plots += fmt::format("datafile index {} using 1:3:4 with filledcurves lc rgb '{}' fs transparent solid 0.2 notitle, "
                         "\\\n     datafile index {} using 1:2 with linespoints pt 7 ps 0.6 lw 2 lc rgb '{}' title {}",
                         a, color(a), a, color(a), quote(fmt::format("{} ({})", arms[a].label, curve.seeds_key)));
  }
  if (!o.reference.empty()) {
    const std::string reference = reference_curve(o.reference, env, max_step, notes);
    if (!reference.empty()) {
      data += reference;
      plots += fmt::format(", \\\n     datafile index {} using 1:2 with lines dt 2 lw 2 lc rgb '#000000' title {}",
                           arms.size(),
                           quote(fmt::format("published {} (erl_lib, mean)", o.reference == "mbpo" ? "MBPO" : "SAC")));
    }
  }
  const std::string title = fmt::format("{} on {}: mean over seeds, band: {:.0f}% bootstrap CI of the mean", o.metric,
                                        env, o.confidence * 100);
  const std::string body = fmt::format(
      "set title {}\nset xlabel 'environment steps'\nset ylabel {}\nset key top left\nset grid\n"
      "set xrange [0:{}]\nplot {}\n",
      quote(title), quote(o.metric), max_step, plots);
  return draw("curves", "curves_" + safe_name(env), data, body, o);
}

PlotFile plot_weight_heatmap(const RunRecord& run, const std::string& name, const PlotOptions& o) {
  const fs::path file = run.dir / "weights.csv";
  if (!fs::exists(file)) fail("{} has no weights.csv (only runs of a backbone that learns a model write one)", run.dir.string());
  const NumericTable table = read_numeric_csv(file);
  if (table.rows.empty()) fail("{} has no rows yet", file.string());
  const auto steps = table.column("step");
  std::vector<std::vector<double>> bins;
  for (int b = 0;; ++b) {
    const std::string col = fmt::format("bin_{}", b);
    if (!table.has(col)) break;
    bins.push_back(table.column(col));
  }
  if (bins.empty()) fail("{} has no bin_0 ... columns", file.string());
  std::string data = "# columns: age_bin (0 = oldest) step weight (mean 1 over the replay buffer)\n";
  double wmax = 0;
  for (std::size_t r = 0; r < steps.size(); ++r) {
    for (std::size_t b = 0; b < bins.size(); ++b) {
      data += fmt::format("{} {} {}\n", b, static_cast<std::int64_t>(steps[r]), bins[b][r]);
      wmax = std::max(wmax, bins[b][r]);
    }
    data += "\n";
  }
  const auto objective = run.settings.contains("objective.name") ? run.settings.at("objective.name") : "?";
  const std::string body = fmt::format(
      "set title {}\nset xlabel 'age bin of the replay buffer (0 = oldest, {} = newest)'\n"
      "set ylabel 'environment step of the model fit'\nset cblabel 'mean weight (1 = uniform)'\n"
      "set palette defined (0 '#2166ac', 1 '#f7f7f7', {} '#b2182b')\n"
      "set cbrange [0:{}]\nset xrange [-0.5:{}]\nset yrange [*:*]\nset autoscale yfix\n"
      "plot datafile using 1:2:3 with image notitle\n",
      quote(fmt::format("weight vs age, {} ({}): one row per model fit; blue < 1 (uniform) < red", name, objective)),
      bins.size() - 1, std::max(2.0, wmax), std::max(2.0, wmax), bins.size() - 0.5);
  return draw("weights", "weights_" + safe_name(name), data, body, o);
}

PlotFile plot_model_error(const std::vector<RunRecord>& runs, const PlotOptions& o, std::vector<std::string>& notes) {
  const auto labels = arm_labels(runs);
  std::string data, plots;
  std::size_t block = 0;
  bool positive = true;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    const auto& run = runs[i];
    if (!run.metrics.has("model_fresh_mse")) {
      notes.push_back(fmt::format("model error: {} has no model_fresh_mse column (not an MBPO run)", run.dir.string()));
      continue;
    }
    const auto steps = run.metrics.column("step");
    auto mse = run.metrics.column("model_fresh_mse", /*require_finite=*/false);
    // The error is measured at a fit, on data the previous fit's model has not seen: there
    // is none before the second fit (metrics.csv then holds 0), so those rows are left out.
    if (run.metrics.has("model_fits")) {
      const auto fits = run.metrics.column("model_fits", /*require_finite=*/false);
      for (std::size_t r = 0; r < mse.size(); ++r)
        if (!(fits[r] >= 2)) mse[r] = std::nan("");
    }
    data += fmt::format("# run {} ({} seed {}); columns: step model_fresh_mse\n", run.dir.string(), labels.at(&run),
                        run.seed);
    std::size_t kept = 0;
    for (std::size_t r = 0; r < steps.size(); ++r)
      if (std::isfinite(mse[r])) {
        data += fmt::format("{} {}\n", static_cast<std::int64_t>(steps[r]), mse[r]);
        positive = positive && mse[r] > 0;
        ++kept;
      }
    if (kept < steps.size())
      notes.push_back(fmt::format("model error: {} has {} evaluation(s) without a fresh-data error (before its "
                                  "second model fit); they are left out",
                                  run.dir.string(), steps.size() - kept));
    if (kept == 0) {
      data += "\n\n";
      ++block;
      continue;
    }
    data += "\n\n";
    if (!plots.empty()) plots += ", \\\n     ";
    plots += fmt::format("datafile index {} using 1:2 with linespoints pt 7 ps 0.5 lw 2 lc rgb '{}' title {}", block,
                         color(i), quote(fmt::format("{}, seed {}", labels.at(&run), run.seed)));
    ++block;
  }
  if (plots.empty()) fail("no run has model errors on fresh data (model_fresh_mse; MBPO runs after their first model fit)");
  const std::string body =
      fmt::format("set title 'model error on fresh data: MSE on the transitions collected since the previous fit, "
                  "before training on them'\nset xlabel 'environment steps'\nset ylabel 'model_fresh_mse (raw units)'\n"
                  "{}set grid\nset key top right\nplot {}\n",
                  positive ? "set logscale y\n" : "", plots);
  return draw("model_error", "model_error", data, body, o);
}

PlotFile plot_phase_times(const std::vector<RunRecord>& runs, const PlotOptions& o, std::vector<std::string>& notes) {
  std::vector<std::string> phases;
  for (const auto& run : runs)
    for (const auto& name : run.metrics.header)
      if (name.starts_with("time_") && name.ends_with("_s") &&
          std::find(phases.begin(), phases.end(), name) == phases.end())
        phases.push_back(name);
  if (phases.empty()) fail("no run has seconds per phase (time_*_s columns; MBPO runs write them)");
  std::string data = "# arm, then the mean over its seeds of each phase's seconds at the run's last evaluation: " +
                     join(phases, " ") + " wall_s\n";
  std::vector<RunRecord> copies;
  for (const auto& arm : group_into_arms(runs)) {
    std::vector<double> sums(phases.size() + 1, 0.0);
    for (const auto* run : arm.runs) {
      for (std::size_t p = 0; p < phases.size(); ++p) {
        if (!run->metrics.has(phases[p])) {
          notes.push_back(fmt::format("phase times: {} has no {} column; counted as 0", run->dir.string(), phases[p]));
          continue;
        }
        sums[p] += run->metrics.column(phases[p]).back();
      }
      if (run->metrics.has("wall_s")) sums.back() += run->metrics.column("wall_s").back();
    }
    data += data_string(arm.label);
    for (double s : sums) data += fmt::format(" {}", s / static_cast<double>(arm.runs.size()));
    data += "\n";
  }
  std::string plots;
  for (std::size_t p = 0; p < phases.size(); ++p) {
    if (p) plots += ", \\\n     ";
    const std::string label = phases[p].substr(5, phases[p].size() - 7);
    plots += fmt::format("datafile using {}{} title {} lc rgb '{}'", p + 2, p == 0 ? ":xtic(1)" : "", quote(label),
                         color(p));
  }
  const std::string body = fmt::format(
      "set title 'seconds per phase over the whole run (mean over seeds)'\nset ylabel 'seconds'\n"
      "set style data histograms\nset style histogram rowstacked\nset style fill solid 0.85 border -1\n"
      "set boxwidth 0.6\nset key outside right\nset grid ytics\nset yrange [0:*]\nset xtics rotate by -20\n"
      "plot {}\n",
      plots);
  return draw("phase_times", "phase_times", data, body, o);
}

namespace {

// The figure kinds asked for, after checking the request; "all" stands for every kind.
std::set<std::string> checked_request(const std::vector<RunRecord>& runs, const std::vector<std::string>& kinds_in,
                                      const PlotOptions& o) {
  if (o.format != "png" && o.format != "svg") fail("--format must be png or svg (got '{}')", o.format);
  if (o.width < 100 || o.height < 100 || o.width > 10000 || o.height > 10000)
    fail("image size {}x{} is outside 100..10000 pixels", o.width, o.height);
  if (!o.reference.empty() && o.reference != "mbpo" && o.reference != "sac")
    fail("--reference must be mbpo or sac (got '{}')", o.reference);
  if (runs.empty()) fail("no runs to plot");
  const std::set<std::string> valid = {"all", "curves", "weights", "model-error", "phase-times"};
  std::set<std::string> kinds(kinds_in.begin(), kinds_in.end());
  if (kinds.empty()) kinds.insert("all");
  for (const auto& k : kinds)
    if (!valid.contains(k)) fail_unknown("unknown figure '{}' (valid: all, curves, weights, model-error, phase-times)", k);
  for (const auto& run : runs)
    if (!run.metrics.has(o.metric))
      fail("{} has no column '{}' (its columns: {})", run.metrics.file.string(), o.metric, join(run.metrics.header));
  return kinds;
}

// One heatmap per run with a weights.csv, named by the run's path below the runs' common
// parent directory. None at all is an error when asked for by name, a note under "all".
void plot_weight_heatmaps(const std::vector<RunRecord>& runs, const PlotOptions& o, bool asked_by_name,
                          PlotReport& report) {
  fs::path common = runs.front().dir.parent_path();
  for (const auto& run : runs)
    while (!common.empty() && common != common.root_path() && fs::relative(run.dir, common).string().starts_with(".."))
      common = common.parent_path();
  std::size_t drawn = 0;
  for (const auto& run : runs) {
    if (!fs::exists(run.dir / "weights.csv")) continue;
    std::string name = fs::relative(run.dir, common).string();
    std::replace(name.begin(), name.end(), '/', '_');
    report.files.push_back(plot_weight_heatmap(run, name, o));
    ++drawn;
  }
  if (drawn > 0) return;
  const std::string none = "no run has weights.csv (only runs of a backbone that learns a model write one)";
  if (asked_by_name) fail("{}", none);
  report.notes.push_back("weights: " + none);
}

}  // namespace

PlotReport make_plots(const std::vector<RunRecord>& runs, const std::vector<std::string>& kinds_in,
                      const PlotOptions& o) {
  const std::set<std::string> kinds = checked_request(runs, kinds_in, o);
  const bool all = kinds.contains("all");
  PlotReport report;
  // Learning curves: one figure per task, every arm on it.
  if (all || kinds.contains("curves")) {
    std::map<std::string, std::vector<const RunRecord*>> by_env;
    for (const auto& run : runs) by_env[env_of(run)].push_back(&run);
    for (const auto& [env, members] : by_env) report.files.push_back(plot_learning_curves(members, env, o, report.notes));
  }
  if (all || kinds.contains("weights")) plot_weight_heatmaps(runs, o, !all, report);
  // Model error and phase times: under "all" only when some run has the columns.
  const bool any_mse =
      std::any_of(runs.begin(), runs.end(), [](const RunRecord& r) { return r.metrics.has("model_fresh_mse"); });
  if (kinds.contains("model-error") || (all && any_mse)) report.files.push_back(plot_model_error(runs, o, report.notes));
  const bool any_time = std::any_of(runs.begin(), runs.end(), [](const RunRecord& r) {
    return std::any_of(r.metrics.header.begin(), r.metrics.header.end(),
                       [](const std::string& n) { return n.starts_with("time_") && n.ends_with("_s"); });
  });
  if (kinds.contains("phase-times") || (all && any_time))
    report.files.push_back(plot_phase_times(runs, o, report.notes));
  return report;
}

}  // namespace tom::runs

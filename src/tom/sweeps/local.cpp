#include "tom/sweeps/local.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <set>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <chrono>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include "tom/core/error.hpp"
#include "tom/core/threads.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/files.hpp"
#include "tom/runs/metrics_table.hpp"
#include "tom/runs/settings_io.hpp"
#include "tom/sweeps/slurm.hpp"

namespace fs = std::filesystem;

namespace tom::runs {
namespace {

volatile std::sig_atomic_t g_sweep_stop_signal = 0;
void on_sweep_stop_signal(int sig) { g_sweep_stop_signal = sig; }

std::string file_key(const std::string& cell) {
  std::string out;
  for (char c : cell) out += c == '/' ? std::string("__") : std::string(1, c);
  return out;
}

std::string path_part(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '=' || c == '_')
                              ? c : '_';
  return out;
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Last evaluated step and return, and the budget, of a run directory (0 when unknown).
struct RunProgress {
  bool exists = false, has_checkpoint = false, has_metrics = false;
  std::int64_t last_step = 0, budget = 0;
  double last_return = 0;
  RunSettings run;  // its run section as config.toml holds it (budget and target return)

  // Done: the budget is used up, or an evaluation reached the run's target return (the
  // run stops at the first such evaluation).
  bool finished() const {
    return has_metrics && ((budget > 0 && last_step >= budget) || run.reached_target(last_return));
  }
};
RunProgress progress_of(const fs::path& dir) {
  RunProgress p;
  p.exists = fs::exists(dir);
  p.has_checkpoint = fs::exists(dir / "checkpoint.pt");
  if (fs::exists(dir / "config.toml")) {
    try {
      const auto settings = flatten_toml(read_text(dir / "config.toml"), (dir / "config.toml").string());
      for (const auto& field : settings_of("run", p.run))
        if (auto it = settings.find(field.key); it != settings.end()) field.parse(it->second);
      if (settings.contains("run.steps")) p.budget = p.run.steps;
    } catch (const std::exception&) {
    }
  }
  if (fs::exists(dir / "metrics.csv")) {
    try {
      const auto table = read_numeric_csv(dir / "metrics.csv");
      if (!table.rows.empty()) {
        p.has_metrics = true;
        p.last_step = static_cast<std::int64_t>(table.rows.back()[table.index("step")]);
        p.last_return = table.rows.back()[table.index("eval_return_mean")];
      }
    } catch (const std::exception&) {
    }
  }
  return p;
}

bool pid_alive(const fs::path& pid_file) {
  if (!fs::exists(pid_file)) return false;
  const pid_t pid = static_cast<pid_t>(std::atol(read_text(pid_file).c_str()));
  return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM);
}

}  // namespace

std::vector<std::int64_t> parse_seeds(const std::string& text) {
  std::vector<std::int64_t> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (part.empty()) fail("seeds '{}': empty item", text);
    try {
      std::size_t used = 0;
      const auto dash = part.find('-', 1);
      if (dash == std::string::npos) {
        const long long v = std::stoll(part, &used);
        if (used != part.size() || v < 0) throw std::invalid_argument("");
        out.push_back(v);
      } else {
        std::size_t used2 = 0;
        const long long a = std::stoll(part.substr(0, dash), &used), b = std::stoll(part.substr(dash + 1), &used2);
        if (used != dash || used2 != part.size() - dash - 1 || a < 0 || b < a) throw std::invalid_argument("");
        for (long long v = a; v <= b; ++v) out.push_back(v);
      }
    } catch (const std::logic_error&) {
      fail("seeds '{}': '{}' is not a seed (0, 1, ...) or a range such as 0-2", text, part);
    }
  }
  if (out.empty()) fail("no seeds in '{}'", text);
  std::vector<std::int64_t> sorted = out;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) fail("seeds '{}' repeat a seed", text);
  return out;
}

SweepSpec read_sweep_file(const fs::path& file) {
  if (!fs::exists(file)) fail("sweep file {} does not exist", file.string());
  toml::table doc;
  try {
    doc = toml::parse(read_text(file), file.string());
  } catch (const toml::parse_error& e) {
    fail("{} is not valid TOML: {}", file.string(), e.description());
  }
  SweepSpec spec;
  spec.seeds.clear();
  const auto text_of = [&](const toml::node& node, const std::string& key) {
    if (auto s = node.as_string()) return s->get();
    if (auto i = node.as_integer()) return std::to_string(i->get());
    if (auto f = node.as_floating_point()) return fmt::format("{}", f->get());
    if (auto b = node.as_boolean()) return std::string(b->get() ? "true" : "false");
    fail("{}: '{}' must be a string or a number", file.string(), key);
  };
  const auto list_of = [&](const toml::node& node, const std::string& key) {
    std::vector<std::string> out;
    if (auto a = node.as_array()) {
      for (const auto& item : *a) out.push_back(text_of(item, key));
    } else {
      out.push_back(text_of(node, key));
    }
    if (out.empty()) fail("{}: '{}' is an empty list", file.string(), key);
    return out;
  };
  for (const auto& [k, node] : doc) {
    const std::string key(k.str());
    if (key == "env") spec.envs = list_of(node, key);
    else if (key == "algo") spec.algos = list_of(node, key);
    else if (key == "model_objective") spec.objectives = list_of(node, key);
    else if (key == "seeds") {
      for (const auto& s : list_of(node, key))
        for (auto v : parse_seeds(s)) spec.seeds.push_back(v);
    } else if (key == "set") spec.sets = list_of(node, key);
    else if (key == "family") spec.family = text_of(node, key);
    else if (key == "steps") spec.steps = text_of(node, key);
    else if (key == "eval_every") spec.eval_every = text_of(node, key);
    else if (key == "eval_episodes") spec.eval_episodes = text_of(node, key);
    else if (key == "checkpoint_every") spec.checkpoint_every = text_of(node, key);
    else if (key == "device") spec.device = text_of(node, key);
    else if (key == "grid") {
      const auto* table = node.as_table();
      if (!table) fail("{}: 'grid' must be a table of setting = [values]", file.string());
      for (const auto& [gk, gv] : *table)
        spec.grid.emplace_back(std::string(gk.str()), list_of(gv, "grid." + std::string(gk.str())));
    } else {
      fail("{}: unknown key '{}' (valid: env, algo, model_objective, seeds, set, family, steps, eval_every, "
           "eval_episodes, checkpoint_every, device, [grid])",
           file.string(), key);
    }
  }
  if (spec.seeds.empty()) spec.seeds = {0};
  return spec;
}

std::vector<SweepCell> expand_cells(const SweepSpec& spec) {
  if (spec.envs.empty()) fail("a sweep needs at least one --env");
  for (const auto& [key, values] : spec.grid) {
    if (key.find('.') == std::string::npos) fail("grid axis '{}' is not section.name", key);
    if (values.empty()) fail("grid axis '{}' has no values", key);
  }
  std::vector<std::string> fixed;
  const auto add = [&](const char* flag, const std::string& value) {
    if (!value.empty()) fixed.insert(fixed.end(), {flag, value});
  };
  add("--family", spec.family);
  add("--steps", spec.steps);
  add("--eval-every", spec.eval_every);
  add("--eval-episodes", spec.eval_episodes);
  add("--checkpoint-every", spec.checkpoint_every);
  add("--config", spec.config_file.empty() ? "" : fs::absolute(spec.config_file).string());
  add("--device", spec.device);
  for (const auto& s : spec.sets) fixed.insert(fixed.end(), {"--set", s});

  // Axes in order: env, algo, objective, grid settings, seed. Each cell: name parts and args.
  struct Partial {
    std::vector<std::string> parts, args;
  };
  std::vector<Partial> cells{{}};
  const auto axis = [&](const std::vector<std::string>& values, auto&& part_of, auto&& args_of) {
    if (values.empty()) return;
    std::vector<Partial> next;
    for (const auto& cell : cells)
      for (const auto& v : values) {
        Partial p = cell;
        p.parts.push_back(part_of(v));
        for (auto& a : args_of(v)) p.args.push_back(a);
        next.push_back(p);
      }
    cells = next;
  };
  axis(spec.envs, [](const std::string& v) { return path_part(v); },
       [](const std::string& v) { return std::vector<std::string>{"--env", v}; });
  axis(spec.algos, [](const std::string& v) { return path_part(v); },
       [](const std::string& v) { return std::vector<std::string>{"--algo", v}; });
  axis(spec.objectives, [](const std::string& v) { return path_part(v); },
       [](const std::string& v) { return std::vector<std::string>{"--model-objective", v}; });
  for (const auto& [key, values] : spec.grid)
    axis(values, [&key](const std::string& v) { return path_part(key + "=" + v); },
         [&key](const std::string& v) { return std::vector<std::string>{"--set", key + "=" + v}; });
  std::vector<std::string> seeds;
  for (auto s : spec.seeds) seeds.push_back(std::to_string(s));
  axis(seeds, [](const std::string& v) { return "seed" + v; },
       [](const std::string& v) { return std::vector<std::string>{"--seed", v}; });

  std::vector<SweepCell> out;
  for (const auto& c : cells) {
    SweepCell cell;
    cell.name = join(c.parts, "/");
    cell.train_args = {"train"};
    cell.train_args.insert(cell.train_args.end(), c.args.begin(), c.args.end());
    cell.train_args.insert(cell.train_args.end(), fixed.begin(), fixed.end());
    out.push_back(cell);
  }
  return out;
}

void check_cells(const std::vector<SweepCell>& cells, const fs::path& program) {
  // `tom config` resolves and checks the same flags `tom train` gets, without training;
  // cells that differ only in the seed are checked once.
  std::set<std::vector<std::string>> seen;
  for (const auto& cell : cells) {
    std::vector<std::string> key;
    for (std::size_t i = 1; i < cell.train_args.size(); ++i) {
      if (cell.train_args[i] == "--seed") {
        ++i;
        continue;
      }
      key.push_back(cell.train_args[i]);
    }
    if (!seen.insert(key).second) continue;
    std::string command = "'" + program.string() + "' config";
    for (std::size_t i = 1; i < cell.train_args.size(); ++i) {
      std::string quoted = "'";
      for (char c : cell.train_args[i]) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
      command += " " + quoted + "'";
    }
    command += " 2>&1 >/dev/null";
    FILE* pipe = ::popen(command.c_str(), "r");
    if (!pipe) fail("cannot run {} to check the sweep's settings", program.string());
    std::string message;
    char buffer[4096];
    while (std::size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) message.append(buffer, n);
    const int status = ::pclose(pipe);
    if (status != 0) {
      while (!message.empty() && message.back() == '\n') message.pop_back();
      fail("cell {}: its settings are refused: {}", cell.name, message);
    }
  }
}

void write_sweep_record(const std::vector<SweepCell>& cells, const fs::path& out, const fs::path& program,
                        int threads, const nlohmann::json& extra) {
  // The record: the grid and the exact command of every cell. A directory holding a
  // different sweep is refused, so results of two grids never mix.
  nlohmann::json record;
  record["cells"] = nlohmann::json::array();
  for (const auto& cell : cells) {
    std::vector<std::string> command = {program.string()};
    command.insert(command.end(), cell.train_args.begin(), cell.train_args.end());
    command.insert(command.end(), {"--threads", std::to_string(threads), "--out", (out / cell.name).string()});
    record["cells"].push_back({{"name", cell.name}, {"dir", cell.name}, {"train_args", cell.train_args},
                               {"command", command}});
  }
  const fs::path record_file = out / "sweep.json";
  if (fs::exists(record_file)) {
    nlohmann::json old;
    try {
      old = nlohmann::json::parse(read_text(record_file));
    } catch (const std::exception& e) {
      fail("{} is not readable JSON ({}); is this a sweep directory?", record_file.string(), e.what());
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> a, b;
    for (const auto& c : old.at("cells")) a.emplace_back(c.at("name"), c.at("train_args"));
    for (const auto& c : record["cells"]) b.emplace_back(c.at("name"), c.at("train_args"));
    if (a != b)
      fail("{} holds a different sweep (other cells or settings); use another --out, or repeat the original command "
           "to continue it",
           out.string());
  } else if (fs::exists(out) && !fs::is_empty(out)) {
    fail("{} exists and is not a sweep directory (no sweep.json); choose another --out", out.string());
  }
  record["threads_per_cell"] = threads;
  for (const auto& [k, v] : extra.items()) record[k] = v;
  fs::create_directories(out);
  write_file_atomic(record_file, record.dump(2) + "\n");
}

namespace {

// A cell to run, and the `tom` arguments that start or resume it.
struct Job {
  std::size_t cell;
  std::vector<std::string> args;
};

// The cells still to run: resumed from their checkpoint, or started anew (a directory
// that died before its first checkpoint holds nothing to keep). Counts finished ones.
std::deque<Job> pending_jobs(const std::vector<SweepCell>& cells, const SweepOptions& o, int threads,
                             int& finished_before) {
  std::deque<Job> pending;
  finished_before = 0;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    const fs::path dir = o.out / cells[i].name;
    const RunProgress p = progress_of(dir);
    if (p.finished()) {
      ++finished_before;
    } else if (p.has_checkpoint) {
      pending.push_back({i, {"train", "--resume", dir.string()}});
    } else {
      if (p.exists) fs::remove_all(dir);
      std::vector<std::string> args = cells[i].train_args;
      args.insert(args.end(), {"--threads", std::to_string(threads), "--out", dir.string()});
      pending.push_back({i, args});
    }
  }
  return pending;
}

// Forks `program args`, its output appended to `log`, with default signal handling.
pid_t start_worker(const fs::path& program, std::vector<std::string> args, const fs::path& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) dup2(fd, 1), dup2(fd, 2);
    std::string prog = program.string();
    std::vector<char*> argv{prog.data()};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(prog.c_str(), argv.data());
    _exit(127);
  }
  if (pid < 0) fail("cannot start a worker: {}", std::strerror(errno));
  return pid;
}

// SIGINT/SIGTERM set g_sweep_stop_signal while a sweep runs; the old handlers come back after.
class SweepSignals {
 public:
  SweepSignals() {
    g_sweep_stop_signal = 0;
    struct sigaction sa {};
    sa.sa_handler = on_sweep_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
  }
  ~SweepSignals() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
  }
  SweepSignals(const SweepSignals&) = delete;
  SweepSignals& operator=(const SweepSignals&) = delete;

 private:
  struct sigaction old_int_ {}, old_term_ {};
};

// The running workers of a sweep, one per cell, and what became of those that ended.
class WorkerPool {
 public:
  WorkerPool(const fs::path& program, const std::vector<SweepCell>& cells, const fs::path& out)
      : program_(program), cells_(cells), logs_(out / "logs") {}

  std::size_t size() const { return running_.size(); }
  int failed() const { return failed_; }
  int stopped() const { return stopped_; }

  void start(const Job& job) {
    const pid_t pid = start_worker(program_, job.args, log_of(job.cell, ".log"));
    running_[pid] = job.cell;
    std::ofstream(log_of(job.cell, ".pid")) << pid << "\n";
    fs::remove(log_of(job.cell, ".exit"));
    fmt::print("started  {} ({})\n", cells_[job.cell].name, job.args[1] == "--resume" ? "resuming" : "new");
    std::fflush(stdout);
  }

  // Every worker stops with a checkpoint (tom train handles SIGTERM like Ctrl-C); once.
  void stop_all() {
    if (stopping_) return;
    for (const auto& [child, cell] : running_) ::kill(child, SIGTERM);
    stopping_ = true;
    fmt::print("stopping: {} worker(s) are writing their checkpoints\n", running_.size());
    std::fflush(stdout);
  }

  // Records the end of one worker if one has ended, else waits a moment (polled, so a
  // stop signal is never missed while waiting).
  void reap() {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      return;
    }
    const auto it = running_.find(pid);
    if (it == running_.end()) return;
    const std::size_t cell = it->second;
    running_.erase(it);
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fs::remove(log_of(cell, ".pid"));
    std::ofstream(log_of(cell, ".exit")) << code << "\n";
    if (code == 0) {
      fmt::print("finished {}\n", cells_[cell].name);
    } else if (code == 130) {
      ++stopped_;
      fmt::print("stopped  {} (checkpoint written; run the sweep again to continue)\n", cells_[cell].name);
    } else {
      ++failed_;
      fmt::print("FAILED   {} (exit {}; see {})\n", cells_[cell].name, code, log_of(cell, ".log").string());
    }
    std::fflush(stdout);
  }

 private:
  fs::path log_of(std::size_t cell, const char* ending) const {
    return logs_ / (file_key(cells_[cell].name) + ending);
  }

  fs::path program_;
  const std::vector<SweepCell>& cells_;
  fs::path logs_;
  std::map<pid_t, std::size_t> running_;
  int failed_ = 0, stopped_ = 0;
  bool stopping_ = false;
};

}  // namespace

int run_sweep_local(const std::vector<SweepCell>& cells, const SweepOptions& o, bool& interrupted) {
  interrupted = false;
  if (cells.empty()) fail("the sweep has no cells");
  if (o.jobs < 1) fail("--jobs must be at least 1 (got {})", o.jobs);
  const int cores = o.cores > 0 ? o.cores : available_cores();
  const int threads = std::max(1, cores / o.jobs);
  const fs::path program = o.tom_program.empty() ? fs::read_symlink("/proc/self/exe") : o.tom_program;

  // 1. Check every cell's settings and record the sweep before anything runs.
  check_cells(cells, program);
  write_sweep_record(cells, o.out, program, threads, {{"backend", "local"}, {"jobs", o.jobs}});
  fs::create_directories(o.out / "logs");
  // 2. What is left to run: unfinished cells resume, missing ones start.
  int finished_before = 0;
  std::deque<Job> pending = pending_jobs(cells, o, threads, finished_before);
  fmt::print("sweep {}: {} cells, {} already finished, {} to run on {} worker(s) x {} thread(s)\n", o.out.string(),
             cells.size(), finished_before, pending.size(), o.jobs, threads);
  std::fflush(stdout);
  // 3. Keep `jobs` workers busy until the cells are done or a stop signal comes, then
  //    let the running ones write their checkpoints.
  const SweepSignals signals;
  WorkerPool pool(program, cells, o.out);
  while (!pending.empty() || pool.size() > 0) {
    while (!g_sweep_stop_signal && !pending.empty() && static_cast<int>(pool.size()) < o.jobs) {
      pool.start(pending.front());
      pending.pop_front();
    }
    if (pool.size() == 0) break;
    if (g_sweep_stop_signal) pool.stop_all();
    pool.reap();
  }
  interrupted = g_sweep_stop_signal != 0;
  return pool.failed() + pool.stopped() + static_cast<int>(pending.size());
}

std::vector<CellStatus> sweep_status(const fs::path& out) {
  const fs::path record_file = out / "sweep.json";
  if (!fs::exists(record_file)) fail("{} is not a sweep directory (no sweep.json)", out.string());
  nlohmann::json record;
  try {
    record = nlohmann::json::parse(read_text(record_file));
  } catch (const std::exception& e) {
    fail("{} is not readable JSON: {}", record_file.string(), e.what());
  }
  std::vector<CellStatus> cells;
  std::map<int, std::string> slurm;  // array task -> Slurm state, for a sweep submitted to Slurm
  if (record.contains("slurm_jobs") && !record["slurm_jobs"].empty())
    slurm = slurm_task_states(record["slurm_jobs"].back().get<std::string>());
  int index = -1;
  for (const auto& c : record.at("cells")) {
    ++index;
    CellStatus s;
    s.name = c.at("name");
    const std::string key = file_key(s.name);
    const RunProgress p = progress_of(out / s.name);
    s.steps_done = p.last_step;
    s.steps_total = p.budget;
    s.has_return = p.has_metrics;
    s.last_return = p.last_return;
    const fs::path exit_file = out / "logs" / (key + ".exit");
    const int code = fs::exists(exit_file) ? std::atoi(read_text(exit_file).c_str()) : -1;
    if (p.finished()) s.state = "done";
    else if (pid_alive(out / "logs" / (key + ".pid"))) s.state = "running";
    else if (code == 130) s.state = "interrupted";
    else if (code > 0) s.state = fmt::format("failed (exit {})", code);
    else if (p.has_checkpoint) s.state = "stopped";
    else s.state = "pending";
    if (s.state != "done")
      if (const auto it = slurm.find(index); it != slurm.end()) s.state += " (slurm: " + it->second + ")";
    cells.push_back(s);
  }
  return cells;
}

std::string status_table(const std::vector<CellStatus>& cells) {
  std::size_t width = 4;
  for (const auto& c : cells) width = std::max(width, c.name.size());
  std::string out = fmt::format("{:<{}}  {:>10}  {:>10}  {:>12}  {}\n", "cell", width, "steps", "of", "last return",
                                "state");
  int done = 0;
  for (const auto& c : cells) {
    out += fmt::format("{:<{}}  {:>10}  {:>10}  {:>12}  {}\n", c.name, width, c.steps_done,
                       c.steps_total > 0 ? std::to_string(c.steps_total) : "?",
                       c.has_return ? fmt::format("{:.2f}", c.last_return) : "-", c.state);
    done += c.state == "done";
  }
  out += fmt::format("{} of {} cells done\n", done, cells.size());
  return out;
}

}  // namespace tom::runs

#include "tom/sweeps/slurm.hpp"

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "tom/core/error.hpp"
#include "tom/runs/files.hpp"

namespace fs = std::filesystem;

namespace tom::runs {
namespace {

// A bash word in single quotes.
std::string sh(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a command, returns its standard output and exit status.
std::pair<std::string, int> capture(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return {"", -1};
  std::string out;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  const int status = ::pclose(pipe);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

bool valid_slurm_time(const std::string& t) {
  if (t.empty()) return true;
  for (char c : t)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == ':' || c == '-')) return false;
  return true;
}

}  // namespace

std::string write_and_submit_slurm(const std::vector<SweepCell>& cells, const SlurmOptions& o) {
  if (cells.empty()) fail("the sweep has no cells");
  if (o.cpus_per_task < 1) fail("--cpus-per-task must be at least 1 (got {})", o.cpus_per_task);
  if (!valid_slurm_time(o.time)) fail("--time '{}' is not a Slurm time such as 02:00:00 or 1-00:00:00", o.time);
  for (char c : o.partition)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == ','))
      fail("--partition '{}' is not a partition name", o.partition);
  const fs::path program = fs::absolute(o.tom_program.empty() ? fs::read_symlink("/proc/self/exe") : o.tom_program);
  const fs::path out = fs::absolute(o.out);
  if (o.check) check_cells(cells, program);
  write_sweep_record(cells, out, program, o.cpus_per_task, {{"backend", "slurm"}});
  fs::create_directories(out / "logs");
  fs::create_directories(out / "slurm");

  std::string script = "#!/bin/bash\n";
  script += "# Written by `tom sweep --backend slurm`: one array task per cell of " + (out / "sweep.json").string() + ".\n";
  script += "# A task starts its cell, or resumes it from its checkpoint (after a requeue or a\n";
  script += "# resubmission), or finds it complete. Slurm's SIGTERM makes tom write a checkpoint first.\n";
  script += fmt::format("#SBATCH --job-name=tom-sweep\n#SBATCH --array=0-{}\n#SBATCH --cpus-per-task={}\n",
                        cells.size() - 1, o.cpus_per_task);
  script += "#SBATCH --ntasks=1\n#SBATCH --requeue\n#SBATCH --open-mode=append\n";
  script += fmt::format("#SBATCH --output={}\n", (out / "logs" / "slurm_%A_%a.log").string());
  if (!o.partition.empty()) script += "#SBATCH --partition=" + o.partition + "\n";
  if (!o.time.empty()) script += "#SBATCH --time=" + o.time + "\n";
  script += "set -u\n";
  script += "tom=" + sh(program.string()) + "\n";
  script += "case \"$SLURM_ARRAY_TASK_ID\" in\n";
  for (std::size_t i = 0; i < cells.size(); ++i) {
    script += fmt::format("  {}) cell={}; args=(", i, sh(cells[i].name));
    for (const auto& a : cells[i].train_args) script += " " + sh(a);
    script += " ) ;;\n";
  }
  script += "  *) echo \"no cell for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\nesac\n";
  script += "dir=" + sh(out.string()) + "/\"$cell\"\n";
  script += "echo \"$(date -u +%FT%TZ) array task $SLURM_ARRAY_TASK_ID (job ${SLURM_JOB_ID:-?}, restart "
            "${SLURM_RESTART_COUNT:-0}) on $(hostname): $cell\"\n";
  script += "if [[ -f \"$dir/checkpoint.pt\" ]]; then\n";
  script += "  exec \"$tom\" train --resume \"$dir\"   # a finished run says so and exits 0\n";
  script += "fi\n";
  script += "rm -rf \"$dir\"   # no checkpoint: nothing to keep\n";
  script += fmt::format("exec \"$tom\" \"${{args[@]}}\" --threads {} --out \"$dir\"\n", o.cpus_per_task);
  const fs::path script_file = out / "slurm" / "sweep.sbatch";
  write_file_atomic(script_file, script);
  fs::permissions(script_file, fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
  if (!o.submit) return "";

  const auto [text, status] = capture("sbatch --parsable " + sh(script_file.string()) + " 2>&1");
  if (status != 0) fail("sbatch failed (status {}): {}", status, text);
  std::string job = text.substr(0, text.find_first_of(";\n"));
  if (job.empty()) fail("sbatch printed no job id: {}", text);
  // Remember the job, so `tom sweep status` can ask Slurm about it.
  std::ifstream in(out / "sweep.json");
  nlohmann::json record = nlohmann::json::parse(in);
  record["slurm_jobs"].push_back(job);
  write_file_atomic(out / "sweep.json", record.dump(2) + "\n");
  return job;
}

std::map<int, std::string> slurm_task_states(const std::string& job_id) {
  std::map<int, std::string> states;
  for (char c : job_id)
    if (!std::isdigit(static_cast<unsigned char>(c))) return states;
  // Finished tasks from accounting, where the cluster keeps it (sacct fails without it).
  if (const auto [acct, status] = capture("sacct -n -P -X -j " + job_id + " -o JobID,State 2>/dev/null"); status == 0) {
    std::istringstream lines(acct);
    std::string line;
    while (std::getline(lines, line)) {
      const auto bar = line.find('|'), under = line.find('_');
      if (bar == std::string::npos || under == std::string::npos || under > bar) continue;
      try {
        states[std::stoi(line.substr(under + 1, bar - under - 1))] = line.substr(bar + 1);
      } catch (const std::exception&) {
      }
    }
  }
  // Live tasks from the queue (pending ranges are shown one task per line with -r).
  if (const auto [queue, status] = capture("squeue -h -r -j " + job_id + " -o '%i %T' 2>/dev/null"); status == 0) {
    std::istringstream lines(queue);
    std::string id, state;
    while (lines >> id >> state) {
      const auto under = id.find('_');
      if (under == std::string::npos) continue;
      try {
        states[std::stoi(id.substr(under + 1))] = state;
      } catch (const std::exception&) {
      }
    }
  }
  return states;
}

}  // namespace tom::runs

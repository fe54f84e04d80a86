#include "tom/figures/render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "tom/core/error.hpp"
#include "tom/envs/mujoco_env.hpp"
#include "tom/figures/frame_renderer.hpp"
#include "tom/envs/registry.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/files.hpp"
#include "tom/runs/run.hpp"

namespace fs = std::filesystem;

namespace tom::runs {
namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

RenderResult render_run(const fs::path& dir, const RenderOptions& o) {
  if (o.max_steps < 1) fail("--steps must be at least 1 (got {})", o.max_steps);
  if (o.out.empty()) fail("no output file given");
  if (!fs::exists(dir / "config.toml")) fail("{} is not a run directory: it has no config.toml", dir.string());
  const Config config = load_run_config(read_file(dir / "config.toml"), (dir / "config.toml").string());
  const Policy policy = load_policy(dir, o.checkpoint);

  auto env = envs::make_env(config.run.env);
  auto* mujoco_env = dynamic_cast<envs::MujocoEnv*>(env.get());
  if (!mujoco_env) fail("task {} is not drawn by MuJoCo", config.run.env);
  const RenderResult timing{0, 0, o.fps > 0 ? o.fps : std::max(1, static_cast<int>(std::lround(1.0 / env->spec().dt)))};
  FrameRenderer renderer(*mujoco_env, o.width, o.height);

  fs::create_directories(fs::absolute(o.out).parent_path());
  const std::string command =
      fmt::format("ffmpeg -y -loglevel error -f rawvideo -pix_fmt rgb24 -s {}x{} -r {} -i - -an -c:v libx264 "
                  "-pix_fmt yuv420p -movflags +faststart {}",
                  o.width, o.height, timing.fps, shell_quote(o.out.string()));
  FILE* ffmpeg = ::popen(command.c_str(), "w");
  if (!ffmpeg) fail("cannot start ffmpeg; install it: apt-get install ffmpeg");

  RenderResult result = timing;
  bool write_failed = false;
  const auto frame = [&] {
    const std::string values = fmt::format("{}\n{}\n{:.1f}", config.run.env, result.steps, result.episode_return);
    const auto& rgb = renderer.draw(*mujoco_env, "task\nstep\nreturn", values);
    if (!write_failed && std::fwrite(rgb.data(), 1, rgb.size(), ffmpeg) != rgb.size()) write_failed = true;
    ++result.frames;
  };
  std::vector<double> obs = env->reset(o.seed);
  frame();
  while (result.steps < o.max_steps && !write_failed) {
    const auto action = policy(obs);
    const envs::Step step = env->step(action);
    result.episode_return += step.reward;
    ++result.steps;
    obs = step.obs;
    frame();
    if (step.terminated || step.truncated) break;
  }
  const int status = ::pclose(ffmpeg);
  if (write_failed || status != 0)
    fail("ffmpeg failed writing {} (status {}); is ffmpeg installed with libx264?", o.out.string(), status);
  return result;
}

}  // namespace tom::runs

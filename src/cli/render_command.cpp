// tom render: a run's deterministic policy on its task, as an MP4 (MuJoCo offscreen + ffmpeg).
#include <memory>
#include <string>

#include <fmt/core.h>

#include "cli/commands.hpp"
#include "tom/figures/render.hpp"

namespace tom::cli {

void add_render_command(CLI::App& app) {
  struct Args {
    std::string dir, out, checkpoint;
    runs::RenderOptions options;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("render", "render one episode of a run's deterministic policy to an MP4 video");
  cmd->add_option("dir", args->dir, "run directory")->required();
  cmd->add_option("--out", args->out, "video file (default: <dir>/episode.mp4)");
  cmd->add_option("--checkpoint", args->checkpoint, "checkpoint file (default: the run's latest)");
  cmd->add_option("--width", args->options.width, "video width (even)")->capture_default_str();
  cmd->add_option("--height", args->options.height, "video height (even)")->capture_default_str();
  cmd->add_option("--steps", args->options.max_steps, "at most this many env steps")->capture_default_str();
  cmd->add_option("--seed", args->options.seed, "seed of the episode's reset")->capture_default_str();
  cmd->add_option("--fps", args->options.fps, "frames per second (default: real time, 1 / the task's dt)");
  cmd->callback([args] {
    auto options = args->options;
    options.out = args->out.empty() ? std::filesystem::path(args->dir) / "episode.mp4" : std::filesystem::path(args->out);
    if (!args->checkpoint.empty()) options.checkpoint = args->checkpoint;
    const auto result = runs::render_run(args->dir, options);
    fmt::print("{}: {} frames ({} steps, {} fps), {}x{}, episode return {:.2f}\n", options.out.string(), result.frames,
               result.steps, result.fps, options.width, options.height, result.episode_return);
  });
}

}  // namespace tom::cli

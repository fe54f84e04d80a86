#pragma once
// `tom render`: one episode of a run's deterministic policy on its task, drawn by
// MuJoCo's own renderer into an offscreen OpenGL context (EGL, Mesa's surfaceless
// platform: no display needed), frames piped to ffmpeg as an H.264 MP4, the return so
// far written on every frame.
#include <cstdint>
#include <filesystem>
#include <optional>

namespace tom::runs {

struct RenderOptions {
  std::filesystem::path out;  // .mp4
  int width = 640, height = 480;  // even numbers (H.264 with yuv420p)
  int max_steps = 1000;
  std::uint64_t seed = 0;     // of the episode's reset
  int fps = 0;                // 0: real time (1 / the task's dt)
  std::optional<std::filesystem::path> checkpoint;  // default: the run's latest
};

struct RenderResult {
  int frames = 0, steps = 0, fps = 0;
  double episode_return = 0;
};

// Throws tom::Error for a bad run directory, a task MuJoCo does not draw, no EGL/OpenGL,
// or a failing ffmpeg.
RenderResult render_run(const std::filesystem::path& dir, const RenderOptions& options);

}  // namespace tom::runs

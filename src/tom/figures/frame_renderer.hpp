#pragma once
// Pictures of a MuJoCo task's current state, drawn by MuJoCo's own renderer into an
// offscreen OpenGL context (EGL, Mesa's surfaceless platform: no display needed). Used by
// `tom render` (video) and by the Python environments' render().
#include <memory>
#include <string>
#include <vector>

namespace tom::envs {
class MujocoEnv;
}

namespace tom::runs {

class FrameRenderer {
 public:
  // Throws tom::Error for a bad size (even numbers in 16..4096), no EGL/OpenGL, or no
  // offscreen framebuffer. The camera follows the first body from the side.
  FrameRenderer(const envs::MujocoEnv& env, int width, int height);
  ~FrameRenderer();
  FrameRenderer(const FrameRenderer&) = delete;
  FrameRenderer& operator=(const FrameRenderer&) = delete;

  // The env's current state as height x width x 3 bytes (RGB, top row first), with
  // `labels` and `values` (newline-separated, one pair per line) written top left when
  // given. `env` must be of the task the renderer was made for.
  const std::vector<unsigned char>& draw(const envs::MujocoEnv& env, const std::string& labels = {},
                                         const std::string& values = {});
  int width() const { return width_; }
  int height() const { return height_; }

 private:
  struct Gl;
  int width_, height_;
  std::unique_ptr<Gl> gl_;
  std::vector<unsigned char> rgb_, row_;
};

}  // namespace tom::runs

#include "tom/figures/render.hpp"

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <mujoco/mujoco.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <fmt/format.h>

#include "tom/core/error.hpp"
#include "tom/envs/mujoco_env.hpp"
#include "tom/envs/registry.hpp"
#include "tom/runs/config.hpp"
#include "tom/runs/files.hpp"
#include "tom/runs/run.hpp"

namespace fs = std::filesystem;

namespace tom::runs {
namespace {

// An OpenGL context without a window: EGL on Mesa's surfaceless platform (llvmpipe on a
// machine without a GPU), falling back to the default display.
class OffscreenGl {
 public:
  OffscreenGl() {
    auto get_platform_display =
        reinterpret_cast<PFNEGLGETPLATFORMDISPLAYEXTPROC>(eglGetProcAddress("eglGetPlatformDisplayEXT"));
    if (get_platform_display)
      display_ = get_platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, nullptr);
    if (display_ == EGL_NO_DISPLAY) display_ = eglGetDisplay(EGL_DEFAULT_DISPLAY);
    EGLint major = 0, minor = 0;
    if (display_ == EGL_NO_DISPLAY || !eglInitialize(display_, &major, &minor))
      fail("no EGL display for offscreen rendering (EGL error 0x{:x}); install libegl-mesa0", eglGetError());
    const EGLint with_pbuffer[] = {EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_ALPHA_SIZE, 8,
                                   EGL_DEPTH_SIZE, 24, EGL_STENCIL_SIZE, 8, EGL_SURFACE_TYPE, EGL_PBUFFER_BIT,
                                   EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE};
    const EGLint any_surface[] = {EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_DEPTH_SIZE, 24,
                                  EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE};
    EGLConfig config = nullptr;
    EGLint count = 0;
    if (!eglChooseConfig(display_, with_pbuffer, &config, 1, &count) || count < 1)
      if (!eglChooseConfig(display_, any_surface, &config, 1, &count) || count < 1)
        fail("EGL has no OpenGL configuration with 8-bit colour and a depth buffer");
    if (!eglBindAPI(EGL_OPENGL_API)) fail("EGL cannot bind the desktop OpenGL API");
    context_ = eglCreateContext(display_, config, EGL_NO_CONTEXT, nullptr);
    if (context_ == EGL_NO_CONTEXT) fail("EGL could not create an OpenGL context (error 0x{:x})", eglGetError());
    if (!eglMakeCurrent(display_, EGL_NO_SURFACE, EGL_NO_SURFACE, context_))
      fail("EGL could not make the OpenGL context current (error 0x{:x})", eglGetError());
  }
  ~OffscreenGl() {
    eglMakeCurrent(display_, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    if (context_ != EGL_NO_CONTEXT) eglDestroyContext(display_, context_);
    eglTerminate(display_);
  }
  OffscreenGl(const OffscreenGl&) = delete;
  OffscreenGl& operator=(const OffscreenGl&) = delete;

 private:
  EGLDisplay display_ = EGL_NO_DISPLAY;
  EGLContext context_ = EGL_NO_CONTEXT;
};

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

RenderResult render_run(const fs::path& dir, const RenderOptions& o) {
  if (o.width < 16 || o.height < 16 || o.width > 4096 || o.height > 4096 || o.width % 2 || o.height % 2)
    fail("video size {}x{}: width and height must be even numbers in 16..4096", o.width, o.height);
  if (o.max_steps < 1) fail("--steps must be at least 1 (got {})", o.max_steps);
  if (o.out.empty()) fail("no output file given");
  if (!fs::exists(dir / "config.toml")) fail("{} is not a run directory: it has no config.toml", dir.string());
  const Config config = load_run_config(read_file(dir / "config.toml"), (dir / "config.toml").string());
  const Policy policy = load_policy(dir, o.checkpoint);

  auto env = envs::make_env(config.run.env);
  auto* mujoco_env = dynamic_cast<envs::MujocoEnv*>(env.get());
  if (!mujoco_env) fail("task {} is not drawn by MuJoCo", config.run.env);
  const RenderResult timing{0, 0, o.fps > 0 ? o.fps : std::max(1, static_cast<int>(std::lround(1.0 / env->spec().dt)))};

  OffscreenGl gl;
  // A copy of the task's model whose offscreen buffer has the video's size.
  mjModel* model = mj_copyModel(nullptr, &mujoco_env->model());
  model->vis.global.offwidth = std::max(model->vis.global.offwidth, o.width);
  model->vis.global.offheight = std::max(model->vis.global.offheight, o.height);
  mjvScene scene;
  mjvCamera camera;
  mjvOption option;
  mjrContext context;
  mjv_defaultScene(&scene);
  mjv_defaultCamera(&camera);
  mjv_defaultOption(&option);
  mjr_defaultContext(&context);
  mjv_makeScene(model, &scene, 2000);
  mjr_makeContext(model, &context, mjFONTSCALE_150);
  mjr_setBuffer(mjFB_OFFSCREEN, &context);
  if (!context.offFBO) {
    mjr_freeContext(&context);
    mjv_freeScene(&scene);
    mj_deleteModel(model);
    fail("MuJoCo could not create its offscreen framebuffer");
  }
  // Follow the first body (torso or cart) from the side, at a distance set by the model's size.
  camera.type = mjCAMERA_TRACKING;
  camera.trackbodyid = model->nbody > 1 ? 1 : 0;
  camera.distance = std::min(1.6 * model->stat.extent, 4.0);  // a floor plane inflates the extent
  camera.elevation = -15;
  camera.azimuth = 90;

  fs::create_directories(fs::absolute(o.out).parent_path());
  const std::string command =
      fmt::format("ffmpeg -y -loglevel error -f rawvideo -pix_fmt rgb24 -s {}x{} -r {} -i - -an -c:v libx264 "
                  "-pix_fmt yuv420p -movflags +faststart {}",
                  o.width, o.height, timing.fps, shell_quote(o.out.string()));
  FILE* ffmpeg = ::popen(command.c_str(), "w");
  if (!ffmpeg) fail("cannot start ffmpeg; install it: apt-get install ffmpeg");

  RenderResult result = timing;
  std::vector<unsigned char> rgb(static_cast<std::size_t>(o.width) * o.height * 3), row(static_cast<std::size_t>(o.width) * 3);
  const mjrRect viewport{0, 0, o.width, o.height};
  bool write_failed = false;
  const auto frame = [&] {
    mjv_updateScene(model, const_cast<mjData*>(&mujoco_env->data()), &option, nullptr, &camera, mjCAT_ALL, &scene);
    mjr_render(viewport, &scene, &context);
    const std::string values = fmt::format("{}\n{}\n{:.1f}", config.run.env, result.steps, result.episode_return);
    mjr_overlay(mjFONT_NORMAL, mjGRID_TOPLEFT, viewport, "task\nstep\nreturn", values.c_str(), &context);
    mjr_readPixels(rgb.data(), nullptr, viewport, &context);
    for (int y = 0; y < o.height / 2; ++y) {  // OpenGL's rows run bottom-up
      auto* top = rgb.data() + static_cast<std::size_t>(y) * row.size();
      auto* bottom = rgb.data() + static_cast<std::size_t>(o.height - 1 - y) * row.size();
      std::copy(top, top + row.size(), row.data());
      std::copy(bottom, bottom + row.size(), top);
      std::copy(row.data(), row.data() + row.size(), bottom);
    }
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
  mjr_freeContext(&context);
  mjv_freeScene(&scene);
  mj_deleteModel(model);
  if (write_failed || status != 0)
    fail("ffmpeg failed writing {} (status {}); is ffmpeg installed with libx264?", o.out.string(), status);
  return result;
}

}  // namespace tom::runs

#include "tom/figures/frame_renderer.hpp"

#include <EGL/egl.h>
#include <EGL/eglext.h>
#include <mujoco/mujoco.h>

#include <algorithm>

#include "tom/core/error.hpp"
#include "tom/envs/mujoco_env.hpp"

namespace tom::runs {

// An OpenGL context without a window (EGL on Mesa's surfaceless platform: llvmpipe on a
// machine without a GPU, falling back to the default display) and MuJoCo's scene and
// drawing context on a copy of the task's model whose offscreen buffer has the frame's size.
struct FrameRenderer::Gl {
  EGLDisplay display = EGL_NO_DISPLAY;
  EGLContext context = EGL_NO_CONTEXT;
  mjModel* model = nullptr;
  mjvScene scene;
  mjvCamera camera;
  mjvOption option;
  mjrContext mujoco_context;
  bool scene_made = false, context_made = false;

  Gl(const mjModel& task_model, int width, int height) {
    auto get_platform_display =
        reinterpret_cast<PFNEGLGETPLATFORMDISPLAYEXTPROC>(eglGetProcAddress("eglGetPlatformDisplayEXT"));
    if (get_platform_display)
      display = get_platform_display(EGL_PLATFORM_SURFACELESS_MESA, EGL_DEFAULT_DISPLAY, nullptr);
    if (display == EGL_NO_DISPLAY) display = eglGetDisplay(EGL_DEFAULT_DISPLAY);
    EGLint major = 0, minor = 0;
    if (display == EGL_NO_DISPLAY || !eglInitialize(display, &major, &minor))
      fail("no EGL display for offscreen rendering (EGL error 0x{:x}); install libegl-mesa0", eglGetError());
    const EGLint with_pbuffer[] = {EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_ALPHA_SIZE, 8,
                                   EGL_DEPTH_SIZE, 24, EGL_STENCIL_SIZE, 8, EGL_SURFACE_TYPE, EGL_PBUFFER_BIT,
                                   EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE};
    const EGLint any_surface[] = {EGL_RED_SIZE, 8, EGL_GREEN_SIZE, 8, EGL_BLUE_SIZE, 8, EGL_DEPTH_SIZE, 24,
                                  EGL_RENDERABLE_TYPE, EGL_OPENGL_BIT, EGL_NONE};
    EGLConfig config = nullptr;
    EGLint count = 0;
    if (!eglChooseConfig(display, with_pbuffer, &config, 1, &count) || count < 1)
      if (!eglChooseConfig(display, any_surface, &config, 1, &count) || count < 1)
        fail("EGL has no OpenGL configuration with 8-bit colour and a depth buffer");
    if (!eglBindAPI(EGL_OPENGL_API)) fail("EGL cannot bind the desktop OpenGL API");
    context = eglCreateContext(display, config, EGL_NO_CONTEXT, nullptr);
    if (context == EGL_NO_CONTEXT) fail("EGL could not create an OpenGL context (error 0x{:x})", eglGetError());
    try {
      make_scene(task_model, width, height);
    } catch (...) {
      release();
      throw;
    }
  }
  ~Gl() { release(); }

  void make_scene(const mjModel& task_model, int width, int height) {
    make_current();

    model = mj_copyModel(nullptr, &task_model);
    model->vis.global.offwidth = std::max(model->vis.global.offwidth, width);
    model->vis.global.offheight = std::max(model->vis.global.offheight, height);
    mjv_defaultScene(&scene);
    mjv_defaultCamera(&camera);
    mjv_defaultOption(&option);
    mjr_defaultContext(&mujoco_context);
    mjv_makeScene(model, &scene, 2000);
    scene_made = true;
    mjr_makeContext(model, &mujoco_context, mjFONTSCALE_150);
    context_made = true;
    mjr_setBuffer(mjFB_OFFSCREEN, &mujoco_context);
    if (!mujoco_context.offFBO) fail("MuJoCo could not create its offscreen framebuffer");
    // Follow the first body (torso or cart) from the side, at a distance set by the model's size.
    camera.type = mjCAMERA_TRACKING;
    camera.trackbodyid = model->nbody > 1 ? 1 : 0;
    camera.distance = std::min(1.6 * model->stat.extent, 4.0);  // a floor plane inflates the extent
    camera.elevation = -15;
    camera.azimuth = 90;
  }
  void release() {
    if (context != EGL_NO_CONTEXT) eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, context);
    if (context_made) mjr_freeContext(&mujoco_context);
    if (scene_made) mjv_freeScene(&scene);
    if (model) mj_deleteModel(model);
    eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT);
    if (context != EGL_NO_CONTEXT) eglDestroyContext(display, context);
    // The display is not terminated: EGL displays are shared by every context of the
    // process, and another renderer may still draw on it.
  }
  // Several renderers may live in one process (one per Python environment): each makes
  // its own context current before it draws.
  void make_current() {
    if (!eglMakeCurrent(display, EGL_NO_SURFACE, EGL_NO_SURFACE, context))
      fail("EGL could not make the OpenGL context current (error 0x{:x})", eglGetError());
  }
};

FrameRenderer::FrameRenderer(const envs::MujocoEnv& env, int width, int height) : width_(width), height_(height) {
  if (width < 16 || height < 16 || width > 4096 || height > 4096 || width % 2 || height % 2)
    fail("frame size {}x{}: width and height must be even numbers in 16..4096", width, height);
  gl_ = std::make_unique<Gl>(env.model(), width, height);
  rgb_.resize(static_cast<std::size_t>(width) * height * 3);
  row_.resize(static_cast<std::size_t>(width) * 3);
}

FrameRenderer::~FrameRenderer() = default;

const std::vector<unsigned char>& FrameRenderer::draw(const envs::MujocoEnv& env, const std::string& labels,
                                                      const std::string& values) {
  if (env.model().nq != gl_->model->nq || env.model().nbody != gl_->model->nbody)
    fail("this renderer draws another task (its model has {} bodies, the env's {})", gl_->model->nbody,
         env.model().nbody);
  gl_->make_current();
  const mjrRect viewport{0, 0, width_, height_};
  mjv_updateScene(gl_->model, const_cast<mjData*>(&env.data()), &gl_->option, nullptr, &gl_->camera, mjCAT_ALL,
                  &gl_->scene);
  mjr_render(viewport, &gl_->scene, &gl_->mujoco_context);
  if (!labels.empty()) mjr_overlay(mjFONT_NORMAL, mjGRID_TOPLEFT, viewport, labels.c_str(), values.c_str(), &gl_->mujoco_context);
  mjr_readPixels(rgb_.data(), nullptr, viewport, &gl_->mujoco_context);
  for (int y = 0; y < height_ / 2; ++y) {  // OpenGL's rows run bottom-up
    auto* top = rgb_.data() + static_cast<std::size_t>(y) * row_.size();
    auto* bottom = rgb_.data() + static_cast<std::size_t>(height_ - 1 - y) * row_.size();
    std::copy(top, top + row_.size(), row_.data());
    std::copy(bottom, bottom + row_.size(), top);
    std::copy(row_.data(), row_.data() + row_.size(), bottom);
  }
  return rgb_;
}

}  // namespace tom::runs

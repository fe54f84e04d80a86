#include "tom/core/worker_thread.hpp"

#include <dlfcn.h>

#include <chrono>

#include <ATen/ThreadLocalState.h>
#include <torch/torch.h>

namespace tom {
namespace {

// Sets the calling thread's LibTorch intra-op thread count. at::set_num_threads would
// also change process-wide state (the default of threads started later), so with the
// OpenMP backend this sets the OpenMP count of this thread only (an OpenMP ICV, local to
// a thread outside parallel regions), looked up at run time like OpenBLAS's in
// threads.cpp. Without OpenMP this does nothing.
void set_this_thread_ops_threads(int threads) {
  using SetThreads = void (*)(int);
  static const auto set_omp = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "omp_set_num_threads"));
  // LibTorch initialises a thread's count on its first parallel op, which would undo a
  // count set before; asking for the count does that initialisation now.
  at::get_num_threads();
  if (set_omp) set_omp(threads);
}

}  // namespace

WorkerThread::WorkerThread(int spin_microseconds)
    : spin_microseconds_(spin_microseconds), thread_([this] { loop(); }) {}

WorkerThread::~WorkerThread() {
  stop_.store(true);
  posted_.fetch_add(1, std::memory_order_release);  // wakes the worker, which then sees stop_
  posted_.notify_one();
  thread_.join();
}

void WorkerThread::wait_while(const std::atomic<std::uint32_t>& counter, std::uint32_t old) const {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::microseconds(spin_microseconds_);
  while (counter.load(std::memory_order_acquire) == old) {
    if (Clock::now() > deadline) {
      counter.wait(old, std::memory_order_acquire);
      return;
    }
    std::this_thread::yield();
  }
}

void WorkerThread::loop() {
  set_this_thread_ops_threads(1);
  for (std::uint32_t seen = 0;;) {
    wait_while(posted_, seen);
    seen = posted_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    std::uint32_t expected = seen - 1;
    if (!taken_.compare_exchange_strong(expected, seen, std::memory_order_acq_rel)) continue;  // the caller took it
    error_ = run_job();
    finished_.store(seen, std::memory_order_release);
    finished_.notify_one();
  }
}

std::exception_ptr WorkerThread::run_job() {
  try {
    at::ThreadLocalStateGuard state(*state_);
    job_.call(job_.closure);
  } catch (...) {
    return std::current_exception();
  }
  return nullptr;
}

void WorkerThread::run_jobs(Job on_caller, Job on_worker) {
  const at::ThreadLocalState state;
  job_ = on_worker;
  state_ = &state;
  const std::uint32_t n = posted_.fetch_add(1, std::memory_order_release) + 1;
  posted_.notify_one();
  std::exception_ptr caller_error, worker_error;
  try {
    on_caller.call(on_caller.closure);
  } catch (...) {
    caller_error = std::current_exception();
  }
  std::uint32_t expected = n - 1;
  if (taken_.compare_exchange_strong(expected, n, std::memory_order_acq_rel)) {
    // The worker has not started it (its core is busy elsewhere): run it here rather
    // than wait for the worker to be scheduled.
    worker_error = run_job();
  } else {
    // finished_ goes straight to n from the number of the worker's previous job.
    for (std::uint32_t v; (v = finished_.load(std::memory_order_acquire)) != n;) wait_while(finished_, v);
    worker_error = std::exchange(error_, nullptr);
  }
  if (caller_error) std::rethrow_exception(caller_error);
  if (worker_error) std::rethrow_exception(worker_error);
}

SingleThreadedOps::SingleThreadedOps() : previous_(at::get_num_threads()) { set_this_thread_ops_threads(1); }

SingleThreadedOps::~SingleThreadedOps() { set_this_thread_ops_threads(previous_); }

PairedWork::PairedWork(std::unique_ptr<WorkerThread>& worker, bool on_cpu) {
  if (!on_cpu || at::get_num_threads() < 2) return;
  single_threaded_ops_.emplace();
  if (!worker) worker = std::make_unique<WorkerThread>();
  worker_ = worker.get();
}

}  // namespace tom

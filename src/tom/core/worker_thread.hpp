#pragma once
// A persistent second thread for fork-join over two independent pieces of work (SAC's
// twin critics on 2 cores): run(a, b) runs b on the worker while the calling thread runs
// a, and returns when both are done. If the worker has not started b by the time a is
// done (its core busy with other processes), the caller runs b itself, so a loaded
// machine costs at most the serial time, not a wait for the scheduler.
//
// Both sides wait by yielding in a loop for a while (up to spin_microseconds) before
// sleeping: a sleeping thread is often woken late on a busy machine (the scheduler lets
// the running process finish its slice first), which cost about 10% of a SAC update.
// Yielding keeps the core while nothing else wants it, and hands it over otherwise
// (busy-spinning made 2 threads slower than 1 when other processes used both cores).
//
// LibTorch ops on the worker run single-threaded (the worker's OpenMP thread count is
// 1), so the two threads use two cores without nested thread teams; a caller that wants
// its own side single-threaded too holds a SingleThreadedOps. Each job runs with the
// caller's LibTorch thread-local state (grad mode, inference mode, ...).
#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <thread>

namespace at {
class ThreadLocalState;
}

namespace tom {

class WorkerThread {
 public:
  explicit WorkerThread(int spin_microseconds = 1000);
  ~WorkerThread();  // joins the thread (no job is ever pending outside run())
  WorkerThread(const WorkerThread&) = delete;
  WorkerThread& operator=(const WorkerThread&) = delete;

  // Runs on_worker() on the worker (or, if the worker has not started it when
  // on_caller() returns, here) and on_caller() on this thread, and returns when both
  // have returned. If either throws, the exception is rethrown here once both are done
  // (the caller's if both throw). One run() at a time per WorkerThread.
  template <class F, class G>
  void run(F&& on_caller, G&& on_worker) {
    run_jobs(job(on_caller), job(on_worker));
  }

 private:
  struct Job {
    void (*call)(void*);
    void* closure;
  };
  template <class F>
  static Job job(F& f) {
    return {[](void* p) { (*static_cast<F*>(p))(); }, const_cast<void*>(static_cast<const void*>(&f))};
  }
  void run_jobs(Job on_caller, Job on_worker);
  void loop();
  std::exception_ptr run_job();  // job_ with state_
  // Returns once `counter` differs from `old`: yields for up to spin_microseconds_,
  // then sleeps.
  void wait_while(const std::atomic<std::uint32_t>& counter, std::uint32_t old) const;

  const int spin_microseconds_;
  // Job n (counting from 1) is posted when posted_ becomes n, taken by the thread that
  // moves taken_ from n - 1 to n (the worker, or the caller if the worker is late), and,
  // if the worker took it, finished when finished_ becomes n.
  std::atomic<std::uint32_t> posted_{0}, taken_{0}, finished_{0};
  std::atomic<bool> stop_{false};
  Job job_{};
  const at::ThreadLocalState* state_ = nullptr;  // the caller's, for the job
  std::exception_ptr error_;                     // of the worker's last job
  std::thread thread_;                           // last: starts once the members above exist
};

// While alive, LibTorch CPU ops on the calling thread run single-threaded (with the
// OpenMP backend: this thread's OpenMP thread count is 1; other threads are unaffected).
// Restores the previous count on destruction.
class SingleThreadedOps {
 public:
  SingleThreadedOps();
  ~SingleThreadedOps();
  SingleThreadedOps(const SingleThreadedOps&) = delete;
  SingleThreadedOps& operator=(const SingleThreadedOps&) = delete;

 private:
  int previous_;
};

// Fork-join over pairs of independent computations, for one piece of work (a SAC update,
// a model's gradient step): with 2+ LibTorch threads on the CPU, both of a pair run at
// the same time, the second on `worker` (started on first use), and every op, on either
// side, single-threaded while this object lives (the 2 threads are the parallelism: no
// nested thread teams); otherwise one after the other. Either way each computation runs
// single-threaded or alone, so the results do not depend on the thread count.
class PairedWork {
 public:
  PairedWork(std::unique_ptr<WorkerThread>& worker, bool on_cpu);
  template <class F, class G>
  void operator()(F&& first, G&& second) {
    if (worker_ != nullptr) {
      worker_->run(first, second);
    } else {
      first();
      second();
    }
  }

 private:
  WorkerThread* worker_ = nullptr;  // null: one after the other
  std::optional<SingleThreadedOps> single_threaded_ops_;
};

}  // namespace tom

#pragma once
// CPU thread ownership. LibTorch's intra-op pool and OpenBLAS's pool each default to
// one thread per core; stacked, they oversubscribe a small machine (2 x 2 threads made
// one SAC update 4x slower). All thread counts are set here, once, by the caller.

namespace tom {

// Sets LibTorch intra-op threads to `threads`, inter-op threads to 1 and OpenBLAS to a
// single thread (LibTorch parallelises around BLAS calls itself). threads >= 1.
// With threads == 1 every computation is deterministic. Also keeps freed heap memory
// for reuse instead of returning it to the OS after every step (see threads.cpp).
void set_threads(int threads);

// The cores this process may run on (its CPU affinity), at least 1: the default thread
// count of a run and the cores a local sweep shares out.
int available_cores();

}  // namespace tom

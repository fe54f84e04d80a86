#pragma once
// glibc's malloc serves every block of 128 KiB and more (up to 32 MiB as it adapts) with a
// fresh mmap and returns it on free, so a model rollout's 100k-row activations (80 MB a
// layer) arrive as new pages on every step, which the kernel zeroes on first touch: a fifth
// of an ensemble rollout's time, gone with the blocks kept in the heap (docs/results.md,
// "Where each phase's time goes"). The cost: the process keeps its peak heap instead of
// returning freed blocks to the system. `tom`, tom_bench and the test binaries call it; the
// Python module does not, as a library must not retune its host's malloc.

namespace tom {

// Call first thing in main(). Serves blocks below 1 GiB from the heap and keeps freed ones
// for reuse, unless the user tuned malloc themselves (MALLOC_MMAP_THRESHOLD_,
// MALLOC_TRIM_THRESHOLD_ or GLIBC_TUNABLES set), which is then left alone.
void keep_large_blocks_in_heap();

}  // namespace tom

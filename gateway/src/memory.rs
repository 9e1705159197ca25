//! Memory handed back to the OS. The `wasmgate` binary allocates with mimalloc (measured faster
//! than glibc's malloc on the proxy path, docs/BENCHMARKS.md), which keeps freed memory for reuse;
//! after a burst that will not recur, such as compiling plugin modules, it is returned.

/// Returns free memory of mimalloc's heaps and abandoned thread heaps to the OS. Harmless (and
/// cheap) when the global allocator is another one: mimalloc then holds nothing.
pub(crate) fn release_free() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

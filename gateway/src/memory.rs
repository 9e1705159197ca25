//! Memory handed back to the OS. The `wasmgate` binary allocates with mimalloc (measured faster
//! than glibc's malloc on the proxy path, docs/BENCHMARKS.md), which keeps freed memory for reuse;
//! after a burst that will not recur, such as compiling plugin modules, it is returned.
//!
//! The compiled code of plugin modules is paged out once a module is loaded: loading runs it (its
//! metadata, the validation of each configuration), and the kernel maps the neighbours of every
//! page touched, so most of it would stay resident though requests never run it again. What the
//! requests do run comes back on its first use, from the code cache's file.
//!
//! While the gateway starts (loading the configuration, compiling and loading plugin modules),
//! mimalloc returns freed memory at once instead of after its purge delay: a thread that frees a
//! burst and then idles would otherwise hold it (measured: 5–7 MB of idle RSS with 13 modules).
//! The delay is back to mimalloc's default once the start-up compile is over ([`started`]), so
//! requests never pay for it.
//!
//! Transparent huge pages are off for the process: mimalloc asks for them on its 1 GiB arena
//! (`MADV_HUGEPAGE`), and with them a few kilobytes of live data hold whole 2 MiB pages. That
//! was 17 of the 88 MB of idle RSS with 13 plugin modules, and no throughput was measured to
//! depend on it (docs/BENCHMARKS.md).

/// Returns free memory of mimalloc's heaps and abandoned thread heaps to the OS. Harmless (and
/// cheap) when the global allocator is another one: mimalloc then holds nothing.
pub(crate) fn release_free() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread at any time.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// mimalloc's `mi_option_purge_delay`: 15 in the `mi_option_e` of both its versions' `mimalloc.h`
/// (v2 and v3), a name `libmimalloc-sys` does not export; and its default in ms.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const DEFAULT_PURGE_DELAY_MS: std::os::raw::c_long = 10;

/// What a process sets before anything else runs (from `.preinit_array`): huge pages off, and
/// freed memory returned at once until [`started`].
pub fn at_process_start() {
    no_huge_pages();
    // SAFETY: `mi_option_set` takes integers and only changes mimalloc's option table.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// The start-up is over: mimalloc's purge delay is back to its default, and what is free is
/// returned.
pub(crate) fn started() {
    // SAFETY: as in `at_process_start`.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, DEFAULT_PURGE_DELAY_MS) };
    release_free();
}

/// Turns transparent huge pages off for this process and the ones it starts (`PR_SET_THP_DISABLE`),
/// before the allocator has touched much. A kernel without the flag keeps its default.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: `prctl` with `PR_SET_THP_DISABLE` takes integers only and changes only this
    // process's (and its children's) huge-page policy.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0)
    };
}

/// Asks the kernel to reclaim the pages of `range` now (`MADV_PAGEOUT`): file-backed ones are
/// dropped and read again from their file when next touched. Only a hint: a kernel without it
/// (before 5.4) keeps them.
pub(crate) fn page_out(range: std::ops::Range<*const u8>) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sysconf` takes an integer; `madvise` with `MADV_PAGEOUT` changes no contents,
        // only which pages are resident, and is given whole pages that this process maps (the
        // range's own pages, its start rounded down to a page boundary).
        unsafe {
            let page = libc::sysconf(libc::_SC_PAGESIZE).max(4096) as usize;
            let start = range.start as usize & !(page - 1);
            let len = (range.end as usize).saturating_sub(start);
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_PAGEOUT);
        }
    }
}

//! Bare Pingora with mimalloc, wasmgate's allocator; see [`wasmgate_bench::bare`].

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    wasmgate_bench::bare::main();
}

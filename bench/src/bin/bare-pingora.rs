//! Bare Pingora with the system allocator; see [`wasmgate_bench::bare`].

fn main() {
    wasmgate_bench::bare::main();
}

//! Fixture for the symbolization tests: a Rust function whose mangled name (legacy or v0) must
//! come back readable, without the hash.

#[inline(never)]
pub fn outer_rust_function(n: usize) -> Vec<u8> {
    std::hint::black_box(vec![0u8; n])
}

fn main() {
    let v = outer_rust_function(std::hint::black_box(64));
    println!("{}", v.len());
}

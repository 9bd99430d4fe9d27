//! The first queries after a bulk load of 1M users
//! ([`support::first_queries`]) with mimalloc as the allocator, against
//! `first_query` with the C library's malloc.

mod support;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    support::first_queries();
}

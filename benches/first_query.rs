//! The first queries after a bulk load of 1M users, with the C library's
//! malloc ([`support::first_queries`]); `first_query_mimalloc` is the same
//! with mimalloc.

mod support;

fn main() {
    support::first_queries();
}

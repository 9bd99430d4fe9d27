//! The lexer and parser on arbitrary text: never a panic, and every statement
//! that parses prints as text that parses back to the same tree.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profiledb_query::{parse_script, parse_statement};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(statements) = parse_script(text) else {
        return;
    };
    for (stmt, _) in statements {
        let printed = stmt.to_string();
        match parse_statement(&printed) {
            Ok(again) => assert_eq!(stmt, again, "{printed}"),
            Err(e) => panic!("{printed:?} does not parse back: {e}"),
        }
    }
});

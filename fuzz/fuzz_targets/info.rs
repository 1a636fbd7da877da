//! Feeds arbitrary bytes (lossy UTF-8) to the INFO parser and checks the shared invariants.

#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_cluster_exporter_fuzz::invariants::check_info;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = check_info(&text);
});

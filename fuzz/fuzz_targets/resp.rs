//! Feeds arbitrary bytes to the RESP framing of the client's read buffer and checks its invariants.

#![no_main]

use libfuzzer_sys::fuzz_target;
use redis_cluster_exporter_fuzz::invariants::check_resp_frame;

fuzz_target!(|data: &[u8]| {
    let _ = check_resp_frame(data);
});

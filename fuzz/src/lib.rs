//! Support code for the cargo-fuzz targets in `fuzz_targets/`.

pub mod invariants;

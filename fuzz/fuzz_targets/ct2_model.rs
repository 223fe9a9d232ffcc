//! Any bytes read as a CTranslate2 `model.bin` yield an index or an error, never a panic;
//! an index that reads can be queried and its small variables decoded.
//!
//! The reader only takes files, so each input is written to one scratch file per fuzzing
//! process (overwritten on every run) in the system temporary directory.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use speech::models::ct2::{Ct2Index, PartsReader};

/// Variables larger than this many elements are not decoded, to keep each run cheap.
const MAX_DECODED_ELEMENTS: usize = 4096;

fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        std::env::temp_dir().join(format!("ivr-fuzz-ct2-{}.bin", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    if std::fs::write(path, data).is_err() {
        // Nothing to fuzz without a scratch file; the reader is not at fault.
        return;
    }
    let Ok(mut src) = PartsReader::open(std::slice::from_ref(path)) else {
        return;
    };
    let Ok(index) = Ct2Index::read(&mut src, path) else {
        return;
    };
    let _ = index.var("encoder/num_heads");
    let _ = index.scalar_int(&mut src, "encoder/num_heads");
    let _ = index.require("decoder/embeddings/weight");
    for var in index.vars() {
        let _ = index.var(&var.name);
        let _ = index.scalar_int(&mut src, &var.name);
        if var.elements() > MAX_DECODED_ELEMENTS {
            continue;
        }
        if var.dtype.is_float() {
            let _ = index.read_all_float(&mut src, var);
        } else {
            let mut out = Vec::new();
            let _ = index.read_rows(&mut src, var, 0..var.rows(), Some(&[2.0]), &mut out);
            let rows = var.rows();
            let per_row = vec![0.5; rows];
            out.clear();
            let _ = index.read_rows(&mut src, var, rows / 2..rows, Some(&per_row), &mut out);
        }
    }
});

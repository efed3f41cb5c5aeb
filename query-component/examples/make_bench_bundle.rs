//! Wraps a usearch index into a bundle (one shot per key) to measure search
//! inside the component at realistic sizes:
//!
//! ```text
//! python core/tests/fixtures/usearch/gen_bench_index.py /tmp/bench-index
//! cargo run --example make_bench_bundle -- /tmp/bench-index/f16.usearch /tmp/bench-bundles bench
//! ```

use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [index, root, collection] = args.as_slice() else {
        eprintln!("usage: make_bench_bundle <index.usearch> <bundles root> <collection>");
        std::process::exit(2);
    };
    match query_component::test_bundle::write_from_index(&PathBuf::from(root), collection, &PathBuf::from(index)) {
        Ok(n) => println!("wrote {n} shots to {root}/{collection}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

//! Rebuilds the `logflux` binary when a file of the web UI (`ui/`) is added, changed or
//! removed: the UI is compiled in (rust-embed), and a file added to the folder is otherwise
//! not noticed by Cargo.

fn main() {
    println!("cargo:rerun-if-changed=ui");
}

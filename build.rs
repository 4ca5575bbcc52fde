fn main() {
    // Re-embed migrations when one is added or changed.
    println!("cargo:rerun-if-changed=migrations");
}

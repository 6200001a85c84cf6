//! Prints the README's command table (the text between its `commands` markers):
//! `cargo run -p commands --example reference_table`.
fn main() {
    print!("{}", commands::reference_table());
}

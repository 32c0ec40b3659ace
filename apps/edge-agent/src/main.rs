//! `anchor-edge-agent`: see the library's documentation.

fn main() -> std::process::ExitCode {
    anchor_edge_agent::main()
}

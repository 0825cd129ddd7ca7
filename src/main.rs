//! `ldzmask` command line.

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    println!("ldzmask {}", env!("CARGO_PKG_VERSION"));
}

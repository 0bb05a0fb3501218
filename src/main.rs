//! The `authgate` command: parse flags, load and check the config, run the server.

use authgate::config::Config;
use clap::Parser;
use pingora_core::server::configuration::Opt;
use std::path::PathBuf;
use std::process::ExitCode;

// glibc malloc was ~12% of the proxy path's CPU in perf (bench/RESULTS.md);
// mimalloc's thread-local free lists cut that for Pingora's many small buffers.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A reverse-proxy auth gateway on Pingora.
#[derive(Parser, Debug)]
#[command(name = "authgate", version)]
struct Cli {
    /// The gateway config file (YAML).
    #[arg(short, long, default_value = "conf/gateway.yaml")]
    conf: PathBuf,
    /// Check the config and exit.
    #[arg(short, long)]
    test: bool,
    /// Take over the listeners of a running instance (graceful upgrade).
    #[arg(short, long)]
    upgrade: bool,
    /// Run in the background.
    #[arg(short, long)]
    daemon: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(&cli.conf) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("authgate: {e}");
            return ExitCode::from(2);
        }
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(&cfg.log_level))
        .init();
    if cli.test {
        return match authgate::startup::build_parts(&cfg) {
            Ok(_) => {
                println!("authgate: config {} is ok", cli.conf.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("authgate: {e}");
                ExitCode::from(2)
            }
        };
    }
    if let Err(e) = cfg.prepare_run_dir() {
        eprintln!("authgate: {e}");
        return ExitCode::from(2);
    }
    let opt = Opt {
        upgrade: cli.upgrade,
        daemon: cli.daemon,
        nocapture: false,
        test: false,
        conf: None,
    };
    match authgate::startup::build_server(&cfg, opt) {
        Ok(server) => {
            let listen: Vec<String> = cfg.listen.iter().map(|a| a.to_string()).collect();
            log::info!("authgate listening on {}", listen.join(", "));
            server.run_forever()
        }
        Err(e) => {
            eprintln!("authgate: {e}");
            ExitCode::from(2)
        }
    }
}

//! The `authgate` command: parse flags, load and check the config, run the server (or `keygen`, `import-users`).

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
    #[arg(short, long, default_value = "conf/gateway.yaml", global = true)]
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
    #[command(subcommand)]
    command: Option<Command>,
}

/// Subcommands; without one, authgate runs the gateway.
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Write a new signing key pair (PEM) for `tokens.keys` and print its entry.
    Keygen(authgate::keygen::KeygenArgs),
    /// Import users exported from Django (ids and passwords kept), into the Redis of `-c`.
    ImportUsers(authgate::import::ImportArgs),
    /// Manage users in the Redis of `-c`: list, show, create, set-roles, disable, enable, delete, logout.
    Users(authgate::admin::cli::UsersArgs),
    /// Ask what a request would get from the routes of `-c`: `routes explain METHOD PATH`.
    Routes(authgate::routes_cli::RoutesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::ImportUsers(args)) = &cli.command {
        return authgate::import::main(&cli.conf, args);
    }
    if let Some(Command::Routes(args)) = &cli.command {
        return authgate::routes_cli::main(&cli.conf, args);
    }
    if let Some(Command::Users(args)) = &cli.command {
        return authgate::admin::cli::main(&cli.conf, args);
    }
    if let Some(Command::Keygen(args)) = &cli.command {
        return match authgate::keygen::run(args) {
            Ok(said) => {
                print!("{said}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("authgate keygen: {e}");
                ExitCode::from(2)
            }
        };
    }
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
        return match authgate::startup::check(&cfg) {
            Ok(()) => {
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
            authgate::startup::run(server);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("authgate: {e}");
            ExitCode::from(2)
        }
    }
}

//! `authgate routes explain`: check a conf file's routes before deploying it, by asking what a request would get.

use crate::auth::roles::Roles;
use crate::config::Config;
use crate::proxy::explain::{explain, Caller};
use std::path::Path;
use std::process::ExitCode;

/// `authgate routes <verb>`.
#[derive(Debug, Clone, clap::Args)]
pub struct RoutesArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: RoutesCommand,
}

/// The verbs of `authgate routes`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum RoutesCommand {
    /// The canonical path, the route that matches, and the answer a request
    /// would get with a valid token holding `--roles` (or with no token).
    Explain {
        /// The Host header (default: an absolute URL's own authority, else `localhost`).
        #[arg(long)]
        host: Option<String>,
        /// The roles of the caller's valid token, comma-separated (default: none).
        #[arg(long, value_delimiter = ',', conflicts_with = "anonymous")]
        roles: Vec<String>,
        /// The caller sends no token.
        #[arg(long)]
        anonymous: bool,
        /// Print the report as one JSON object.
        #[arg(long)]
        json: bool,
        /// The method, as sent (GET, POST...).
        method: String,
        /// An origin-form path (`/api/x?y=1`) or an absolute URL.
        target: String,
    },
}

/// Run `authgate routes ...`. Exit 0 when the request would be forwarded or
/// served by the gateway, 1 when it would be refused, 2 for a bad config or argument.
pub fn main(conf: &Path, args: &RoutesArgs) -> ExitCode {
    let RoutesCommand::Explain {
        host,
        roles,
        anonymous,
        json,
        method,
        target,
    } = &args.command;
    let fail = |e: String| {
        eprintln!("authgate routes explain: {e}");
        ExitCode::from(2)
    };
    let cfg = match Config::read(conf).and_then(|c| c.validate().map(|()| c)) {
        Ok(c) => c,
        Err(e) => return fail(e.to_string()),
    };
    let routing = match crate::startup::routing(&cfg) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    let caller = if *anonymous {
        Caller::Anonymous
    } else {
        match Roles::from_names(roles) {
            Ok(r) => Caller::Holding(r),
            Err(e) => return fail(format!("--roles: {e}")),
        }
    };
    let explained = match explain(
        &routing.routes,
        &routing.edge,
        method,
        target,
        host.as_deref(),
        &caller,
    ) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if *json {
        println!("{}", explained.report);
    } else {
        let r = &explained.report;
        let show = |v: &serde_json::Value| match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => "-".into(),
            other => other.to_string(),
        };
        println!("request:        {method} {target}");
        println!("canonical path: {}", show(&r["canonical_path"]));
        println!("host:           {}", show(&r["host"]));
        println!("route:          {}", show(&r["route"]));
        println!("answer:         {}", show(&r["answer"]));
    }
    if explained.allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

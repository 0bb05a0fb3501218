//! `authgate users ...`: the admin operations from a shell, straight against the Redis of the conf file; JSON lines on stdout, audit lines on stderr.

use super::{account_json, Accounts, AdminError, DEFAULT_PAGE};
use crate::auth::password::Passwords;
use crate::config::{Config, ConfigError};
use crate::domain::UserId;
use crate::events::Actor;
use crate::store::{Redis, RedisSetupError, Store};
use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

/// Which user a verb acts on.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Select {
    /// The user's id.
    #[arg(long)]
    pub id: Option<u64>,
    /// The user's email (normalised as at login).
    #[arg(long)]
    pub email: Option<String>,
}

/// `authgate users <verb>`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum UsersCommand {
    /// Users by id, a page at a time (`next` in the last line goes on).
    List {
        /// Users with ids above this one.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many (1 to 500).
        #[arg(long, default_value_t = DEFAULT_PAGE)]
        limit: usize,
    },
    /// One user.
    Show(#[command(flatten)] Select),
    /// Create a user; without --password-stdin it has no usable password.
    Create {
        /// The email.
        #[arg(long)]
        email: String,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Read the password from the first line of stdin (never from the command line).
        #[arg(long)]
        password_stdin: bool,
    },
    /// Replace a user's roles (`--roles a,b`, or as trailing arguments; none clears them).
    SetRoles {
        /// Which user.
        #[command(flatten)]
        select: Select,
        /// Roles, comma-separated.
        #[arg(long, value_delimiter = ',')]
        roles: Vec<String>,
        /// Roles as arguments.
        #[arg(trailing_var_arg = true)]
        more: Vec<String>,
    },
    /// Refuse the user's logins and refreshes, and revoke every token.
    Disable(#[command(flatten)] Select),
    /// Let the user log in again.
    Enable(#[command(flatten)] Select),
    /// Delete the user (a tombstone keeps the id from reuse; the email is free again).
    Delete(#[command(flatten)] Select),
    /// End every session of the user and revoke its tokens.
    Logout(#[command(flatten)] Select),
    /// The user's live sessions.
    Sessions(#[command(flatten)] Select),
}

/// `authgate users ...` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct UsersArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: UsersCommand,
}

/// Why the command did not run.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    RedisSetup(#[from] RedisSetupError),
    #[error("passwords: {0}")]
    Passwords(String),
    #[error("cannot start a runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("cannot read the password from stdin: {0}")]
    Stdin(#[source] std::io::Error),
    #[error(transparent)]
    Admin(#[from] AdminError),
}

/// Run `authgate users ...` with the config at `conf`. Exit 0 done, 1 not
/// found or refused (nothing changed), 2 a configuration error.
pub fn main(conf: &Path, args: &UsersArgs) -> ExitCode {
    match run(conf, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authgate users: {e}");
            ExitCode::from(match e {
                CliError::Config(_) | CliError::RedisSetup(_) | CliError::Passwords(_) => 2,
                _ => 1,
            })
        }
    }
}

fn operation(c: &UsersCommand) -> &'static str {
    match c {
        UsersCommand::List { .. } => "list_users",
        UsersCommand::Show(_) => "get_user",
        UsersCommand::Create { .. } => "create_user",
        UsersCommand::SetRoles { .. } => "set_roles",
        UsersCommand::Disable(_) => "disable_user",
        UsersCommand::Enable(_) => "enable_user",
        UsersCommand::Delete(_) => "delete_user",
        UsersCommand::Logout(_) => "end_sessions",
        UsersCommand::Sessions(_) => "list_sessions",
    }
}

fn run(conf: &Path, args: &UsersArgs) -> Result<(), CliError> {
    // Redis only: no JWT secret needed.
    let cfg = Config::read(conf)?;
    cfg.validate()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    let store = Arc::new(Store::new(Redis::new(&cfg.redis)?, &cfg.redis.key_prefix));
    let passwords = Arc::new(Passwords::new(&cfg.passwords).map_err(CliError::Passwords)?);
    let accounts = Accounts::new(
        store,
        passwords,
        None,
        cfg.tokens.access_ttl_seconds,
        cfg.registration.first_id,
    );
    let outcome = rt.block_on(verb(&accounts, &args.command));
    if let Err(CliError::Admin(e)) = &outcome {
        Accounts::count(operation(&args.command), Some(e));
    } else if outcome.is_ok() {
        Accounts::count(operation(&args.command), None);
    }
    outcome
}

fn print(v: &serde_json::Value) {
    println!("{v}");
}

async fn chosen(a: &Accounts, s: &Select) -> Result<UserId, AdminError> {
    match (s.id, &s.email) {
        (Some(id), _) => Ok(a.show(UserId::new(id)).await?.id),
        (None, Some(email)) => Ok(a.find(email).await?.id),
        (None, None) => Err(AdminError::NotFound),
    }
}

async fn verb(a: &Accounts, c: &UsersCommand) -> Result<(), CliError> {
    let actor = Actor::Cli;
    match c {
        UsersCommand::List { after, limit } => {
            let (users, next) = a.list(*after, *limit).await?;
            for u in &users {
                print(&account_json(u));
            }
            print(&serde_json::json!({ "next": next }));
        }
        UsersCommand::Show(s) => {
            let id = chosen(a, s).await?;
            print(&account_json(&a.show(id).await?));
        }
        UsersCommand::Create {
            email,
            roles,
            password_stdin,
        } => {
            let password = if *password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .map_err(CliError::Stdin)?;
                Some(line.trim_end_matches(['\r', '\n']).to_owned())
            } else {
                None
            };
            print(&account_json(
                &a.create(email, password, roles, actor).await?,
            ));
        }
        UsersCommand::SetRoles {
            select,
            roles,
            more,
        } => {
            let id = chosen(a, select).await?;
            let all: Vec<String> = roles
                .iter()
                .chain(more)
                .flat_map(|r| r.split(','))
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect();
            print(&account_json(&a.set_roles(id, &all, actor).await?));
        }
        UsersCommand::Disable(s) => {
            let id = chosen(a, s).await?;
            print(&account_json(&a.set_disabled(id, true, actor).await?));
        }
        UsersCommand::Enable(s) => {
            let id = chosen(a, s).await?;
            print(&account_json(&a.set_disabled(id, false, actor).await?));
        }
        UsersCommand::Delete(s) => {
            let id = chosen(a, s).await?;
            a.delete(id, actor).await?;
            print(&serde_json::json!({ "id": id.get(), "deleted": true }));
        }
        UsersCommand::Logout(s) => {
            let id = chosen(a, s).await?;
            a.logout(id, actor).await?;
            print(&serde_json::json!({ "id": id.get(), "sessions_ended": true }));
        }
        UsersCommand::Sessions(s) => {
            let id = chosen(a, s).await?;
            let rows: Vec<serde_json::Value> = a
                .sessions(id)
                .await?
                .iter()
                .map(crate::api::sessions::row)
                .collect();
            print(&serde_json::json!({ "sessions": rows }));
        }
    }
    Ok(())
}

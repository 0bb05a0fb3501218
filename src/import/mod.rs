//! `authgate import-users`: users exported from a Django service become gateway
//! users with the same ids, emails and passwords (docs/migrating-from-django.md).
//!
//! Passes over the file, each streaming one record at a time. The first
//! checks every record without Redis and finds the emails and ids that several
//! records share; the second reads Redis, writing nothing, for ids held by
//! accounts registered here (then the import is refused, exit 3, unless
//! `--allow-id-overlap`); the last raises `user:next_id` to the highest id (so no
//! registration can take an id the import needs) and writes the users in
//! pipelined batches. Every record not imported is reported with its position
//! and the reason; a dry run reports the same, writing nothing.

mod check;
mod source;

pub use source::{Format, SourceError};

use crate::config::{Config, ConfigError};
use crate::store::import::Outcome;
use crate::store::users::{NewUser, Origin};
use crate::store::{Redis, RedisSetupError, Store, StoreError};
use check::{Checked, Groups, Reason, Skip};
use source::Record;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `authgate import-users [--dry-run] [--format json|csv] FILE`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// Check every record, against Redis too, and print the whole report; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// The export's format; by default `csv` for a `.csv` file, else `json`.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Import even though some ids of the file are accounts registered here:
    /// those records are skipped (`id_registered`), the rest imported.
    #[arg(long)]
    pub allow_id_overlap: bool,
    /// The export: `manage.py dumpdata <app.User> --format json` output, or a CSV
    /// with `id,email,username,password` columns.
    pub file: PathBuf,
}

/// Users per pipelined batch.
const BATCH: usize = 1000;
/// A progress line on stderr every this many records.
const PROGRESS_EVERY: u64 = 10_000;
/// The least time a Redis call may take during an import (a batch is one call).
const MIN_TIMEOUT_MS: u64 = 10_000;

/// Why an import stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The config file.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `redis.*` cannot make a client.
    #[error(transparent)]
    RedisSetup(#[from] RedisSetupError),
    /// The export cannot be read.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Redis failed; what was written is kept, and the same command picks up from there.
    #[error("{0}; users written so far are kept: run the same command again to go on")]
    Store(#[from] StoreError),
    /// No async runtime could be started.
    #[error("cannot start a runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// Ids of the file are accounts registered here: nothing was written.
    #[error(
        "{0} record(s) have ids of accounts registered here (listed above as id_registered); \
         nothing was written. Registration and the import share one id space: keep \
         `registration.enabled: false` until the final import, or set `registration.first_id` \
         above the export's ids; `--allow-id-overlap` imports the rest and skips those"
    )]
    Overlap(u64),
}

/// The exit status of an import refused because ids overlap (nothing written).
pub const EXIT_OVERLAP: u8 = 3;

/// Run the import with the Redis settings of the config at `conf`; prints the
/// report and summary on stdout, progress on stderr. Exit 0 when every record was
/// read and decided (skipped records included), 1 when the import stopped, 2 for
/// a bad config, 3 when ids overlap registered accounts (nothing written).
pub fn main(conf: &Path, args: &ImportArgs) -> ExitCode {
    match run(conf, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("authgate import-users: {e}");
            ExitCode::from(match e {
                ImportError::Config(_) => 2,
                ImportError::Overlap(_) => EXIT_OVERLAP,
                _ => 1,
            })
        }
    }
}

fn run(conf: &Path, args: &ImportArgs) -> Result<(), ImportError> {
    // The import talks to Redis only: no JWT secret needed.
    let mut cfg = Config::read(conf)?;
    cfg.validate()?;
    cfg.redis.timeout_ms = cfg.redis.timeout_ms.max(MIN_TIMEOUT_MS);
    let format = args.format.unwrap_or_else(|| Format::guess(&args.file));
    let now = crate::api::now_ms() / 1000;

    let scan = first_pass(&args.file, format, now)?;

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(ImportError::Runtime)?;
    let store = Store::new(Redis::new(&cfg.redis)?, &cfg.redis.key_prefix);
    let label = match format {
        Format::Json => "record",
        Format::Csv => "line",
    };
    let pass = |mode| Import {
        args,
        mode,
        scan: &scan,
        rt: &rt,
        store: &store,
        now,
        batch: Vec::with_capacity(BATCH),
        tally: Tally::default(),
        seen: 0,
        label,
    };
    if !args.dry_run && !args.allow_id_overlap {
        // Before anything is written: a registered account at an id of the file.
        let mut check = pass(Mode::OverlapCheck);
        source::for_each(&args.file, format, |r| check.record(r))?;
        check.flush()?;
        if check.tally.overlaps > 0 {
            return Err(ImportError::Overlap(check.tally.overlaps));
        }
    }
    let counter = match (args.dry_run, scan.max_id) {
        (_, 0) => None,
        (true, max) => Some(format!("would be raised to at least {max}")),
        (false, max) => {
            let now_at = rt.block_on(store.raise_next_user_id(max))?;
            Some(format!("{now_at} (at least the highest id, {max})"))
        }
    };

    let mut run = pass(if args.dry_run {
        Mode::DryRun
    } else {
        Mode::Write
    });
    source::for_each(&args.file, format, |r| run.record(r))?;
    run.flush()?;
    run.summary(counter.as_deref());
    match run.tally.overlaps {
        // A dry run says what the import would do: be refused.
        n if n > 0 && args.dry_run && !args.allow_id_overlap => Err(ImportError::Overlap(n)),
        _ => Ok(()),
    }
}

/// What a pass over the records does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Reads Redis and reports only the records whose ids are registered accounts.
    OverlapCheck,
    /// Reads Redis and reports everything; writes nothing.
    DryRun,
    /// Writes.
    Write,
}

/// What the first pass learns.
struct Scan {
    records: u64,
    max_id: u64,
    emails: Groups<[u8; 16]>,
    ids: Groups<u64>,
}

fn first_pass(file: &Path, format: Format, now: u64) -> Result<Scan, ImportError> {
    let mut scan = Scan {
        records: 0,
        max_id: 0,
        emails: Groups::new(),
        ids: Groups::new(),
    };
    source::for_each(file, format, |r| {
        scan.records += 1;
        if let Ok(c) = check::check(&r, now) {
            scan.max_id = scan.max_id.max(c.id);
            scan.emails.add(check::email_key(&c.email), r.at);
            scan.ids.add(c.id, r.at);
        }
        Ok::<(), ImportError>(())
    })?;
    Ok(scan)
}

/// Counts for the summary.
#[derive(Debug, Default)]
struct Tally {
    imported: u64,
    disabled: u64,
    unusable: u64,
    present: u64,
    /// Records whose ids are accounts registered here.
    overlaps: u64,
    skipped: BTreeMap<Reason, u64>,
}

/// The second pass.
struct Import<'a> {
    args: &'a ImportArgs,
    mode: Mode,
    scan: &'a Scan,
    rt: &'a tokio::runtime::Runtime,
    store: &'a Store,
    now: u64,
    /// Checked records waiting for the next pipeline, with their positions.
    batch: Vec<(u64, Checked)>,
    tally: Tally,
    seen: u64,
    /// `record` (JSON) or `line` (CSV).
    label: &'static str,
}

impl Import<'_> {
    fn record(&mut self, r: Record) -> Result<(), ImportError> {
        self.seen += 1;
        match self.decide(&r) {
            Ok(c) => {
                self.batch.push((r.at, c));
                if self.batch.len() == BATCH {
                    self.flush()?;
                }
            }
            Err(s) => self.skipped(r.at, r.pk.as_deref(), &s),
        }
        if self.seen.is_multiple_of(PROGRESS_EVERY) && self.mode != Mode::OverlapCheck {
            let t = &self.tally;
            eprintln!(
                "import-users: {}/{} records (imported {}, already present {}, skipped {})",
                self.seen,
                self.scan.records,
                t.imported,
                t.present,
                t.skipped.values().sum::<u64>()
            );
        }
        Ok(())
    }

    /// The checks of the first pass, and what it found about the file as a whole.
    fn decide(&self, r: &Record) -> Result<Checked, Skip> {
        let c = check::check(r, self.now)?;
        let shared = |reason, what, other: Option<u64>| match other {
            Some(at) => Err(Skip {
                reason,
                detail: format!(
                    "{what} as {} {at}; every such record is skipped",
                    self.label
                ),
            }),
            None => Ok(()),
        };
        let email = check::email_key(&c.email);
        shared(
            Reason::DuplicateEmail,
            "the same email",
            self.scan.emails.other(&email, r.at),
        )?;
        shared(
            Reason::DuplicateId,
            "the same pk",
            self.scan.ids.other(&c.id, r.at),
        )?;
        Ok(c)
    }

    fn skipped(&mut self, at: u64, pk: Option<&str>, s: &Skip) {
        *self.tally.skipped.entry(s.reason).or_default() += 1;
        if s.reason == Reason::IdRegistered {
            self.tally.overlaps += 1;
        } else if self.mode == Mode::OverlapCheck {
            return;
        }
        println!(
            "{}: skipped, {}: {}",
            self.position(at, pk),
            s.reason.name(),
            s.detail
        );
    }

    fn position(&self, at: u64, pk: Option<&str>) -> String {
        match pk {
            Some(pk) => format!("{} {at} (pk {pk})", self.label),
            None => format!("{} {at}", self.label),
        }
    }

    /// Write (or, in a dry run, check) the waiting records in one pipeline each step.
    fn flush(&mut self) -> Result<(), ImportError> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let users: Vec<NewUser<'_>> = batch
            .iter()
            .map(|(_, c)| NewUser {
                id: c.id,
                email: &c.email,
                username: &c.username,
                password_hash: &c.password_hash,
                created_at: c.created_at,
                disabled: c.disabled,
                origin: Origin::Imported,
            })
            .collect();
        let outcomes = if self.mode != Mode::Write {
            self.rt.block_on(self.store.check_users(&users))?
        } else {
            self.rt.block_on(self.store.import_users(&users))?
        };
        for ((at, c), outcome) in batch.iter().zip(outcomes) {
            let pk = c.id.to_string();
            let skip = |reason, detail: String| Skip { reason, detail };
            match outcome {
                Outcome::Imported => self.imported(*at, c),
                Outcome::AlreadyPresent => self.tally.present += 1,
                Outcome::IdTaken => self.skipped(
                    *at,
                    Some(&pk),
                    &skip(Reason::IdTaken, "the id is another imported account".into()),
                ),
                Outcome::IdDeleted => self.skipped(
                    *at,
                    Some(&pk),
                    &skip(
                        Reason::IdTaken,
                        "the id belonged to a deleted user and is never given again".into(),
                    ),
                ),
                Outcome::IdRegistered => self.skipped(
                    *at,
                    Some(&pk),
                    &skip(
                        Reason::IdRegistered,
                        "the id is an account registered here, not the one in the file".into(),
                    ),
                ),
                Outcome::EmailTaken(holder) => self.skipped(
                    *at,
                    Some(&pk),
                    &skip(
                        Reason::EmailTaken,
                        format!("the email belongs to user {holder}"),
                    ),
                ),
            }
        }
        Ok(())
    }

    fn imported(&mut self, at: u64, c: &Checked) {
        self.tally.imported += 1;
        if self.mode == Mode::OverlapCheck {
            return;
        }
        let pk = c.id.to_string();
        let mut notes = Vec::new();
        if c.disabled {
            self.tally.disabled += 1;
            notes.push("disabled: is_active is false, cannot log in".to_owned());
        }
        if c.unusable {
            self.tally.unusable += 1;
            notes.push("unusable Django password, cannot log in".to_owned());
        }
        if let Some(why) = &c.username_dropped {
            notes.push(format!("username not kept: {why}"));
        }
        if !notes.is_empty() {
            println!(
                "{}: {}; {}",
                self.position(at, Some(&pk)),
                if self.args.dry_run {
                    "would be imported"
                } else {
                    "imported"
                },
                notes.join("; ")
            );
        }
    }

    fn summary(&self, counter: Option<&str>) {
        let t = &self.tally;
        let dry = self.args.dry_run;
        println!(
            "import-users: {} records in {}{}",
            self.seen,
            self.args.file.display(),
            if dry {
                " (dry run: nothing written)"
            } else {
                ""
            }
        );
        println!(
            "  {}: {} (disabled: {}, unusable password: {})",
            if dry { "would import" } else { "imported" },
            t.imported,
            t.disabled,
            t.unusable
        );
        println!("  already present: {}", t.present);
        println!("  skipped: {}", t.skipped.values().sum::<u64>());
        for (reason, n) in &t.skipped {
            println!("    {}: {n}", reason.name());
        }
        if let Some(c) = counter {
            println!("  user:next_id: {c}");
        }
    }
}

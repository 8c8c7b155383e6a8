//! `tmctl`: TriggerMesh's local workflow for the Amazon DynamoDB source,
//! with local processes instead of containers.
//!
//! A broker is a folder under `~/.triggermesh/cli/<broker>/` (see
//! [`home`]): the manifest of everything created in it (the objects `dump`
//! prints), the broker's trigger configuration, and what runs (pids and
//! ports). Commands edit those files and start or stop the
//! `memory-broker` and `awsdynamodbsource-adapter` processes ([`process`]).
//! This binary is the edge: errors become one `error: ...` line and exit
//! status 1; it never prints a secret.

mod commands;
mod flags;
mod home;
mod manifest;
mod process;
mod runtime;
mod watch;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

/// Creates brokers, AWSDynamoDBSource adapters and triggers on this machine,
/// as background processes, and turns them into Kubernetes objects with
/// `dump`.
///
/// Start with `tmctl create broker NAME`, then
/// `tmctl create source awsdynamodb --arn ARN --auth.credentials.accessKeyID ID --auth.credentials.secretAccessKey KEY`,
/// then `tmctl create trigger --target URL` or `tmctl watch`. Everything
/// lives under `$HOME/.triggermesh/cli/`.
#[derive(Parser, Debug)]
#[command(name = "tmctl", version, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a broker, a source or a trigger.
    #[command(subcommand)]
    Create(Create),
    /// Print every event passing through the broker, until Ctrl-C.
    Watch(BrokerArg),
    /// Show the broker, its triggers and its sources, with their status
    /// (never a secret).
    Describe(BrokerArg),
    /// Print the broker's objects for `kubectl apply -f -`.
    Dump(commands::dump::DumpArgs),
    /// Delete a source, a trigger or a broker (stopping what runs).
    Delete {
        /// What to delete.
        #[arg(value_enum)]
        kind: commands::delete::Kind,
        /// Its name.
        name: String,
        /// The broker it belongs to (default: the current one).
        #[arg(long)]
        broker: Option<String>,
    },
    /// Stop the sources' adapters, then the broker once it has delivered
    /// what it holds.
    Stop(BrokerArg),
    /// Start the broker and its sources' adapters (those not running).
    Start {
        #[command(flatten)]
        broker: BrokerArg,
        /// Stop everything first.
        #[arg(long)]
        restart: bool,
    },
}

#[derive(Args, Debug)]
struct BrokerArg {
    /// The broker (default: the current one, set by `create broker`).
    broker: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Create {
    /// Create a local broker, start it, and make it the current one.
    Broker {
        /// The broker's name (lower-case letters, digits and '-').
        name: String,
        /// How many events it may hold before refusing more (503).
        #[arg(long, default_value_t = 10_000)]
        capacity: u32,
    },
    /// Create a source and start its adapter, sending to the current broker.
    ///
    /// `tmctl create source awsdynamodb --arn ARN --auth.credentials.accessKeyID ID --auth.credentials.secretAccessKey KEY`.
    /// Every field of the AWSDynamoDBSource spec is a dotted flag; see
    /// `tmctl create source awsdynamodb --help`.
    #[command(disable_help_flag = true)]
    Source {
        /// The source kind: only `awsdynamodb`.
        kind: String,
        /// `--name NAME`, `--broker NAME`, `--wait SECONDS`, and the spec's
        /// fields as dotted flags (`--field.sub value` or `--field.sub=value`).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "FLAGS"
        )]
        flags: Vec<String>,
    },
    /// Create a trigger: events of the broker that pass its filters go to a
    /// target URL, in order, with retries.
    Trigger(commands::trigger::TriggerArgs),
}

fn main() -> ExitCode {
    // Output piped into `head` ends tmctl quietly, as it does `cat`, instead
    // of a panic on the failed write.
    // SAFETY: called before any thread exists; SIG_DFL is a valid handler.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let home = home::Home::from_env()?;
    match cli.command {
        Command::Create(Create::Broker { name, capacity }) => {
            commands::broker::create(&home, &name, capacity).await
        }
        Command::Create(Create::Source { kind, flags }) => {
            commands::source::create(&home, &kind, &flags).await
        }
        Command::Create(Create::Trigger(args)) => commands::trigger::create(&home, args).await,
        Command::Watch(b) => watch::run(&home, b.broker.as_deref()).await,
        Command::Describe(b) => commands::describe::run(&home, b.broker.as_deref()).await,
        Command::Dump(args) => commands::dump::run(&home, args),
        Command::Delete { kind, name, broker } => {
            commands::delete::run(&home, kind, &name, broker.as_deref()).await
        }
        Command::Stop(b) => commands::lifecycle::stop(&home, b.broker.as_deref()).await,
        Command::Start { broker, restart } => {
            commands::lifecycle::start(&home, broker.broker.as_deref(), restart).await
        }
    }
}

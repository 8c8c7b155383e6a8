//! `awsdynamodbsource-controller`: runs the controller, or renders what it
//! would create.

use std::process::ExitCode;

use awsdynamodbsource_controller::render::render;
use awsdynamodbsource_controller::resources::AdapterSettings;
use clap::{Parser, Subcommand};

/// The Kubernetes controller of AWSDynamoDBSource objects.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The adapter's container image. By default the adapter of this
    /// controller's own version: a rollout of the controller then rolls the
    /// adapters to the code it was built with, never to whatever `latest`
    /// is.
    #[arg(
        long,
        global = true,
        env = "AWSDYNAMODBSOURCE_ADAPTER_IMAGE",
        default_value = concat!("awsdynamodbsource-adapter:", env!("CARGO_PKG_VERSION"))
    )]
    adapter_image: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the controller in the cluster it finds (in-cluster config or
    /// KUBECONFIG), leading through a Lease so that one replica acts.
    Run {
        /// The namespace of the leader-election Lease.
        #[arg(long, env = "POD_NAMESPACE", default_value = "awsdynamodbsource")]
        namespace: String,
        /// This replica's identity in the Lease.
        #[arg(long, env = "POD_NAME", default_value = "awsdynamodbsource-controller")]
        identity: String,
    },
    /// Prints, without a cluster, the objects the controller would create
    /// for a source manifest.
    Render {
        /// The URL the adapter posts to, instead of `spec.sink`. Needed when
        /// the sink is a ref to anything but a core Service: its address is
        /// in the cluster.
        #[arg(long, value_name = "URI")]
        sink_uri: Option<String>,
        /// The AWSDynamoDBSource manifest (YAML), `-` for standard input.
        #[arg(short = 'f', long = "filename", value_name = "FILE")]
        file: String,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = AdapterSettings {
        image: args.adapter_image,
    };
    match args.command {
        Command::Run {
            namespace,
            identity,
        } => {
            tracing_subscriber::fmt().with_target(false).init();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(settings, namespace, identity)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // kube's errors already carry their causes in their text.
                    match e.chain().nth(1) {
                        Some(cause) => tracing::error!("{e}: {cause}"),
                        None => tracing::error!("{e}"),
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Command::Render { sink_uri, file } => {
            let manifest = if file == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(&file)
            };
            let manifest = match manifest {
                Ok(m) => m,
                Err(e) => {
                    eprintln!("error: cannot read {file}: {e}");
                    return ExitCode::from(2);
                }
            };
            match render(&manifest, sink_uri.as_deref(), &settings) {
                Ok(yaml) => {
                    print!("{yaml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {file}: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// The controller: each AWSDynamoDBSource, and each Deployment it owns,
/// triggers a reconcile; it returns when leadership is lost.
async fn run(settings: AdapterSettings, namespace: String, identity: String) -> anyhow::Result<()> {
    use std::sync::Arc;

    use anyhow::Context as _;
    use awsdynamodbsource_api::AWSDynamoDBSource;
    use awsdynamodbsource_controller::leader;
    use awsdynamodbsource_controller::reconcile::{Context, error_policy, reconcile};
    use futures_util::StreamExt;
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::runtime::events::{Recorder, Reporter};
    use kube::runtime::{Controller, watcher};
    use kube::{Api, Client};

    const LEASE: &str = "awsdynamodbsource-controller";
    let client = Client::try_default()
        .await
        .context("no Kubernetes cluster configured")?;
    leader::acquire(&client, &namespace, LEASE, &identity).await;
    tracing::info!(identity, "leading; reconciling AWSDynamoDBSources");
    let reporter = Reporter {
        controller: "awsdynamodbsource-controller".into(),
        instance: Some(identity.clone()),
    };
    let ctx = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client: client.clone(),
        settings,
    });
    let controller = Controller::new(
        Api::<AWSDynamoDBSource>::all(client.clone()),
        watcher::Config::default(),
    )
    .owns(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    )
    .shutdown_on_signal()
    .run(reconcile, error_policy, ctx)
    .for_each(|_| futures_util::future::ready(()));
    tokio::select! {
        _ = controller => Ok(()),
        _ = leader::keep(&client, &namespace, LEASE, &identity) => {
            anyhow::bail!("lost the leader lease; exiting so that a new leader takes over")
        }
    }
}

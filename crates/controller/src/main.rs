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
    /// The adapter's container image.
    #[arg(
        long,
        global = true,
        env = "AWSDYNAMODBSOURCE_ADAPTER_IMAGE",
        default_value = "awsdynamodbsource-adapter:latest"
    )]
    adapter_image: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Prints, without a cluster, the objects the controller would create
    /// for a source manifest.
    Render {
        /// The URL the adapter would post to (the resolved sink).
        #[arg(long, value_name = "URI")]
        sink_uri: String,
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
            match render(&manifest, &sink_uri, &settings) {
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

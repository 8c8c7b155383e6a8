//! Writes the CRD to `config/300-awsdynamodbsource.yaml` (or prints it
//! with `--stdout`).

use std::path::Path;

fn main() -> std::io::Result<()> {
    let yaml = awsdynamodbsource_api::crd_yaml();
    if std::env::args().any(|a| a == "--stdout") {
        print!("{yaml}");
        return Ok(());
    }
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/300-awsdynamodbsource.yaml");
    std::fs::write(&path, yaml)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

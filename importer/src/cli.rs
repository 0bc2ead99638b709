//! Command line of `partial-load` (clap derive).

use clap::{Args, Parser, Subcommand, ValueEnum};
use partial_common::registry::auth::parse_allow_realm;
use std::path::PathBuf;

pub const AFTER_HELP: &str = "\
Exit codes:
  0  success
  1  other failure
  2  usage error
  3  verification failed (signature, hash, size, manifest; a bundle older than the last
     one loaded from its site)
  4  base layers missing on the daemon (or in the registry, for push)
  5  Docker daemon or registry unreachable or failing (also: it died or hung mid-load)
  130 interrupted

Environment: PARTIAL_PING_TIMEOUT=SECS bounds the first ping of the daemon (default 30).

Examples:
  partial-load verify app.tgz --key team.pub --offline
  partial-load load app.tgz --key team.pub
  partial-load inventory -o have.json
  partial-load rehydrate app.tgz --key team.pub -o app-full.tar
  partial-load push app.tgz --key team.pub --to registry.example:5000/mirror
  partial-load inventory --registry registry.example:5000 --repo mirror/app -o have.json";

/// Verify and load partial-save bundles on an air-gapped Docker host.
#[derive(Parser, Debug)]
#[command(name = "partial-load", version, after_help = AFTER_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// The whole checked load: signature, base layers, content hashes, load, confirm.
    Load(LoadArgs),
    /// Every check of `load`, without loading.
    Verify(VerifyArgs),
    /// Write what this daemon holds (images, diffIDs, chain IDs) for `partial-save --have`.
    Inventory(InventoryArgs),
    /// Rebuild a complete `docker save` archive from the bundle plus this daemon's base layers.
    Rehydrate(RehydrateArgs),
    /// Push the bundle's images into a registry: signature, base layers in the registry, content
    /// hashes, only missing blobs uploaded, one manifest per image, read back.
    Push(PushArgs),
}

#[derive(Args, Debug, Clone)]
pub struct BundleArgs {
    /// The bundle file, or the first of its volumes (OUT.001).
    #[arg(value_name = "BUNDLE")]
    pub bundle: PathBuf,
    /// Public key (minisign .pub) the manifest must be signed with; repeatable.
    #[arg(short = 'k', long = "key", value_name = "NAME.pub")]
    pub keys: Vec<PathBuf>,
    /// The manifest (default: BUNDLE.manifest.json beside the bundle).
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// Accept a manifest without a signature (hashes are still checked).
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug, Clone)]
pub struct DaemonArgs {
    /// Docker daemon address (default: DOCKER_HOST, else the local socket).
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Option<String>,
    /// Seconds to wait for the daemon's answer to one request (a load is answered only once the
    /// whole upload has been read and unpacked).
    #[arg(long, value_name = "SECS", default_value_t = 6 * 3600)]
    pub timeout: u64,
}

/// Rollback protection for bundles of a series (`partial-save --ledger`).
#[derive(Args, Debug, Clone)]
pub struct SequenceArgs {
    /// State file: the last bundle loaded per signing key and site (default:
    /// /var/lib/partial-load/state.json as root, else $XDG_STATE_HOME/partial-load/state.json or
    /// ~/.local/state/partial-load/state.json).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Accept a bundle that is not newer than the last one loaded from its site, or that does not
    /// follow it (a rollback).
    #[arg(long)]
    pub allow_rollback: bool,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    #[command(flatten)]
    pub sequence: SequenceArgs,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    // `verify` reads the state, never writes it.
    #[command(flatten)]
    pub sequence: SequenceArgs,
    /// Skip the daemon check (for a verification station without Docker).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Args, Debug)]
pub struct InventoryArgs {
    /// Write the inventory here (default: stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// Take the inventory of this registry (HOST[:PORT]) instead of a daemon.
    #[arg(long, value_name = "REGISTRY")]
    pub registry: Option<String>,
    /// With --registry: the repositories to list (repeatable; default: the catalog).
    #[arg(long = "repo", value_name = "REPO", requires = "registry")]
    pub repos: Vec<String>,
    #[command(flatten)]
    pub connection: RegistryArgs,
}

/// How to reach a registry: TLS and credentials.
#[derive(Args, Debug, Clone)]
pub struct RegistryArgs {
    /// Accept plain http or an unverified certificate from the registry.
    #[arg(long)]
    pub insecure: bool,
    /// A CA certificate (PEM) to trust for the registry, besides the system roots and
    /// /etc/docker/certs.d/HOST/; repeatable.
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_files: Vec<PathBuf>,
    /// User name for the registry (password from --password-stdin); default: Docker's
    /// config.json (DOCKER_CONFIG).
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Read the registry password from stdin (with --username).
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// A token realm on another host that may get the credentials over plain http (by default
    /// only the registry's own host, or https); repeatable.
    #[arg(long = "allow-realm", value_name = "HOST[:PORT]", value_parser = parse_allow_realm)]
    pub allow_realms: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub sequence: SequenceArgs,
    /// The registry, with an optional repository prefix: HOST[:PORT][/PREFIX].
    #[arg(long, value_name = "REGISTRY[/PREFIX]")]
    pub to: String,
    /// Repositories of the registry to find the base images in (repeatable; default: the
    /// repositories the images go to and those of their base images, else the catalog).
    #[arg(long = "base-repo", value_name = "REPO")]
    pub base_repos: Vec<String>,
    /// Blobs checked, mounted or uploaded at a time.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// How carried layers the bundle holds uncompressed are pushed: gzip (compressed on the way,
    /// the same bytes every time) or none (as the bundle holds them). Layers the bundle holds
    /// compressed are pushed as they are.
    #[arg(long, value_name = "CODEC", value_enum, default_value_t = LayerCompression::Gzip)]
    pub layer_compression: LayerCompression,
    #[command(flatten)]
    pub connection: RegistryArgs,
}

/// The compression of uncompressed carried layers pushed to a registry.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerCompression {
    Gzip,
    None,
}

#[derive(Args, Debug)]
pub struct RehydrateArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    /// The complete archive to write (plain tar).
    #[arg(short = 'o', long = "output", value_name = "FULL.tar")]
    pub output: PathBuf,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

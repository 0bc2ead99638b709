//! Command line of `partial-load` (clap derive), and the tables and texts `--help` and the man
//! pages share (examples, environment). A library module, so that `cargo xtask` can render man
//! pages and completions from these definitions.

use clap::{Args, Parser, Subcommand, ValueEnum};
use partial_common::exit;
use partial_common::help::EnvVar;
use partial_common::registry::auth::parse_allow_realm;
use std::path::PathBuf;

/// Example command lines, shown under "Examples:" in `--help` and under EXAMPLES in the man page.
pub const EXAMPLES: &str = "\
partial-load verify app.tgz --key team.pub --offline
partial-load load app.tgz --key team.pub
partial-load inventory -o have.json
partial-load load app.tgz --key team.pub --containerd /run/containerd/containerd.sock --namespace k8s.io
partial-load rehydrate app.tgz --key team.pub -o app-full.tar
partial-load push app.tgz --key team.pub --to registry.example:5000/mirror
partial-load report app.tgz --key team.pub -o app-report.html
partial-load inventory --registry registry.example:5000 --repo mirror/app -o have.json";

/// The environment variables `partial-load` reads: shown under "Environment:" in `--help` and
/// under ENVIRONMENT in the man pages.
pub const ENVIRONMENT: &[EnvVar] = &[
    EnvVar {
        name: "DOCKER_HOST",
        meaning: "Docker daemon address when -H/--host is not given (default: \
                  unix:///var/run/docker.sock).",
    },
    EnvVar {
        name: "DOCKER_CONFIG",
        meaning: "Folder of Docker's config.json, whose credentials `push` and `inventory \
                  --registry` use without --username (default: $HOME/.docker).",
    },
    EnvVar {
        name: "CONTAINERD_NAMESPACE",
        meaning: "containerd namespace when --namespace is not given (default: default; \
                  Kubernetes nodes: k8s.io).",
    },
    EnvVar {
        name: "PARTIAL_PING_TIMEOUT",
        meaning: "Seconds to wait for the daemon's answer to the first ping (default 30).",
    },
    EnvVar {
        name: "XDG_STATE_HOME",
        meaning: "Without --state and not as root: the state file is \
                  $XDG_STATE_HOME/partial-load/state.json (default: \
                  $HOME/.local/state/partial-load/state.json; as root: \
                  /var/lib/partial-load/state.json).",
    },
    EnvVar {
        name: "PARTIAL_LOAD_KEY_PASSWORD",
        meaning: "Password of the reviewer's secret key of `approve` (else asked on the \
                  terminal).",
    },
    EnvVar {
        name: "TMPDIR",
        meaning: "Folder of temporary spool files, deleted when closed (default /tmp).",
    },
    EnvVar {
        name: "SSL_CERT_FILE",
        meaning: "PEM file of CA certificates trusted for registries instead of the system's.",
    },
    EnvVar {
        name: "SSL_CERT_DIR",
        meaning: "Folders (colon-separated) of CA certificates trusted for registries instead \
                  of the system's.",
    },
];

/// `--version`: the version and the git commit of the build ("unknown" outside a git checkout;
/// ", dirty" when tracked files differed from it), set by build.rs.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PARTIAL_GIT_COMMIT"),
    ")"
);

/// The text `--help` ends with: examples, exit statuses, environment.
pub fn after_help() -> String {
    partial_common::help::after_help(EXAMPLES, exit::LOAD_STATUSES, ENVIRONMENT)
}

/// Verify and load partial-save bundles on an air-gapped Docker, podman or containerd host.
#[derive(Parser, Debug)]
#[command(name = "partial-load", bin_name = "partial-load", version = VERSION, after_help = after_help())]
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
    /// Approve a bundle as a second person: its signature and content checked, then its manifest
    /// signed with the reviewer's key (MANIFEST.approval.<KEYID>.minisig beside it).
    Approve(ApproveArgs),
    /// A transfer report for the reviewer: signature checked, then per image what changes on
    /// the destination (files, setuid/world-writable files, OS packages, config), as one
    /// self-contained HTML page (-o) and/or JSON (--json).
    Report(ReportArgs),
    /// The audit log: `audit verify FILE` checks its hash chain.
    #[command(subcommand)]
    Audit(AuditCommand),
}

impl Command {
    /// The audit log this run appends to, with the command's name.
    pub fn audit_log(&self) -> Option<(&std::path::Path, &'static str)> {
        let (args, name) = match self {
            Command::Load(a) => (&a.bundle, "load"),
            Command::Verify(a) => (&a.bundle, "verify"),
            Command::Rehydrate(a) => (&a.bundle, "rehydrate"),
            Command::Push(a) => (&a.bundle, "push"),
            Command::Approve(a) => (&a.bundle, "approve"),
            Command::Report(a) => (&a.bundle, "report"),
            Command::Inventory(_) | Command::Audit(_) => return None,
        };
        args.audit.as_deref().map(|p| (p, name))
    }
}

#[derive(Args, Debug)]
pub struct ApproveArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    /// The reviewer's minisign secret key (password from PARTIAL_LOAD_KEY_PASSWORD or a prompt).
    #[arg(long = "sign-key", value_name = "REVIEWER.key")]
    pub sign_key: PathBuf,
    /// A comment recorded in the approval's signed trusted comment.
    #[arg(long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Replace an approval this key already wrote.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    #[command(flatten)]
    pub containerd: ContainerdArgs,
    /// Write the HTML report here (without -o and --json: to stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE.html")]
    pub output: Option<PathBuf>,
    /// Overwrite an existing output file.
    #[arg(long, requires = "output")]
    pub force: bool,
    /// Ask no daemon (nor containerd) for the base images (the report says what it cannot
    /// compare).
    #[arg(long)]
    pub offline: bool,
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the audit log's hash chain; names the first line altered, removed or cut.
    Verify {
        /// The audit log (JSON lines).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
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
    /// A reviewer's public key whose approval counts (`partial-load approve`); repeatable.
    #[arg(long = "approver", value_name = "REVIEWER.pub")]
    pub approvers: Vec<PathBuf>,
    /// How many distinct approvers must have approved (default 1 with --approver).
    #[arg(long, value_name = "N")]
    pub approvals: Option<usize>,
    /// Append one hash-chained JSON line for this run (refusals included) to FILE.
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,
    /// A cosign public key (ECDSA P-256 PEM, as cosign.pub); repeatable. Every image must then
    /// carry a valid cosign signature of its manifest digest by one of them, checked offline from
    /// the bundle before anything is loaded or pushed.
    #[arg(long = "image-key", value_name = "COSIGN.pub")]
    pub image_keys: Vec<PathBuf>,
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

/// containerd instead of Docker: where `load` writes, and whose images the base check, `verify`
/// and `inventory` read.
#[derive(Args, Debug, Clone)]
pub struct ContainerdArgs {
    /// Use the containerd listening on this socket (e.g. /run/containerd/containerd.sock)
    /// instead of a Docker daemon.
    #[arg(long = "containerd", value_name = "SOCKET", conflicts_with = "host")]
    pub socket: Option<PathBuf>,
    /// With --containerd: the namespace (Kubernetes nodes: k8s.io).
    #[arg(
        long,
        value_name = "NS",
        env = "CONTAINERD_NAMESPACE",
        default_value = "default"
    )]
    pub namespace: String,
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
    pub containerd: ContainerdArgs,
    /// With --containerd: the snapshotter the images are unpacked into.
    #[arg(long, value_name = "NAME", default_value = "overlayfs")]
    pub snapshotter: String,
    #[command(flatten)]
    pub sequence: SequenceArgs,
}

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub bundle: BundleArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    #[command(flatten)]
    pub containerd: ContainerdArgs,
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
    /// Overwrite an existing output file.
    #[arg(long, requires = "output")]
    pub force: bool,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    #[command(flatten)]
    pub containerd: ContainerdArgs,
    /// Take the inventory of this registry (HOST[:PORT]) instead of a daemon.
    #[arg(long, value_name = "REGISTRY", conflicts_with = "socket")]
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
    /// compressed are pushed as they are, and so are all layers of an image that keeps its
    /// source manifest (from a registry or an OCI layout), whose digests it names.
    #[arg(long, value_name = "CODEC", value_enum, default_value_t = LayerCompression::Gzip)]
    pub layer_compression: LayerCompression,
    /// Push images that came from a registry even when their source manifest cannot be kept
    /// (the registry holds a base layer as another blob): their manifests are re-made and their
    /// digests change, with a warning naming them. Without it such a push is refused (exit 4).
    #[arg(long)]
    pub allow_new_digest: bool,
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
    #[command(flatten)]
    pub containerd: ContainerdArgs,
    /// The complete archive to write (plain tar).
    #[arg(short = 'o', long = "output", value_name = "FULL.tar")]
    pub output: PathBuf,
    /// Overwrite an existing output file.
    #[arg(long)]
    pub force: bool,
}

//! Command line of `partial-save` (clap derive). Seed-compatible flags `-i`, `-e`, `-o`, `-H` come
//! first; the rest go beyond the original tool. Also the tables and texts `--help` and the man
//! pages share (examples, environment). A library module, so that `cargo xtask` can render man
//! pages and completions from these definitions.

use clap::{Args, Parser, Subcommand};
use partial_common::exit;
use partial_common::help::EnvVar;
use partial_common::registry::auth::parse_allow_realm;
use std::path::PathBuf;

/// Example command lines, shown under "Examples:" in `--help` and under EXAMPLES in the man page.
pub const EXAMPLES: &str = "\
partial-save -i app:2 -e app:1 -o app.tgz --sign-key team.key
partial-save -i app:2 --have airgap-inventory.json -o app.tgz --sign-key team.key
partial-save -i docker://registry.local:5000/app:2 -e docker://registry.local:5000/app:1 -o app.tgz
partial-save --from-archive full.tar --exclude-archive base.tar -o app.tgz
partial-save -i app:3 --ledger site-a.json -o app3.tgz --sign-key team.key
partial-save ledger show site-a.json
partial-save --chart nginx-22.1.1.tgz --exclude-chart nginx-21.1.19.tgz -o up.tgz
partial-save images --chart nginx-22.1.1.tgz --json
partial-save --from-oci app-layout/ -i app:2 --exclude-oci base-layout/ -o app.tgz
partial-save keygen -o team";

/// The environment variables `partial-save` reads: shown under "Environment:" in `--help` and
/// under ENVIRONMENT in the man pages.
pub const ENVIRONMENT: &[EnvVar] = &[
    EnvVar {
        name: "DOCKER_HOST",
        meaning: "Docker daemon address when -H/--host is not given (default: \
                  unix:///var/run/docker.sock).",
    },
    EnvVar {
        name: "DOCKER_CONFIG",
        meaning: "Folder of Docker's config.json, whose credentials are used for docker:// \
                  registries without --username (default: $HOME/.docker).",
    },
    EnvVar {
        name: "PARTIAL_SAVE_KEY_PASSWORD",
        meaning: "Password of the secret key of --sign-key, and of the new key of `keygen` \
                  (otherwise asked on the terminal).",
    },
    EnvVar {
        name: "PARTIAL_PING_TIMEOUT",
        meaning: "Seconds to wait for the daemon's answer to the first ping (default 30).",
    },
    EnvVar {
        name: "PATH",
        meaning: "Where `helm` is looked for to render --chart (unless --helm or --no-helm).",
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
    partial_common::help::after_help(EXAMPLES, exit::SAVE_STATUSES, ENVIRONMENT)
}

/// Save Docker images without the layers the destination already holds.
///
/// Writes OUT (a compressed archive that a plain `docker load` accepts on a destination holding
/// the base layers), OUT.manifest.json (images, every layer, the base chains the destination
/// must hold) and, with --sign-key, OUT.manifest.json.minisig.
#[derive(Parser, Debug)]
#[command(name = "partial-save", bin_name = "partial-save", version = VERSION, after_help = after_help())]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub save: SaveArgs,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a minisign key pair: NAME.key (secret, password-protected) and NAME.pub.
    Keygen(KeygenArgs),
    /// Show or edit a send ledger (--ledger): the bundles sent to one destination.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Print the images of Helm charts and image lists, one a line (or --json with where each
    /// came from), without touching any daemon.
    Images(ImagesArgs),
}

/// The subcommands of `partial-save ledger`.
#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// List the bundles sent to the site, with their images.
    Show(ShowArgs),
    /// Mark a bundle as lost in transit: its layers are no longer assumed at the site, so the
    /// next export carries them again.
    Forget(ForgetArgs),
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The ledger file.
    #[arg(value_name = "SITE.json")]
    pub file: PathBuf,
    /// Print the ledger as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ForgetArgs {
    /// The ledger file.
    #[arg(value_name = "SITE.json")]
    pub file: PathBuf,
    /// The bundle's sequence number.
    #[arg(long, value_name = "N")]
    pub bundle: u64,
}

/// Where images are discovered: Helm charts and image lists (see docs/guide.md).
#[derive(Args, Debug, Clone, Default)]
pub struct DiscoverArgs {
    /// Helm chart (directory or .tgz) whose images to save; repeatable.
    #[arg(long = "chart", value_name = "PATH")]
    pub charts: Vec<PathBuf>,
    /// Values file for the charts (as `helm template -f`); repeatable, later wins.
    #[arg(long = "values", value_name = "FILE")]
    pub values: Vec<PathBuf>,
    /// Value for the charts (as `helm template --set`); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Images to save, listed in FILE (`-`: standard input): one reference a line (`#`
    /// comments) or Kubernetes YAML. Repeatable.
    #[arg(long = "images-from", value_name = "FILE|-")]
    pub images_from: Vec<String>,
    /// Render charts with this helm binary (default: `helm` on PATH, when there).
    #[arg(long = "helm", value_name = "BIN")]
    pub helm: Option<PathBuf>,
    /// Do not render charts even when helm is on PATH (declared lists and guesses only).
    #[arg(long = "no-helm", conflicts_with = "helm")]
    pub no_helm: bool,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    #[command(flatten)]
    pub discover: DiscoverArgs,
    /// Print JSON (each image with its origins and whether it is a guess; the charts read).
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Name prefix of the key files (writes NAME.key and NAME.pub).
    #[arg(short = 'o', long = "output", value_name = "NAME")]
    pub output: PathBuf,
    /// Write an unprotected secret key (for automation). Otherwise the password comes from
    /// PARTIAL_SAVE_KEY_PASSWORD or a prompt.
    #[arg(long)]
    pub no_password: bool,
    /// Overwrite existing key files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Image to save (name:tag or ID on the daemon; `docker://HOST[:PORT]/REPO[:TAG|@sha256:…]`
    /// read from a registry, no daemon needed); repeatable.
    #[arg(short = 'i', long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// Image the destination already has (on the daemon, in the inputs, or `docker://…` in a
    /// registry); its layers are left out. Repeatable.
    #[arg(short = 'e', long = "exclude", value_name = "IMAGE")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub discover: DiscoverArgs,
    /// An older chart the destination already runs: its images are added to -e. Repeatable.
    #[arg(long = "exclude-chart", value_name = "PATH")]
    pub exclude_charts: Vec<PathBuf>,
    /// Images the destination already has, listed in FILE (`-`: standard input), as for
    /// --images-from; added to -e. Repeatable.
    #[arg(long = "exclude-images-from", value_name = "FILE|-")]
    pub exclude_images_from: Vec<String>,
    /// Inventory of the destination (from `partial-load inventory`); repeatable.
    #[arg(long = "have", value_name = "INVENTORY.json")]
    pub have: Vec<PathBuf>,
    /// Send ledger of the destination (one per site; created when missing): what it records as
    /// sent is left out, and the new bundle is numbered, chained to the previous one and recorded
    /// once written. With --have, the inventory wins over the ledger.
    #[arg(long, value_name = "SITE.json")]
    pub ledger: Option<PathBuf>,
    /// Also write the reviewer's transfer report of the bundle: one self-contained HTML page
    /// (JSON when FILE ends in .json) saying per image what changes against its base on the
    /// daemon (files, packages, config), as `partial-load report` does on the far side.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Output bundle.
    #[arg(
        short = 'o',
        long = "output",
        value_name = "OUT",
        default_value = "image.tgz"
    )]
    pub output: PathBuf,
    /// Docker daemon address (default: DOCKER_HOST, else the local socket).
    #[arg(short = 'H', long = "host", value_name = "HOST")]
    pub host: Option<String>,
    /// Read the images from existing archives instead of a daemon: `docker save` (any version
    /// or image store), skopeo/podman `docker-archive` and `oci-archive`, crane tarballs; plain,
    /// gzip or zstd; repeatable. -i picks among their images (default: all but the -e ones).
    #[arg(long = "from-archive", value_name = "FULL.tar")]
    pub from_archive: Vec<PathBuf>,
    /// Read the images from an OCI image layout directory (skopeo `oci:DIR`, umoci); repeatable.
    #[arg(long = "from-oci", value_name = "DIR")]
    pub from_oci: Vec<PathBuf>,
    /// The destination has every image in this archive (any writer); repeatable.
    #[arg(long = "exclude-archive", value_name = "BASE.tar")]
    pub exclude_archive: Vec<PathBuf>,
    /// The destination has every image in this OCI layout directory; repeatable.
    #[arg(long = "exclude-oci", value_name = "DIR")]
    pub exclude_oci: Vec<PathBuf>,
    /// Multi-platform indexes (`-i docker://…`, or an OCI layout's or oci-archive's index):
    /// export only this platform's image, repeatable (default: every platform, with the index
    /// byte for byte; a narrowed index is re-made, or with one platform not carried, and the run
    /// says so). Nested indexes of archives and layouts: the one platform exported (the first
    /// given; default: this machine's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Vec<String>,
    /// Leave out the signatures, attestations and SBOMs that cosign's tag scheme attaches to
    /// images read from a registry (`sha256-<digest>.sig`, `.att`, `.sbom`), which are carried
    /// by default.
    #[arg(long = "no-attached")]
    pub no_attached: bool,
    /// Leave out a layer of a registry image (or an OCI layout's, whose manifest travels too)
    /// that the destination holds as another blob than
    /// the source's (a registry's `--have` inventory says which): `partial-load push` then
    /// re-makes the image's manifest, changing its digest. By default such a layer is carried,
    /// so the image keeps its digest.
    #[arg(long)]
    pub allow_new_digest: bool,
    /// Also check here the diffID of every carried layer stored compressed (a registry's or an
    /// OCI layout's blob), by decompressing it. Its digest is always checked, and partial-load
    /// checks every diffID before anything lands; this finds an image whose config contradicts
    /// its own layers before the trip, at the cost of decompressing them (often the largest
    /// cost of an export from a registry).
    #[arg(long)]
    pub check_diff_ids: bool,
    /// Compression of the bundle: gzip (loads with plain `docker load`), zstd, none.
    #[arg(long, value_name = "CODEC", default_value = "gzip")]
    pub compression: String,
    /// Compression level: gzip 0-9 (default 4), zstd -7-22 (default 3).
    #[arg(long, value_name = "N")]
    pub level: Option<i32>,
    /// Split the bundle into volumes OUT.001, OUT.002, … of at most SIZE (e.g. 4G, 700M).
    #[arg(long, value_name = "SIZE")]
    pub split: Option<String>,
    /// Sign the manifest with this minisign secret key (password from PARTIAL_SAVE_KEY_PASSWORD
    /// or a prompt).
    #[arg(long = "sign-key", value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Print the plan (per image and layer: carried or left out, size, why) and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Ship a carried layer as a delta against a layer the destination holds, when smaller
    /// (references: the -e images, --exclude-archive images, and source-daemon images of the
    /// same repositories holding chains an inventory or ledger names). The bundle then loads
    /// only with `partial-load` (which rebuilds the layers from its daemon's own), not with a
    /// plain `docker load`; `partial-load rehydrate` makes a plain archive of it.
    #[arg(long)]
    pub delta: bool,
    /// Print the plan or the result as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Overwrite existing output files.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub registry: RegistryArgs,
    /// Seconds to wait for the daemon to start sending the export (it stages the whole export
    /// first).
    #[arg(long, value_name = "SECS", default_value_t = 6 * 3600)]
    pub timeout: u64,
    /// Seconds without any data from the daemon, once the export has started, before giving up.
    #[arg(long, value_name = "SECS", default_value_t = partial_common::daemon::EXPORT_IDLE.as_secs())]
    pub idle_timeout: u64,
}

/// How `docker://` references reach their registry.
#[derive(Args, Debug, Clone, Default)]
pub struct RegistryArgs {
    /// Registries: accept an unverified certificate, or plain http (loopback registries may
    /// always use http, as with Docker).
    #[arg(long)]
    pub insecure: bool,
    /// Registries: an extra CA certificate (PEM) besides the system roots and
    /// /etc/docker/certs.d/HOST/; repeatable.
    #[arg(long = "ca-file", value_name = "PEM")]
    pub ca_files: Vec<PathBuf>,
    /// Registries: user name (password with --password-stdin); default: Docker's config.json.
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    pub username: Option<String>,
    /// Registries: read the password for --username from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Registries: a token realm on another host that may get the credentials over plain http
    /// (by default only the registry's own host, or https); repeatable.
    #[arg(long = "allow-realm", value_name = "HOST[:PORT]", value_parser = parse_allow_realm)]
    pub allow_realms: Vec<String>,
}

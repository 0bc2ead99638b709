//! A private `docker-registry` (Debian's distribution 2.8) per test: its own config, port on
//! 127.0.0.1, filesystem storage and log in a temp dir; optionally TLS with a CA made for it
//! (openssl CLI: a CA and a leaf for 127.0.0.1/localhost, since rustls refuses a self-signed
//! server certificate) and htpasswd basic auth (bcrypt). Never the packaged service or
//! /etc/docker/registry. The log holds the access log, to count the requests a client made.

use anyhow::{bail, Context, Result};
use std::fs::File;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What kind of registry to start.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Serve https with a certificate signed by a CA made for this registry.
    pub tls: bool,
    /// Require this user and password (htpasswd, basic auth).
    pub basic_auth: Option<(String, String)>,
}

/// A running private registry; killed and removed when dropped.
#[derive(Debug)]
pub struct RegistryServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The CA that signed its certificate (TLS variant).
    pub ca_cert: Option<PathBuf>,
    pub opts: RegistryOptions,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// A registry, or `None` after a loud skip when `docker-registry` (or `openssl` for TLS) is
/// missing; mandatory under `PARTIAL_REQUIRE_TOOLS=1`. A registry that will not start panics.
pub fn require_registry(opts: RegistryOptions) -> Option<RegistryServer> {
    if !crate::require_tool("docker-registry") || (opts.tls && !crate::require_tool("openssl")) {
        return None;
    }
    match RegistryServer::start(opts) {
        Ok(r) => Some(r),
        Err(e) => panic!("starting a private docker-registry: {e:#}"),
    }
}

impl RegistryServer {
    /// Starts a registry and waits until it accepts connections.
    pub fn start(opts: RegistryOptions) -> Result<RegistryServer> {
        let dir = tempfile::Builder::new()
            .prefix("partial-registry-")
            .tempdir()
            .context("creating the registry's temp dir")?;
        let ca_cert = if opts.tls {
            Some(make_certificates(dir.path())?)
        } else {
            None
        };
        if let Some((user, password)) = &opts.basic_auth {
            let hash = bcrypt::hash(password, 4).context("hashing the test password")?;
            std::fs::write(dir.path().join("htpasswd"), format!("{user}:{hash}\n"))?;
        }
        let mut server = RegistryServer {
            addr: String::new(),
            ca_cert,
            opts,
            dir,
            child: None,
        };
        // Another process may take the free port before the registry binds it: try a few.
        let mut attempt = 0;
        loop {
            server.addr = format!("127.0.0.1:{}", free_port()?);
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if attempt >= 2 => return Err(e),
                Err(_) => {
                    server.kill();
                    attempt += 1;
                }
            }
        }
    }

    fn spawn(&mut self) -> Result<()> {
        let config = self.dir.path().join("config.yml");
        std::fs::write(&config, self.config())?;
        let log = File::create(self.log_path())?;
        let mut cmd = Command::new("docker-registry");
        cmd.arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; the registry dies with the test process.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        self.child = Some(cmd.spawn().context("running docker-registry serve")?);
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(&self.addr).is_ok() {
                return Ok(());
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                bail!(
                    "docker-registry exited ({status}) at start:\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "docker-registry did not listen on {} within 15 s:\n{}",
                    self.addr,
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn config(&self) -> String {
        let root = self.dir.path();
        let mut yml = format!(
            "version: 0.1\n\
             log:\n  level: info\n  formatter: text\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
             \x20 maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: {addr}\n  secret: partial-test-secret\n",
            data = root.join("data").display(),
            addr = self.addr,
        );
        if self.opts.tls {
            yml += &format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                root.join("server.crt").display(),
                root.join("server.key").display()
            );
        }
        if self.opts.basic_auth.is_some() {
            yml += &format!(
                "auth:\n  htpasswd:\n    realm: partial-test\n    path: {}\n",
                root.join("htpasswd").display()
            );
        }
        yml
    }

    /// The registry's log file (its own log and the access log).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The log once it stopped growing for 300 ms (at most 5 s): the registry writes an access
    /// log line after the response, so a count taken right after a request may miss it.
    pub fn settled_log(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut last = self.log();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.log();
            if now.len() == last.len() || Instant::now() > deadline {
                return now;
            }
            last = now;
        }
    }

    /// Access-log lines of `METHOD` requests whose path starts with `path_prefix`
    /// (e.g. `("PATCH", "/v2/app/blobs/uploads/")`).
    pub fn count_requests(&self, method: &str, path_prefix: &str) -> usize {
        let needle = format!("\"{method} {path_prefix}");
        self.settled_log()
            .lines()
            .filter(|l| l.contains(&needle))
            .count()
    }

    /// Requests that send blob data (PATCH or PUT to an upload session) to any repository.
    pub fn blob_uploads(&self) -> usize {
        self.settled_log()
            .lines()
            .filter(|l| {
                (l.contains("\"PATCH /v2/") || l.contains("\"PUT /v2/"))
                    && l.contains("/blobs/uploads/")
            })
            .count()
    }

    /// The registry's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the registry (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The test's temp dir of this registry (config, data, log, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// Writes `ca.crt` (a CA) and `server.crt`/`server.key` (a leaf for 127.0.0.1 and localhost
/// signed by it) into `dir`; returns the CA's path.
fn make_certificates(dir: &Path) -> Result<PathBuf> {
    let ext = dir.join("leaf.ext");
    std::fs::write(
        &ext,
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )?;
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"],
            &ec[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-days",
                "2",
                "-subj",
                "/CN=partial-test-ca",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        ]
        .concat(),
    )?;
    openssl(
        dir,
        &[
            &["req"],
            &ec[..],
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
        ],
    )?;
    Ok(dir.join("ca.crt"))
}

fn openssl(dir: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .context("running openssl")?;
    if !out.status.success() {
        bail!(
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

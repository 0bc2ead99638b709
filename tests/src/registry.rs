//! A private `docker-registry` (Debian's distribution 2.8) per test: its own config, port on
//! 127.0.0.1, filesystem storage and log in a temp dir; optionally TLS with a CA made for it
//! (openssl CLI: a CA and a leaf for 127.0.0.1/localhost, since rustls refuses a self-signed
//! server certificate) and htpasswd basic auth (bcrypt). Never the packaged service or
//! /etc/docker/registry. The log holds the access log, to count the requests a client made.

use anyhow::{bail, Context, Result};
use std::fs::OpenOptions;
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
    /// Require Bearer tokens from a token server of the test's own, which hands out (for these
    /// credentials only) one token granting pull and push on `token_repositories` and the catalog.
    pub token_auth: Option<(String, String)>,
    pub token_repositories: Vec<String>,
}

/// A running private registry; killed and removed when dropped.
#[derive(Debug)]
pub struct RegistryServer {
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The CA that signed its certificate (TLS variant).
    pub ca_cert: Option<PathBuf>,
    pub opts: RegistryOptions,
    /// The token server (token variant).
    pub token_server: Option<TokenServer>,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// A registry, or `None` after a loud skip when `docker-registry` (or `openssl` for TLS or tokens) is
/// missing; mandatory under `PARTIAL_REQUIRE_TOOLS=1`. A registry that will not start panics.
pub fn require_registry(opts: RegistryOptions) -> Option<RegistryServer> {
    let needs_openssl = opts.tls || opts.token_auth.is_some();
    if !crate::require_tool("docker-registry") || (needs_openssl && !crate::require_tool("openssl"))
    {
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
            token_server: None,
            opts,
            dir,
            child: None,
        };
        if let Some(creds) = server.opts.token_auth.clone() {
            let token = mint_token(server.dir.path(), &server.opts.token_repositories)?;
            server.token_server = Some(TokenServer::start(creds, token)?);
        }
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
        // Appended to, so that a restart keeps what the registry logged before.
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?;
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
        if let Some(ts) = &self.token_server {
            yml += &format!(
                "auth:\n  token:\n    realm: http://{}/token\n    service: {TOKEN_SERVICE}\n    \
                 issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                ts.addr,
                root.join("token.crt").display()
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

    /// Starts the registry again (killing it first if it runs) on the same address, storage,
    /// certificates and log.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.spawn()
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

/// The `service` and `issuer` the registry expects in tokens.
pub const TOKEN_SERVICE: &str = "partial-test-registry";
const TOKEN_ISSUER: &str = "partial-test-issuer";

/// A JWT (RS256, signed with openssl by a key whose self-signed certificate, `token.crt`, is the
/// registry's `rootcertbundle` and travels in the `x5c` header) granting pull and push on
/// `repositories` and the catalog, valid for a day.
fn mint_token(dir: &Path, repositories: &[String]) -> Result<String> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "token.key",
            "-out",
            "token.crt",
            "-days",
            "2",
            "-subj",
            "/CN=partial-test-token",
        ],
    )?;
    openssl(
        dir,
        &[
            "x509",
            "-in",
            "token.crt",
            "-outform",
            "DER",
            "-out",
            "token.der",
        ],
    )?;
    let der = std::fs::read(dir.join("token.der"))?;
    let header = serde_json::json!({
        "typ": "JWT", "alg": "RS256",
        "x5c": [base64::engine::general_purpose::STANDARD.encode(der)],
    });
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut access: Vec<serde_json::Value> = repositories
        .iter()
        .map(|r| serde_json::json!({"type": "repository", "name": r, "actions": ["pull", "push"]}))
        .collect();
    access.push(serde_json::json!({"type": "registry", "name": "catalog", "actions": ["*"]}));
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": "partial-test", "aud": TOKEN_SERVICE,
        "exp": now + 86_400, "nbf": now - 60, "iat": now - 60, "jti": "partial-test-1",
        "access": access,
    });
    let input = format!(
        "{}.{}",
        b64.encode(serde_json::to_vec(&header)?),
        b64.encode(serde_json::to_vec(&claims)?)
    );
    std::fs::write(dir.join("token.input"), &input)?;
    openssl(
        dir,
        &[
            "dgst",
            "-sha256",
            "-sign",
            "token.key",
            "-out",
            "token.sig",
            "token.input",
        ],
    )?;
    let sig = std::fs::read(dir.join("token.sig"))?;
    Ok(format!("{input}.{}", b64.encode(sig)))
}

/// One request the token server answered: its query string and `Authorization` header.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub query: String,
    pub authorization: Option<String>,
}

/// A minimal token endpoint (HTTP on 127.0.0.1): answers `{"token": …}` to requests carrying
/// the expected Basic credentials, 401 otherwise, and records every request.
#[derive(Debug)]
pub struct TokenServer {
    pub addr: String,
    requests: std::sync::Arc<std::sync::Mutex<Vec<TokenRequest>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TokenServer {
    fn start(creds: (String, String), token: String) -> Result<TokenServer> {
        use base64::Engine as _;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?.to_string();
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.0, creds.1))
        );
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (log, halt) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let _ = answer(conn, &expected, &token, &log);
                }
            }
        });
        Ok(TokenServer {
            addr,
            requests,
            stop,
            thread: Some(thread),
        })
    }

    /// The requests answered so far.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

fn answer(
    mut conn: TcpStream,
    expected: &str,
    token: &str,
    log: &std::sync::Mutex<Vec<TokenRequest>>,
) -> std::io::Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let query = line
        .split(' ')
        .nth(1)
        .and_then(|t| t.split_once('?'))
        .map(|(_, q)| q.to_string());
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let ok = authorization.as_deref() == Some(expected);
    if let Ok(mut l) = log.lock() {
        l.push(TokenRequest {
            query: query.unwrap_or_default(),
            authorization,
        });
    }
    let (status, body) = if ok {
        (
            "200 OK",
            serde_json::json!({"token": token, "expires_in": 86_400}).to_string(),
        )
    } else {
        (
            "401 Unauthorized",
            r#"{"details":"bad credentials"}"#.to_string(),
        )
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

//! Two-person approval and the audit log end to end: a bundle signed by the build key, approved
//! (or not) by reviewers with `partial-load approve`, and required with `--approver` /
//! `--approvals`: none of one, one of one, one of two, a key that is not an approver, the build
//! key as approver, an approval copied from another bundle; a load refused for want of approval
//! loads nothing. Every run appends to one audit log, whose chain `audit verify` checks, and
//! which fails naming the line once a line is edited.

use partial_tests::cli::{export_signed, keygen, load, Run};
use partial_tests::scenario::{build_standard, give_airgap};
use std::path::{Path, PathBuf};

use crate::support::schema;

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The key ID of `NAME.pub` as minisign prints it: the 8 bytes after the algorithm, read as a
/// little-endian number, in upper-case hex.
fn key_id(pub_file: &Path) -> String {
    let text = std::fs::read_to_string(pub_file).unwrap();
    let line = text.lines().nth(1).unwrap();
    use base64::Engine as _;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(line)
        .unwrap();
    let n = u64::from_le_bytes(raw[2..10].try_into().unwrap());
    format!("{n:X}")
}

struct Ctx {
    d: PathBuf,
    audit: PathBuf,
}

impl Ctx {
    fn pl(&self, args: &[&str]) -> Run {
        let mut v: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        v.extend(["--audit".into(), s(&self.audit)]);
        load(&v)
    }

    fn verify(&self, bundle: &Path, approvers: &[&str], extra: &[&str]) -> Run {
        let team = s(&self.d.join("team.pub"));
        let b = s(bundle);
        let mut args = vec!["verify", b.as_str(), "--key", team.as_str(), "--offline"];
        let keys: Vec<String> = approvers
            .iter()
            .map(|a| s(&self.d.join(format!("{a}.pub"))))
            .collect();
        for k in &keys {
            args.extend(["--approver", k.as_str()]);
        }
        args.extend(extra);
        self.pl(&args)
    }

    fn approve(&self, bundle: &Path, reviewer: &str) -> Run {
        let team = s(&self.d.join("team.pub"));
        let key = s(&self.d.join(format!("{reviewer}.key")));
        self.pl(&[
            "approve",
            &s(bundle),
            "--key",
            &team,
            "--sign-key",
            &key,
            "--comment",
            "looked at it",
        ])
    }
}

fn approval_of(bundle: &Path, who: &Path) -> PathBuf {
    PathBuf::from(format!(
        "{}.manifest.json.approval.{}.minisig",
        s(bundle),
        key_id(who)
    ))
}

#[test]
fn approvals_are_required_counted_and_bound_to_their_bundle() {
    let Some(pair) = partial_tests::require_daemons() else {
        return;
    };
    let scene = build_standard(&pair);
    give_airgap(&pair, &["base:1"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    for k in ["team", "alice", "bob"] {
        keygen(&d, k);
    }
    let c = Ctx {
        audit: d.join("audit.jsonl"),
        d: d.clone(),
    };
    let host = pair.source.host();
    let b = export_signed(&host, &d, "app2.tgz", "app:2", &["-e", "base:1"]);
    let other = export_signed(&host, &d, "app1.tgz", "app:1", &["-e", "base:1"]);
    let alice = d.join("alice.pub");

    // None of one.
    c.verify(&b, &["alice"], &[])
        .expect_code(3)
        .stderr_has(&format!("not approved by [{}]", key_id(&alice)));
    // The build key cannot approve its own bundle.
    c.approve(&b, "team")
        .expect_code(3)
        .stderr_has("another person");
    // Alice approves; the stock minisign tool checks the approval too.
    c.approve(&b, "alice").ok();
    let approval = approval_of(&b, &alice);
    assert!(approval.exists());
    stock_minisign_checks(&b, &approval, &alice);
    // One of one; one of two is not enough, and names who did not approve.
    c.verify(&b, &["alice"], &[]).ok();
    c.verify(&b, &["alice", "bob"], &["--approvals", "2"])
        .expect_code(3)
        .stderr_has(&format!("not approved by [{}]", key_id(&d.join("bob.pub"))));
    // A key that is not among the approvers does not count.
    c.verify(&b, &["bob"], &[])
        .expect_code(3)
        .stderr_has("not counted");
    // More approvals asked than approvers named: a usage error.
    c.verify(&b, &["alice"], &["--approvals", "2"])
        .expect_code(2);
    // The build key named as approver: its own signature never counts.
    let forged = approval_of(&b, &d.join("team.pub"));
    std::fs::copy(format!("{}.manifest.json.minisig", s(&b)), &forged).unwrap();
    c.verify(&b, &["team"], &[]).expect_code(3);
    std::fs::remove_file(&forged).unwrap();
    // An approval of another bundle, copied beside this one, does not verify.
    c.approve(&other, "alice").ok();
    std::fs::rename(&approval, d.join("kept.minisig")).unwrap();
    std::fs::copy(approval_of(&other, &alice), &approval).unwrap();
    c.verify(&b, &["alice"], &[])
        .expect_code(3)
        .stderr_has("not counted");
    // A load refused for want of approval loads nothing; approved, it loads.
    let state = s(&d.join("state.json"));
    let team = s(&d.join("team.pub"));
    let load_args = |b: &Path| {
        vec![
            "load".to_string(),
            s(b),
            "--key".into(),
            team.clone(),
            "--approver".into(),
            s(&alice),
            "-H".into(),
            pair.airgap.host(),
            "--state".into(),
            state.clone(),
        ]
    };
    let args = load_args(&b);
    c.pl(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .expect_code(3);
    assert!(
        !pair.airgap.has_image("app:2"),
        "an unapproved bundle was loaded"
    );
    std::fs::rename(d.join("kept.minisig"), &approval).unwrap();
    c.pl(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .ok();
    assert_eq!(pair.airgap.image_id("app:2").unwrap(), scene.app2);

    check_audit_log(&c.audit, &alice, &scene.app2);
}

/// The stock minisign tool, when there, checks `approval` (of `bundle`'s manifest) with `key`.
fn stock_minisign_checks(bundle: &Path, approval: &Path, key: &Path) {
    if partial_tests::require_tool("minisign") {
        let out = std::process::Command::new("minisign")
            .args([
                "-Vm",
                &format!("{}.manifest.json", s(bundle)),
                "-x",
                &s(approval),
                "-p",
                &s(key),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("looked at it"));
    }
}

/// The audit log holds every run of the test, refusals included, in one intact chain (the last
/// one the load of `app2` approved by `alice`); `audit verify` notices an edited line.
fn check_audit_log(audit: &Path, alice: &Path, app2: &str) {
    let log = std::fs::read_to_string(audit).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 12, "{log}");
    for (i, line) in lines.iter().enumerate() {
        schema::assert_valid("audit-line", &format!("audit line {}", i + 1), line);
    }
    assert!(lines
        .iter()
        .any(|l| l["result"] == "refused" && l["exit_code"] == 3));
    let last = lines.last().unwrap();
    assert_eq!(last["command"], "load");
    assert_eq!(last["result"], "ok");
    assert_eq!(last["bundle"]["approvers"][0], key_id(alice).as_str());
    assert_eq!(last["bundle"]["images"][0]["id"], app2);
    load(&["audit", "verify", &s(audit)])
        .ok()
        .stderr_has("12 line(s)");
    std::fs::write(audit, log.replacen("\"verify\"", "\"VERIFY\"", 1)).unwrap();
    load(&["audit", "verify", &s(audit)])
        .expect_code(3)
        .stderr_has("line 2");
}

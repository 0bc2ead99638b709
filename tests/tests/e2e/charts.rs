//! Helm charts and image lists end to end: the images of the real public charts in
//! `tests/fixtures/charts/`, with the renderer (the test-only `helm` wrapper over helm-python-sdk)
//! and without it; image lists; and a chart upgrade saved on a source daemon and loaded on an
//! air-gapped one holding the old chart's images.

use partial_tests::charts::{chart, helm_wrapper};
use partial_tests::cli::{load, run_cmd, save, Run};
use partial_tests::scenario::give_airgap;
use partial_tests::{bin, layer_files, require_daemons, Content};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

const NGINX_22: [&str; 3] = [
    "docker.io/bitnami/git:2.51.0-debian-12-r0",
    "docker.io/bitnami/nginx:1.29.1-debian-12-r0",
    "docker.io/bitnami/nginx-exporter:1.4.2-debian-12-r9",
];
const NGINX_21_GIT: &str = "docker.io/bitnami/git:2.50.1-debian-12-r28";

fn lines(r: &Run) -> Vec<String> {
    r.stdout.lines().map(str::to_string).collect()
}

fn set<S: AsRef<str>>(v: &[S]) -> BTreeSet<String> {
    v.iter().map(|s| s.as_ref().to_string()).collect()
}

/// `partial-save images ARGS` with PATH = `path_dir` + the system's, no daemon anywhere.
fn images_with_path(args: &[&str], path_dir: Option<&Path>) -> Run {
    let mut cmd = Command::new(bin("partial-save"));
    cmd.arg("images").args(args).env_remove("DOCKER_HOST");
    if let Some(d) = path_dir {
        let path = std::env::var("PATH").unwrap_or_default();
        cmd.env("PATH", format!("{}:{path}", d.display()));
    }
    run_cmd(cmd)
}

fn images(args: &[&str]) -> Run {
    images_with_path(args, None)
}

fn json(r: &Run) -> Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

fn origin_kinds(image: &Value) -> BTreeSet<String> {
    image["origins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn nginx_22_gives_its_three_images_without_helm() {
    let c = chart("nginx-22.1.1");
    let r = images(&["--chart", c.to_str().unwrap(), "--no-helm"]).ok();
    let got = lines(&r);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(set(&got), set(&NGINX_22));
    assert!(!r.stderr.contains("warning"), "{}", r.stderr);
}

#[test]
fn nginx_22_gives_its_three_images_with_helm_on_path() {
    let Some(helm) = helm_wrapper() else { return };
    let c = chart("nginx-22.1.1");
    let r = images_with_path(&["--chart", c.to_str().unwrap(), "--json"], helm.parent()).ok();
    let v = json(&r);
    let imgs = v["images"].as_array().unwrap();
    let refs: Vec<&str> = imgs
        .iter()
        .map(|i| i["reference"].as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), 3, "{refs:?}");
    assert_eq!(set(&refs), set(&NGINX_22));
    // The renderer found nginx in the Deployment (helm on PATH was used); the annotation
    // declares all three; nothing is a guess.
    let nginx = imgs.iter().find(|i| i["reference"] == NGINX_22[1]).unwrap();
    assert_eq!(
        origin_kinds(nginx),
        set(&["annotation", "rendered"]),
        "{nginx}"
    );
    let rendered = &nginx["origins"][0];
    assert_eq!(rendered["object"], "Deployment/partial-save-nginx");
    assert_eq!(rendered["template"], "nginx/templates/deployment.yaml");
    assert!(imgs.iter().all(|i| i["guess"] == false));
    assert_eq!(v["charts"][0]["name"], "nginx");
    assert_eq!(v["charts"][0]["version"], "22.1.1");
}

#[test]
fn node_exporter_is_exact_with_helm_and_a_flagged_guess_without() {
    let c = chart("prometheus-node-exporter-4.56.1");
    let c = c.to_str().unwrap();
    if let Some(helm) = helm_wrapper() {
        let r = images(&["--chart", c, "--helm", helm.to_str().unwrap()]).ok();
        assert_eq!(lines(&r), vec!["quay.io/prometheus/node-exporter:v1.12.1"]);
        assert!(!r.stderr.contains("guess"), "{}", r.stderr);
    }
    let r = images(&["--chart", c, "--no-helm", "--json"]).ok();
    let v = json(&r);
    let guess = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| {
            i["reference"]
                .as_str()
                .unwrap()
                .starts_with("quay.io/prometheus/node-exporter:")
        })
        .unwrap_or_else(|| panic!("no node-exporter guess: {v}"));
    assert_eq!(guess["guess"], true);
    assert_eq!(guess["origins"][0]["kind"], "values_guess");
    assert!(
        r.stderr.contains("chart prometheus-node-exporter 4.56.1")
            && r.stderr.contains("install helm or pass --helm"),
        "{}",
        r.stderr
    );
}

#[test]
fn values_and_set_reach_the_renderer() {
    let Some(helm) = helm_wrapper() else { return };
    let c = chart("prometheus-node-exporter-4.56.1");
    let dir = tempfile::tempdir().unwrap();
    let vals = dir.path().join("v.yaml");
    std::fs::write(&vals, "image:\n  tag: v9.9.9\n").unwrap();
    let r = images(&[
        "--chart",
        c.to_str().unwrap(),
        "--helm",
        helm.to_str().unwrap(),
        "--values",
        vals.to_str().unwrap(),
        "--set",
        "kubeRBACProxy.enabled=true",
    ])
    .ok();
    assert_eq!(
        set(&lines(&r)),
        set(&[
            "quay.io/prometheus/node-exporter:v9.9.9",
            "quay.io/brancz/kube-rbac-proxy:v0.22.1"
        ])
    );
}

/// A chart `.tgz` as `helm package` writes it: every file under the chart's name.
fn package(src: &Path, name: &str, out: &Path) {
    let f = std::fs::File::create(out).unwrap();
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        f,
        flate2::Compression::fast(),
    ));
    b.append_dir_all(name, src).unwrap();
    b.into_inner().unwrap().finish().unwrap();
}

#[test]
fn a_packaged_chart_and_image_lists() {
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("nginx-21.1.19.tgz");
    package(&chart("nginx-21.1.19"), "nginx", &tgz);
    let list = dir.path().join("extra.txt");
    std::fs::write(&list, "# extras\nalpine:3.20\nnginx  # the official one\n").unwrap();
    let r = images(&[
        "--chart",
        tgz.to_str().unwrap(),
        "--images-from",
        list.to_str().unwrap(),
        "--no-helm",
        "--json",
    ])
    .ok();
    let v = json(&r);
    let refs: Vec<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        set(&refs),
        set(&[
            NGINX_21_GIT,
            NGINX_22[1],
            NGINX_22[2],
            "docker.io/library/alpine:3.20",
            "docker.io/library/nginx:latest",
        ])
    );
    let sha = partial_tests::sha256_digest(&std::fs::read(&tgz).unwrap());
    assert_eq!(v["charts"][0]["sha256"], sha.as_str());

    // Kubernetes YAML on standard input.
    let mut child = Command::new(bin("partial-save"))
        .args(["images", "--images-from", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"---\nkind: Job\nmetadata: {name: j}\nspec: {template: {spec: {containers: [{name: c, image: 'busybox:1.36'}]}}}\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "docker.io/library/busybox:1.36\n"
    );

    // Bad input is named, with exit 3; a chart that is not one too.
    std::fs::write(&list, "Not/An Image\n").unwrap();
    images(&["--images-from", list.to_str().unwrap()])
        .expect_code(3)
        .stderr_has("extra.txt:1");
    images(&["--chart", dir.path().to_str().unwrap()])
        .expect_code(3)
        .stderr_has("Chart.yaml");
    images(&[]).expect_code(2);
    // A renderer that fails is an error naming it and the chart, never a silent fallback.
    images(&["--chart", tgz.to_str().unwrap(), "--helm", "/bin/false"])
        .expect_code(1)
        .stderr_has("`/bin/false template` failed on");
}

/// Builds the six chart images on the source: nginx and nginx-exporter shared by both chart
/// versions, two versions of git; all on one imported base.
fn build_chart_images(pair: &partial_tests::DaemonPair) {
    let s = &pair.source;
    s.import_rootfs("base:1", 111, &[200_000, 4096], Content::Random)
        .unwrap();
    let builds: [(&str, u64); 4] = [
        (NGINX_22[1], 112),
        (NGINX_22[2], 113),
        (NGINX_21_GIT, 114),
        (NGINX_22[0], 115),
    ];
    for (name, seed) in builds {
        let local = format!("fixture-{seed}:1");
        s.build(
            &local,
            "base:1",
            &[layer_files(seed, "app", 3, 40_000, Content::Random)],
        )
        .unwrap();
        s.docker(&["tag", &local, name]).unwrap();
    }
}

#[test]
fn a_chart_upgrade_carries_only_the_new_git_image() {
    let pair = require_daemons!();
    let dir = tempfile::tempdir().unwrap();
    let new = chart("nginx-22.1.1");
    let old = chart("nginx-21.1.19");
    let out = dir.path().join("up.tgz");
    let args = upgrade_args(&pair.source.host(), &new, &old, &out);

    // Nothing there yet: every missing image in one error, nothing written.
    let r = save(&args).expect_code(1);
    for name in NGINX_22.iter().chain([&NGINX_21_GIT]) {
        assert!(r.stderr.contains(name), "{name} not listed:\n{}", r.stderr);
    }
    assert!(r.stderr.contains("4 image(s) missing"), "{}", r.stderr);
    assert!(!out.exists());

    build_chart_images(&pair);
    let r = save(&args).ok();
    let m = &json(&r)["manifest"];
    let git_new: BTreeSet<String> = pair
        .source
        .diff_ids(NGINX_22[0])
        .unwrap()
        .into_iter()
        .collect();
    let git_old: BTreeSet<String> = pair
        .source
        .diff_ids(NGINX_21_GIT)
        .unwrap()
        .into_iter()
        .collect();
    let only_new: BTreeSet<&String> = git_new.difference(&git_old).collect();
    let carried = diff_ids_where(m, "carried", &Value::Bool(true));
    assert_eq!(
        carried.iter().collect::<BTreeSet<_>>(),
        only_new,
        "carried layers are exactly the new git image's own"
    );
    assert_eq!(m["images"].as_array().unwrap().len(), 3);
    let charts: Vec<(&str, &str, bool)> = m["charts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["version"].as_str().unwrap(),
                c["excluded"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        charts,
        vec![("nginx", "22.1.1", false), ("nginx", "21.1.19", true)]
    );

    // The same upgrade from image lists: a plain list in, rendered-style YAML out (dry run).
    let (new_list, old_yaml) = write_image_lists(dir.path());
    let r = save(&[
        "-H",
        &pair.source.host(),
        "--images-from",
        new_list.to_str().unwrap(),
        "--exclude-images-from",
        old_yaml.to_str().unwrap(),
        "--dry-run",
        "--json",
    ])
    .ok();
    let plan = json(&r);
    let planned = diff_ids_where(&plan, "decision", &Value::from("carried"));
    assert_eq!(planned, carried, "{plan}");

    // The destination runs the old chart.
    give_airgap(&pair, &[NGINX_22[1], NGINX_22[2], NGINX_21_GIT]);
    let b = out.display().to_string();
    load(&["verify", &b, "--allow-unsigned", "-H", &pair.airgap.host()])
        .ok()
        .stderr_has("chart nginx 22.1.1")
        .stderr_has("base chart nginx 21.1.19");
    load(&["load", &b, "--allow-unsigned", "-H", &pair.airgap.host()]).ok();
    for name in NGINX_22 {
        assert_eq!(
            pair.airgap.image_id(name).unwrap(),
            pair.source.image_id(name).unwrap(),
            "{name}"
        );
    }
}

/// `partial-save` arguments of the upgrade: chart `new` against `old`, written to `out`, with the
/// helm wrapper when there is one.
fn upgrade_args(host: &str, new: &Path, old: &Path, out: &Path) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "-H".into(),
        host.into(),
        "--chart".into(),
        new.display().to_string(),
        "--exclude-chart".into(),
        old.display().to_string(),
        "-o".into(),
        out.display().to_string(),
        "--json".into(),
    ];
    match helm_wrapper() {
        Some(h) => args.extend(["--helm".into(), h.display().to_string()]),
        None => args.push("--no-helm".into()),
    }
    args
}

/// The diffIDs of the layers of `doc`'s images whose `field` is `value`.
fn diff_ids_where(doc: &Value, field: &str, value: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for img in doc["images"].as_array().unwrap() {
        for l in img["layers"].as_array().unwrap() {
            if &l[field] == value {
                out.insert(l["diff_id"].as_str().unwrap().to_string());
            }
        }
    }
    out
}

/// The upgrade as image lists in `dir`: the new chart's images as a plain list, the old one's as
/// rendered-style YAML.
fn write_image_lists(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let new_list = dir.join("new.txt");
    std::fs::write(
        &new_list,
        format!("# chart 22.1.1\n{}\n", NGINX_22.join("\n")),
    )
    .unwrap();
    let old_yaml = dir.join("old.yaml");
    let containers: Vec<String> = [NGINX_22[1], NGINX_22[2], NGINX_21_GIT]
        .iter()
        .enumerate()
        .map(|(i, img)| format!("        - {{name: c{i}, image: '{img}'}}"))
        .collect();
    std::fs::write(
        &old_yaml,
        format!(
            "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  \
             template:\n    spec:\n      containers:\n{}\n",
            containers.join("\n")
        ),
    )
    .unwrap();
    (new_list, old_yaml)
}

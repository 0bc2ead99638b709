//! Discovery without helm on small charts written here (the real charts and the rendering path
//! are tested end to end in tests/tests/e2e/charts.rs).

use super::*;

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (p, t) in files {
        let p = dir.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, t).unwrap();
    }
}

/// A chart with a declared image, a lock-file subchart switched by a condition, and a subchart
/// that declares nothing (guessed).
fn umbrella(dir: &Path) {
    write(
        dir,
        &[
            (
                "Chart.yaml",
                "name: shop\nversion: 1.0.0\nappVersion: '3'\nannotations:\n  artifacthub.io/images: |\n    - name: web\n      image: shop/web:3\n    - name: web-again\n      image: docker.io/shop/web:3\ndependencies:\n  - name: cache\n    condition: cache.enabled\n  - name: queue\n",
            ),
            ("values.yaml", "cache:\n  enabled: true\n"),
            ("charts/cache/Chart.yaml", "name: cache\nversion: 0.2.0\n"),
            ("charts/cache/images.lock", "# pinned\nredis:7\n"),
            ("charts/queue/Chart.yaml", "name: queue\nversion: 0.3.0\nappVersion: 2.1\n"),
            (
                "charts/queue/values.yaml",
                "image:\n  registry: quay.io\n  repository: team/queue\n  tag: ''\nmetrics:\n  enabled: false\n  image: {repository: team/exporter, tag: '1'}\nsidecarImage:\n  repository: team/sidecar\n  digest: sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
            ),
        ],
    );
}

#[test]
fn declared_lists_subcharts_and_guesses_with_origins() {
    let dir = tempfile::tempdir().unwrap();
    umbrella(dir.path());
    let mut d = Discovery::default();
    d.add_chart(dir.path(), &Options::default(), false).unwrap();
    let got: Vec<(&str, bool)> = d
        .images
        .iter()
        .map(|i| (i.reference.as_str(), i.guess))
        .collect();
    assert_eq!(
        got,
        vec![
            ("docker.io/shop/web:3", false),
            ("docker.io/library/redis:7", false),
            ("quay.io/team/queue:2.1", true),
            (
                "docker.io/team/sidecar:2.1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                true
            ),
        ]
    );
    // Both annotation entries name one image: one reference, one origin (same key).
    assert_eq!(
        d.images[0].origins,
        vec![Origin::Annotation {
            chart: "shop 1.0.0".into(),
            key: "artifacthub.io/images".into()
        }]
    );
    assert_eq!(
        d.images[1].origins,
        vec![Origin::LockFile {
            chart: "shop 1.0.0/cache 0.2.0".into(),
            file: "images.lock".into()
        }]
    );
    assert_eq!(d.warnings.len(), 1);
    assert!(
        d.warnings[0].contains("chart shop 1.0.0/queue 0.3.0") && d.warnings[0].contains("helm"),
        "{}",
        d.warnings[0]
    );
    assert_eq!(d.charts.len(), 1);
    assert_eq!(
        (d.charts[0].name.as_str(), d.charts[0].version.as_str()),
        ("shop", "1.0.0")
    );
}

#[test]
fn values_and_set_switch_subcharts_and_change_guesses() {
    let dir = tempfile::tempdir().unwrap();
    umbrella(dir.path());
    let vals = dir.path().join("override.yaml");
    std::fs::write(&vals, "cache:\n  enabled: false\n").unwrap();
    let opts = Options {
        helm: None,
        values: vec![vals],
        set: vec![
            "queue.image.tag=9".into(),
            "queue.metrics.enabled=true".into(),
        ],
    };
    let mut d = Discovery::default();
    d.add_chart(dir.path(), &opts, true).unwrap();
    let refs = d.references();
    assert!(!refs.iter().any(|r| r.contains("redis")), "{refs:?}");
    assert!(
        refs.contains(&"quay.io/team/queue:9".to_string()),
        "{refs:?}"
    );
    assert!(
        refs.contains(&"docker.io/team/exporter:1".to_string()),
        "{refs:?}"
    );
    assert!(d.charts[0].excluded);
}

#[test]
fn lists_and_manifests_as_image_lists() {
    let mut d = Discovery::default();
    d.add_list("# base\nnginx\nquay.io/a/b:1 # pinned\n", "list.txt")
        .unwrap();
    d.add_list(
        "kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: 'nginx:latest'}]\n",
        "pod.yaml",
    )
    .unwrap();
    assert_eq!(
        d.references(),
        vec!["docker.io/library/nginx:latest", "quay.io/a/b:1"]
    );
    assert_eq!(d.images[0].origins.len(), 2);
    assert_eq!(d.images[0].origins[0].to_string(), "list.txt:2");
    let e = d.add_list("Bad Name\n", "list.txt").unwrap_err();
    assert!(e.to_string().starts_with("list.txt:1: "), "{e}");
}

#[test]
fn a_broken_chart_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), &[("Chart.yaml", "name: [\n")]);
    let e = Discovery::default()
        .add_chart(dir.path(), &Options::default(), false)
        .unwrap_err();
    assert!(e.to_string().contains("Chart.yaml"), "{e}");
}

#[test]
fn yaml_nesting_bound_passes_real_shapes_and_catches_deep_ones() {
    let fine = r#"# a comment with [[[[ brackets {{{{
image:
  repository: "a[b"   # quoted [ and a comment {
  tag: 'it''s [x'
  pattern: ^[a-z]+$
script: |
  if [ -z "$X" ]; then { { { {
    echo "[[[["
  fi
dashboard: >-
  {"a": {"b": {"c": [[[[[[[[
list:
  - name: web
    image: {repository: a, tag: '1'}
    args: ["--x=[", "{y}"]
  - - nested
    - seq
anchor: &base
  k: v
merged:
  <<: *base
plain: a multi-line
  continued [[[[ scalar
said: he said "[[[[" once
flow: [a, "b]]]]", 'c[[[[', {d: "e{{{{"}]
"#;
    assert!(!nesting_exceeds(fine, 8), "realistic YAML counted too deep");
    // Exactly `limit` levels of indentation pass; one more does not.
    let mapping = |levels: usize| -> String {
        (0..levels)
            .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
            .collect::<String>()
            + &"  ".repeat(levels)
            + "leaf: 1\n"
    };
    assert!(!nesting_exceeds(
        &mapping(MAX_YAML_DEPTH - 1),
        MAX_YAML_DEPTH
    ));
    assert!(serde_yaml_ng::from_str::<serde_yaml_ng::Value>(&mapping(MAX_YAML_DEPTH - 1)).is_ok());
    assert!(nesting_exceeds(
        &mapping(MAX_YAML_DEPTH + 1),
        MAX_YAML_DEPTH
    ));
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    for hostile in [
        format!("a: {}\n", deep(200)),
        format!("{}x\n", "- ".repeat(200)),
        format!("- a: b\n  c: {}\n", deep(200)),
        format!("key: &anchor\n  {}\n", deep(200)),
        format!("key: !!seq\n- {}\n", deep(200)),
        format!("a: [\n{}\n]\n", "{x: [\n".repeat(120)),
        format!("a: {}\n", "{b: ".repeat(200)),
        // A quote inside a plain scalar opens nothing: the brackets after it still nest.
        format!("a: [x \"y {}]\n", deep(200)),
        format!("a: [x 'y {}]\n", deep(200)),
    ] {
        assert!(nesting_exceeds(&hostile, MAX_YAML_DEPTH), "{hostile:.80}");
        let e = parse_yaml(&hostile, "f.yaml").unwrap_err().to_string();
        assert!(
            e.contains("f.yaml") && e.contains("nested more than 100"),
            "{e}"
        );
    }
    // Linear: 100,000 levels are refused at once (the parser took 38 s on them).
    let started = std::time::Instant::now();
    assert!(parse_yaml(&format!("a: {}\n", deep(100_000)), "f").is_err());
    assert!(parse_yaml(&format!("{}x\n", "- ".repeat(100_000)), "f").is_err());
    assert!(started.elapsed().as_secs() < 2, "{:?}", started.elapsed());
}

#[test]
fn many_distinct_images_are_added_in_linear_time() {
    // A 2 MB lock file can name 100,000 images; each used to be compared with every other.
    let list: String = (0..100_000).map(|i| format!("a/b:{i}\n")).collect();
    let started = std::time::Instant::now();
    let mut d = Discovery::default();
    d.add_list(&list, "many").unwrap();
    d.add_list("a/b:7\n", "again").unwrap();
    assert_eq!(d.images.len(), 100_000);
    assert_eq!(d.images[7].origins.len(), 2);
    assert!(started.elapsed().as_secs() < 15, "{:?}", started.elapsed());
}

#[test]
fn many_subcharts_and_dependencies_are_matched_in_linear_time() {
    // Each subchart used to be looked up among all dependencies: 10,000 × 200,000 comparisons.
    let mut meta = String::from("name: c\nversion: 1.0.0\ndependencies:\n");
    for i in 0..200_000 {
        meta.push_str(&format!("- name: d{i}\n"));
    }
    meta.push_str("- name: s7\n  condition: s7.on\n");
    let mut files = load::Files::new();
    files.insert("Chart.yaml".into(), meta.into_bytes());
    files.insert("values.yaml".into(), b"s7: {on: false}\n".to_vec());
    for i in 0..10_000 {
        let sub = format!("name: s{i}\nversion: 1.0.0\nannotations:\n  images: '[\"a/s{i}:1\"]'\n");
        files.insert(format!("charts/s{i}/Chart.yaml"), sub.into_bytes());
    }
    let chart = load::parse(files, "wide").unwrap();
    let started = std::time::Instant::now();
    let mut d = Discovery::default();
    d.add_declared(&chart, &chart.values, &chart.values, "wide", false)
        .unwrap();
    // s7 is switched off by its dependency's condition; the others are on.
    assert_eq!(d.images.len(), 9_999);
    assert!(!d.references().contains(&"docker.io/a/s7:1".to_string()));
    assert!(started.elapsed().as_secs() < 10, "{:?}", started.elapsed());
}

#[test]
fn aliases_expanding_beyond_the_node_limit_are_refused() {
    // One anchor of 2,500 items referenced 1,000 times: 2.5 million nodes from 10 KB (a
    // 100,000 x 100,000 version of it took 6.5 GB before it failed).
    let big = format!("big: &big [{}]\n", vec!["x"; 2_500].join(","));
    let refs = format!("refs: [{}]\n", vec!["*big"; 1_000].join(","));
    let started = std::time::Instant::now();
    let e = match parse_yaml(&format!("{big}{refs}"), "f.yaml") {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("f.yaml") && e.contains("2000000 nodes"), "{e}");
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
    // Aliases within reason are fine.
    let ok = "base: &b {image: a, tag: '1'}\nweb: {<<: *b, tag: '2'}\nalso: *b\n\
              big: 18446744073709551615\nneg: -9223372036854775808\nf: 1.5e300\nn: ~\ntagged: !x {a: [1]}\n";
    assert_eq!(
        parse_yaml(ok, "ok.yaml").unwrap(),
        serde_yaml_ng::from_str::<serde_yaml_ng::Value>(ok).unwrap()
    );
}

#[test]
fn more_images_than_the_limit_are_refused_by_name() {
    let list: String = (0..=MAX_IMAGES).map(|i| format!("a/b:{i}\n")).collect();
    let e = match Discovery::default().add_list(&list, "many.txt") {
        Ok(()) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("many.txt") && e.contains("100000 images"), "{e}");
}

//! `--chart`, `--exclude-chart`, `--images-from`, `--exclude-images-from` and the `images`
//! subcommand: discovery (common's `chart` module) turned into the `-i`/`-e` name lists, before
//! the export starts, and the check that the source daemon holds every one of them (the exporter
//! never pulls, so all missing images are listed in one error).

use crate::cli::{DiscoverArgs, ImagesArgs, SaveArgs};
use anyhow::{bail, Context, Result};
use partial_chart::{self as chart, ChartError, Discovery, FoundImage};
use partial_common::daemon;
use partial_common::exit::{self, Coded};
use partial_common::manifest::ChartEntry;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

/// A discovery error with its exit code: 2 for usage, 1 when helm fails, else 3 (bad input).
fn coded(e: ChartError) -> anyhow::Error {
    let code = match e {
        ChartError::Usage(_) => exit::USAGE,
        ChartError::HelmStart { .. } | ChartError::Render { .. } => exit::FAILURE,
        _ => exit::VERIFY,
    };
    anyhow::Error::new(Coded::new(code, e))
}

/// The helm binary to render with: `--helm`, else `helm` on PATH, unless `--no-helm`.
fn helm(d: &DiscoverArgs) -> Option<PathBuf> {
    if d.no_helm {
        return None;
    }
    d.helm.clone().or_else(chart::render::helm_on_path)
}

/// Most bytes of an image list (`--images-from`), as of a chart.
const MAX_LIST_BYTES: u64 = chart::load::MAX_CHART_BYTES;

fn too_large_list(file: &str) -> anyhow::Error {
    anyhow::Error::new(Coded::new(
        exit::VERIFY,
        format!(
            "image list {file}: more than {} MiB: over the limit for a list",
            MAX_LIST_BYTES >> 20
        ),
    ))
}

/// Reads an image list (`-`: standard input, at most once), at most [`MAX_LIST_BYTES`].
fn read_list(file: &str, stdin_used: &mut bool) -> Result<(String, String)> {
    if file == "-" {
        if *stdin_used {
            bail!("standard input (-) can be read by only one --images-from/--exclude-images-from");
        }
        *stdin_used = true;
        let mut s = String::new();
        std::io::stdin()
            .take(MAX_LIST_BYTES + 1)
            .read_to_string(&mut s)
            .context("reading the image list from standard input")?;
        if s.len() as u64 > MAX_LIST_BYTES {
            return Err(too_large_list("<stdin>"));
        }
        return Ok((s, "<stdin>".to_string()));
    }
    let mut s = String::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_LIST_BYTES + 1).read_to_string(&mut s))
        .with_context(|| format!("reading image list {file}"))?;
    if s.len() as u64 > MAX_LIST_BYTES {
        return Err(too_large_list(file));
    }
    Ok((s, file.to_string()))
}

/// Discovers the images of `charts` and `lists`.
fn discover(
    d: &DiscoverArgs,
    charts: &[PathBuf],
    lists: &[String],
    excluded: bool,
    stdin_used: &mut bool,
) -> Result<Discovery> {
    let opts = chart::Options {
        helm: helm(d),
        values: d.values.clone(),
        set: d.set.clone(),
    };
    let mut found = Discovery::default();
    for c in charts {
        found.add_chart(c, &opts, excluded).map_err(coded)?;
    }
    for l in lists {
        let (text, label) = read_list(l, stdin_used)?;
        found.add_list(&text, &label).map_err(coded)?;
    }
    for w in &found.warnings {
        eprintln!("warning: {w}");
    }
    Ok(found)
}

fn push_new(names: &mut Vec<String>, found: &Discovery) {
    for r in found.references() {
        if !names.contains(&r) {
            names.push(r);
        }
    }
}

/// The early hook of `partial-save`: adds the discovered images to `args.images` (`-i`) and
/// `args.exclude` (`-e`), checks that a live source holds them all, and returns the charts read
/// (for the manifest). Does nothing without chart or list options.
pub async fn expand(args: &mut SaveArgs) -> Result<Vec<ChartEntry>> {
    let d = &args.discover;
    if d.charts.is_empty()
        && d.images_from.is_empty()
        && args.exclude_charts.is_empty()
        && args.exclude_images_from.is_empty()
    {
        return Ok(Vec::new());
    }
    let mut stdin_used = false;
    let inc = discover(d, &d.charts, &d.images_from, false, &mut stdin_used)?;
    let exc = discover(
        d,
        &args.exclude_charts,
        &args.exclude_images_from,
        true,
        &mut stdin_used,
    )?;
    if (!d.charts.is_empty() || !d.images_from.is_empty()) && inc.images.is_empty() {
        bail!("the charts and lists given name no images");
    }
    push_new(&mut args.images, &inc);
    push_new(&mut args.exclude, &exc);
    if !crate::select::offline(args) {
        check_present(args, &[&inc, &exc]).await?;
    }
    Ok(inc.charts.into_iter().chain(exc.charts).collect())
}

/// Every `-i`/`-e` image must be on the source daemon: lists all that are not, with where each
/// was discovered, in one error.
async fn check_present(args: &SaveArgs, found: &[&Discovery]) -> Result<()> {
    let daemon = daemon::connect(args.host.as_deref(), Duration::from_secs(args.timeout))
        .await
        .map_err(crate::daemon_failure)?;
    let mut missing = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for name in args.images.iter().chain(&args.exclude) {
        if !seen.insert(name) {
            continue;
        }
        if daemon
            .inspect(name)
            .await
            .map_err(crate::daemon_failure)?
            .is_none()
        {
            let how = found
                .iter()
                .flat_map(|d| &d.images)
                .find(|i| &i.reference == name)
                .map(describe)
                .unwrap_or_else(|| "named on the command line".to_string());
            missing.push(format!("  {name} ({how})"));
        }
    }
    if !missing.is_empty() {
        bail!(
            "{} image(s) missing on the source daemon {} (partial-save never pulls: pull or load \
             them there first, or leave an -e image out and use --have):\n{}",
            missing.len(),
            daemon.host,
            missing.join("\n")
        );
    }
    Ok(())
}

fn describe(i: &FoundImage) -> String {
    let origins: Vec<String> = i.origins.iter().map(ToString::to_string).collect();
    format!(
        "{}{}",
        if i.guess { "a GUESS: " } else { "" },
        origins.join("; ")
    )
}

/// `partial-save images`: prints what discovery finds; no daemon involved.
pub fn run_images(args: &ImagesArgs) -> Result<()> {
    let d = &args.discover;
    if d.charts.is_empty() && d.images_from.is_empty() {
        return Err(anyhow::Error::new(Coded::new(
            exit::USAGE,
            ChartError::Usage("name a chart (--chart PATH) or a list (--images-from FILE)".into()),
        )));
    }
    let found = discover(d, &d.charts, &d.images_from, false, &mut false)?;
    if args.json {
        let out = serde_json::json!({
            "images": found.images,
            "charts": found.charts,
            "warnings": found.warnings,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for r in found.references() {
            println!("{r}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn save_args(args: &[&str]) -> SaveArgs {
        let cli = crate::cli::Cli::try_parse_from(
            std::iter::once("partial-save").chain(args.iter().copied()),
        )
        .unwrap();
        cli.save
    }

    #[test]
    fn chart_and_list_flags_parse_and_helm_flags_exclude_each_other() {
        let a = save_args(&[
            "--chart",
            "a",
            "--chart",
            "b.tgz",
            "--exclude-chart",
            "old",
            "--values",
            "v.yaml",
            "--set",
            "x=1",
            "--images-from",
            "-",
            "--exclude-images-from",
            "have.txt",
        ]);
        assert_eq!(a.discover.charts.len(), 2);
        assert_eq!(a.exclude_charts, vec![PathBuf::from("old")]);
        assert_eq!(a.discover.set, vec!["x=1".to_string()]);
        assert_eq!(a.exclude_images_from, vec!["have.txt".to_string()]);
        let e = crate::cli::Cli::try_parse_from(["partial-save", "--helm", "h", "--no-helm"]);
        assert!(e.is_err());
        assert_eq!(helm(&save_args(&["--no-helm"]).discover), None);
        assert_eq!(
            helm(&save_args(&["--helm", "/opt/helm"]).discover),
            Some(PathBuf::from("/opt/helm"))
        );
    }

    #[test]
    fn discovered_names_are_added_once_and_stdin_is_read_once() {
        let mut found = Discovery::default();
        found
            .add_list("nginx\nnginx:latest\nquay.io/a/b:1\n", "l")
            .unwrap();
        let mut names = vec!["docker.io/library/nginx:latest".to_string()];
        push_new(&mut names, &found);
        assert_eq!(
            names,
            vec!["docker.io/library/nginx:latest", "quay.io/a/b:1"]
        );
        let mut used = true;
        let e = read_list("-", &mut used).unwrap_err();
        assert!(e.to_string().contains("only one"), "{e}");
    }

    #[test]
    fn a_list_over_the_limit_is_refused_by_name() {
        let big = std::env::temp_dir().join(format!("partial-big-list-{}.txt", std::process::id()));
        let f = std::fs::File::create(&big).unwrap();
        f.set_len(chart::load::MAX_CHART_BYTES + 1).unwrap();
        let got = read_list(big.to_str().unwrap(), &mut false);
        std::fs::remove_file(&big).unwrap();
        let Err(e) = got else {
            panic!("a list over the limit was read");
        };
        let msg = format!("{e:#}");
        assert!(
            msg.contains("partial-big-list") && msg.contains("64 MiB"),
            "{msg}"
        );
        assert_eq!(exit::code_of(e.chain()), exit::VERIFY);
    }

    #[test]
    fn nothing_to_expand_without_chart_or_list_flags() {
        let mut a = save_args(&["-i", "app:1"]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert!(rt.block_on(expand(&mut a)).unwrap().is_empty());
        assert_eq!(a.images, vec!["app:1".to_string()]);
    }
}

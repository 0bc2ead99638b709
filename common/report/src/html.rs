//! The report as one self-contained HTML page: inline CSS, no script, no external asset, long
//! lists behind native `<details>` folds, so it opens offline in any browser. Every text from the
//! bundle (file names, labels, tags) goes through [`esc`]: a hostile name shows as text.

use crate::config_diff::ConfigChange;
use crate::layers::{Capped, FileInfo, LayerFiles};
use crate::model::{BaseSource, BundleInfo, ImageReport, LayerReport, Report};
use crate::packages::PackageChange;
use std::fmt::Write as _;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#1b1b1b;\
background:#fff}h1{font-size:1.6em}h2{border-bottom:2px solid #345;padding-bottom:.2em;\
margin-top:2em}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccd;\
padding:.2em .5em;text-align:left;vertical-align:top}th{background:#eef1f6}\
code{font:12px ui-monospace,monospace;word-break:break-all}.warn{background:#fff1d6}\
.bad{background:#fde2e2}.ok{background:#e3f6e3}.note{color:#555;font-style:italic}\
.bar{background:#dde;width:300px;height:12px;display:inline-block;vertical-align:middle}\
.bar span{background:#36c;height:12px;display:block}details{margin:.4em 0}\
summary{cursor:pointer;font-weight:600}";

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn opt(s: &Option<String>) -> String {
    s.as_deref().map_or_else(|| "—".to_string(), esc)
}

/// The whole page.
pub fn render(r: &Report) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Transfer report: {}</title><style>{STYLE}</style></head><body>\n\
         <h1>Transfer report: {}</h1>\n<p class=\"note\">Made {} by {}. Schema {} version {}.</p>\n",
        esc(&r.bundle.name),
        esc(&r.bundle.name),
        esc(&r.created),
        esc(&r.tool),
        esc(&r.schema),
        r.version
    );
    bundle(&mut h, &r.bundle, &r.base_source);
    for img in &r.images {
        image(&mut h, img);
    }
    h.push_str("</body></html>\n");
    h
}

fn row(h: &mut String, key: &str, value: &str) {
    let _ = writeln!(h, "<tr><th>{}</th><td>{value}</td></tr>", esc(key));
}

fn bundle(h: &mut String, b: &BundleInfo, base: &BaseSource) {
    h.push_str("<h2>Bundle</h2>\n<table>\n");
    row(h, "Bundle", &format!("<code>{}</code>", esc(&b.name)));
    row(h, "Manifest", &format!("<code>{}</code>", esc(&b.manifest)));
    row(
        h,
        "Manifest sha256",
        &format!("<code>{}</code>", esc(&b.manifest_sha256)),
    );
    row(h, "Created", &esc(&b.created));
    row(h, "Made by", &esc(&b.made_by));
    row(h, "Site", &opt(&b.site));
    row(
        h,
        "Sequence",
        &b.sequence.map_or("—".into(), |s| s.to_string()),
    );
    row(
        h,
        "Previous bundle",
        &format!("<code>{}</code>", opt(&b.previous)),
    );
    let signed = match &b.signed_by {
        Some(k) => format!("<span class=\"ok\">key <code>{}</code></span>", esc(k)),
        None => "<span class=\"bad\">not checked (unsigned or no --key)</span>".to_string(),
    };
    row(h, "Signed by", &signed);
    row(h, "Trusted comment", &opt(&b.trusted_comment));
    row(h, "Approvals", &approvals(b));
    row(
        h,
        "Size",
        &format!(
            "{} ({}, {} volume(s))",
            bytes(b.size),
            esc(&b.compression),
            b.volumes
        ),
    );
    row(
        h,
        "Plain docker load",
        if b.docker_loadable {
            "yes"
        } else {
            "no (delta layers)"
        },
    );
    let base = match base {
        BaseSource::Daemon { host } => format!("the daemon at <code>{}</code>", esc(host)),
        BaseSource::None { why } => format!("<span class=\"warn\">none: {}</span>", esc(why)),
    };
    row(h, "Base images read from", &base);
    for w in &b.warnings {
        row(
            h,
            "Warning",
            &format!("<span class=\"warn\">{}</span>", esc(w)),
        );
    }
    h.push_str("</table>\n");
}

fn approvals(b: &BundleInfo) -> String {
    if b.approvals.is_empty() {
        return "none".to_string();
    }
    let items: Vec<String> = b
        .approvals
        .iter()
        .map(|a| match (&a.key_id, a.verified) {
            (Some(k), true) => format!(
                "<span class=\"ok\">valid, key <code>{}</code></span>",
                esc(k)
            ),
            _ => format!(
                "present, not checked (no --approver): <code>{}</code>",
                esc(&a.file)
            ),
        })
        .collect();
    items.join("<br>")
}

/// `12.3 MiB (12 345 678 bytes)`.
pub fn bytes(n: u64) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    match u {
        0 => format!("{n} bytes"),
        _ => format!("{v:.1} {} ({n} bytes)", units[u]),
    }
}

fn image(h: &mut String, i: &ImageReport) {
    let title = i.tags.first().cloned().unwrap_or_else(|| i.id.clone());
    let _ = writeln!(h, "<section><h2>Image {}</h2>\n<table>", esc(&title));
    row(h, "Names", &esc(&i.tags.join(", ")));
    row(h, "Image ID", &format!("<code>{}</code>", esc(&i.id)));
    let md = match (&i.manifest_digest, &i.manifest_digest_from) {
        (Some(d), Some(f)) => format!("<code>{}</code> ({})", esc(d), esc(f)),
        _ => "—".to_string(),
    };
    row(h, "Manifest digest", &md);
    row(h, "Platform", &opt(&i.platform));
    let b = &i.base;
    let base = format!(
        "{} layer(s) left out, chain <code>{}</code><br>expected on the destination as: {}<br>\
         found on the daemon: {}{}",
        b.layers,
        opt(&b.chain_id),
        opt(&b.origin),
        opt(&b.found),
        b.note
            .as_ref()
            .map(|n| format!("<br><span class=\"warn\">{}</span>", esc(n)))
            .unwrap_or_default()
    );
    row(h, "Based on", &base);
    let pct = (i.bytes_carried as f64 * 100.0 / i.bytes_full.max(1) as f64).min(100.0);
    row(
        h,
        "Carried",
        &format!(
            "{} of {} layers; {} of {} ({pct:.1}%) \
             <span class=\"bar\"><span style=\"width:{pct:.1}%\"></span></span>",
            i.layers_carried,
            i.layers_total,
            bytes(i.bytes_carried),
            bytes(i.bytes_full)
        ),
    );
    let deltas: Vec<String> = i
        .deltas
        .iter()
        .map(|d| {
            format!(
                "<code>{}</code> against <code>{}</code> ({})",
                esc(&d.diff_id),
                esc(&d.reference_diff_id),
                bytes(d.size)
            )
        })
        .collect();
    row(
        h,
        "Deltas",
        &if deltas.is_empty() {
            "none".into()
        } else {
            deltas.join("<br>")
        },
    );
    row(h, "Attached", &attached(i));
    h.push_str("</table>\n");
    packages(h, i);
    config(h, &i.config.status, &i.config.changes);
    for l in i.layers.iter().filter(|l| l.carried) {
        layer(h, l);
    }
    h.push_str("</section>\n");
}

/// Signatures, attestations and SBOMs carried with the image.
fn attached(i: &ImageReport) -> String {
    if i.attached.is_empty() {
        return "none".to_string();
    }
    let items: Vec<String> = i
        .attached
        .iter()
        .map(|a| {
            format!(
                "{} <code>{}</code> ({}, {} blob(s), <code>{}</code>)",
                esc(&a.kind),
                esc(&a.tag),
                esc(&a.media_type),
                a.blobs,
                esc(&a.digest)
            )
        })
        .collect();
    items.join("<br>")
}

fn packages(h: &mut String, i: &ImageReport) {
    let p = &i.packages;
    let _ = writeln!(
        h,
        "<h3>OS packages{}</h3>",
        p.manager
            .as_ref()
            .map(|m| format!(" ({})", esc(m)))
            .unwrap_or_default()
    );
    if let Some(n) = &p.note {
        let _ = writeln!(h, "<p class=\"note\">{}</p>", esc(n));
    }
    if p.changes.is_empty() {
        return;
    }
    h.push_str("<table><tr><th>Package</th><th>Old version</th><th>New version</th></tr>\n");
    for c in &p.changes {
        package_row(h, c);
    }
    h.push_str("</table>\n");
}

fn package_row(h: &mut String, c: &PackageChange) {
    let class = match (&c.old, &c.new) {
        (None, _) => "ok",
        (_, None) => "bad",
        _ => "warn",
    };
    let _ = writeln!(
        h,
        "<tr class=\"{class}\"><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&c.name),
        opt(&c.old),
        opt(&c.new)
    );
}

fn config(h: &mut String, status: &str, changes: &[ConfigChange]) {
    h.push_str("<h3>Config changes</h3>\n");
    if status == "base_not_available" {
        h.push_str(
            "<p class=\"note\">The base image's config is not available: every value the image \
             sets is listed.</p>\n",
        );
    }
    if changes.is_empty() {
        h.push_str("<p>None.</p>\n");
        return;
    }
    h.push_str("<table><tr><th>Field</th><th>Key</th><th>Base</th><th>New</th></tr>\n");
    for c in changes {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            esc(&c.field),
            opt(&c.key),
            opt(&c.old),
            opt(&c.new)
        );
    }
    h.push_str("</table>\n");
}

fn layer(h: &mut String, l: &LayerReport) {
    let _ = writeln!(
        h,
        "<h3>Layer {} <code>{}</code>{}</h3>",
        l.position,
        esc(&l.diff_id),
        if l.delta { " (delta)" } else { "" }
    );
    if let Some(n) = &l.note {
        let _ = writeln!(h, "<p class=\"warn\">{}</p>", esc(n));
    }
    let Some(f) = &l.files else {
        return;
    };
    let _ = writeln!(
        h,
        "<p>{} entries, {} in files: {} added, {} changed, {} added or changed (lower layers not \
         read), {} removed.</p>",
        f.entries,
        bytes(f.bytes),
        f.added,
        f.changed,
        f.written,
        f.removed
    );
    flagged(h, "Setuid", "bad", &f.setuid);
    flagged(h, "Setgid", "bad", &f.setgid);
    flagged(h, "World-writable", "warn", &f.world_writable);
    flagged(h, "New executables", "warn", &f.new_executables);
    largest(h, f);
    let _ = writeln!(h, "<details><summary>All entries ({})</summary>", f.entries);
    file_table(h, &f.files.items);
    if f.files.more > 0 {
        let _ = writeln!(
            h,
            "<p class=\"note\">… and {} more entries not listed.</p>",
            f.files.more
        );
    }
    h.push_str("</details>\n");
}

fn flagged(h: &mut String, what: &str, class: &str, c: &Capped) {
    if c.total() == 0 {
        return;
    }
    let _ = writeln!(
        h,
        "<details open class=\"{class}\"><summary>{what}: {}</summary>",
        c.total()
    );
    file_table(h, &c.items);
    if c.more > 0 {
        let _ = writeln!(h, "<p class=\"note\">… and {} more.</p>", c.more);
    }
    h.push_str("</details>\n");
}

fn largest(h: &mut String, f: &LayerFiles) {
    if f.largest.is_empty() {
        return;
    }
    let _ = writeln!(
        h,
        "<details><summary>The {} largest files</summary>",
        f.largest.len()
    );
    file_table(h, &f.largest);
    h.push_str("</details>\n");
}

fn file_table(h: &mut String, files: &[FileInfo]) {
    h.push_str(
        "<table><tr><th>Path</th><th>Change</th><th>Kind</th><th>Mode</th><th>Size</th></tr>\n",
    );
    for f in files {
        let change = serde_json::to_value(f.change)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let _ = writeln!(
            h,
            "<tr><td><code>/{}</code></td><td>{change}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&f.path),
            f.kind,
            esc(&f.mode),
            f.size
        );
    }
    h.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\"\u{1b}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\u{1b}"
        );
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(1536), "1.5 KiB (1536 bytes)");
    }
}

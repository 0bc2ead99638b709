//! What `partial-save` tells people: the plan per image and layer (`--dry-run`), and the final
//! summary (images, layers carried and left out, bytes written, savings against a full save).

use partial_common::plan::{Decision, Layout, Plan};
use partial_common::progress::human_bytes;
use partial_delta_encode::coder::DeltaNote;
use std::fmt::Write as _;

/// The plan, one line per layer position, for people.
pub fn plan_text(plan: &Plan) -> String {
    let mut s = String::new();
    let shape = match plan.layout {
        Layout::Containerd => "Docker >= 25 layout, layers carried as the source compressed them",
        _ => "Docker >= 25 layout, layers carried uncompressed",
    };
    let _ = writeln!(s, "bundle: {shape}");
    for img in &plan.images {
        let name = if img.tags.is_empty() {
            "<untagged>".to_string()
        } else {
            img.tags.join(", ")
        };
        let _ = writeln!(s, "{name} ({})", img.id);
        for l in &img.layers {
            let size = l.size.map(human_bytes).unwrap_or_else(|| "?".into());
            let why = match (&l.decision, &l.delta) {
                (Decision::Carried, Some(d)) => format!(
                    "carried as a {} delta of {} against layer {} ({})",
                    d.encoding,
                    human_bytes(d.size),
                    d.reference_diff_id.short(),
                    d.reference_origin
                ),
                (Decision::Carried, None) => "carried".to_string(),
                (Decision::AtDestination { origin }, _) => {
                    format!("left out: destination has it ({origin})")
                }
            };
            let _ = writeln!(
                s,
                "  layer {:>3}  diff {}  chain {}  {:>10}  {why}",
                l.position,
                l.diff_id.short(),
                l.chain_id.short(),
                size
            );
        }
    }
    for w in &plan.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    let _ = writeln!(
        s,
        "layers carried: {} ({}), left out: {} ({})",
        plan.blobs_carried,
        human_bytes(plan.bytes_carried),
        plan.blobs_left_out,
        human_bytes(plan.bytes_left_out)
    );
    s.push_str(&delta_text(plan));
    s
}

/// With delta layers: what they replace, and that the bundle needs `partial-load`.
fn delta_text(plan: &Plan) -> String {
    let deltas = plan.deltas();
    if deltas.is_empty() {
        return String::new();
    }
    let sent: u64 = deltas.iter().map(|d| d.size).sum();
    let whole: u64 = deltas.iter().map(|d| d.target_size).sum();
    format!(
        "{} layer(s) as deltas: {} instead of {} of layers ({:.2}% of their size, before the \
         bundle's compression); the bundle loads with partial-load only (a plain docker load \
         cannot rebuild delta layers; partial-load rehydrate writes a plain archive)\n",
        deltas.len(),
        human_bytes(sent),
        human_bytes(whole),
        100.0 * sent as f64 / whole.max(1) as f64
    )
}

/// The one-paragraph summary after a real export.
pub fn summary_text(plan: &Plan, bundle_bytes: u64, files: &[String]) -> String {
    let full = plan.input_bytes.max(1);
    let ratio = 100.0 * (1.0 - bundle_bytes as f64 / full as f64);
    // Nothing left out and incompressible layers: the bundle can be a little bigger.
    let size = if ratio >= 0.05 {
        format!("{ratio:.1}% smaller")
    } else {
        "no smaller".to_string()
    };
    format!(
        "saved {} image(s): {} layer(s) carried ({}), {} left out ({})\n\
         wrote {} in {} file(s): {}\n\
         a full save would be {} uncompressed; this bundle is {size}\n",
        plan.images.len(),
        plan.blobs_carried,
        human_bytes(plan.bytes_carried),
        plan.blobs_left_out,
        human_bytes(plan.bytes_left_out),
        human_bytes(bundle_bytes),
        files.len(),
        files.join(", "),
        human_bytes(plan.input_bytes),
    ) + &delta_text(plan)
}

/// With `--delta`: each carried layer that travels whole, and why.
pub fn delta_notes(notes: &[DeltaNote]) -> String {
    let mut s = String::new();
    for n in notes.iter().filter(|n| n.whole_because.is_some()) {
        let why = n.whole_because.as_deref().unwrap_or_default();
        let tried = match (&n.reference, n.delta_size) {
            (Some((r, share)), Some(size)) => format!(
                " (against layer {}, which shares about {:.0}%: a delta of {})",
                r.short(),
                share * 100.0,
                human_bytes(size)
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "delta: layer {} ({}) travels whole: {why}{tried}",
            n.diff_id.short(),
            human_bytes(n.size)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use partial_common::Digest;

    #[test]
    fn delta_notes_name_the_whole_layers_and_why() {
        let d = Digest::of_bytes(b"layer");
        let r = Digest::of_bytes(b"reference");
        let notes = vec![
            DeltaNote {
                diff_id: d.clone(),
                size: 3 << 20,
                delta_size: None,
                reference: None,
                whole_because: Some("no reference layer shares its content".into()),
            },
            DeltaNote {
                diff_id: d.clone(),
                size: 3 << 20,
                delta_size: Some(2 << 20),
                reference: Some((r.clone(), 0.25)),
                whole_because: Some("the delta would not be smaller".into()),
            },
            DeltaNote {
                diff_id: r.clone(),
                size: 1,
                delta_size: Some(1),
                reference: Some((d.clone(), 0.9)),
                whole_because: None,
            },
        ];
        let s = delta_notes(&notes);
        assert_eq!(s.lines().count(), 2, "{s}");
        assert!(s.contains(&format!(
            "layer {} (3.00 MiB) travels whole: no reference",
            d.short()
        )));
        assert!(s.contains(&format!(
            "against layer {}, which shares about 25%",
            r.short()
        )));
        assert!(delta_notes(&[]).is_empty());
    }

    #[test]
    fn the_summary_never_calls_a_bigger_bundle_smaller() {
        let plan = Plan {
            layout: partial_common::plan::Layout::Oci,
            images: Vec::new(),
            blobs_carried: 1,
            bytes_carried: 1000,
            blobs_left_out: 0,
            bytes_left_out: 0,
            input_bytes: 1000,
            output_tar_bytes: 1000,
            warnings: Vec::new(),
        };
        let bigger = summary_text(&plan, 1002, &["b.tgz".into()]);
        assert!(bigger.contains("this bundle is no smaller\n"), "{bigger}");
        let smaller = summary_text(&plan, 400, &["b.tgz".into()]);
        assert!(
            smaller.contains("this bundle is 60.0% smaller\n"),
            "{smaller}"
        );
        assert!(!smaller.contains("  "), "{smaller}");
    }
}

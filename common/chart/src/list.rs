//! Image lists given by the user (`--images-from FILE|-`): either one reference a line (`#`
//! starts a comment, blank lines are skipped) or Kubernetes YAML (rendered manifests, several
//! documents), told apart by their look: a YAML key (`key: value`, `key:`) or a `---` line means
//! YAML, since no image reference contains `": "` or ends with `:`.

/// Whether `text` is YAML rather than a plain list.
pub fn is_yaml(text: &str) -> bool {
    text.lines()
        .map(strip_comment)
        .any(|l| l.starts_with("---") || l.contains(": ") || (l.ends_with(':') && !l.is_empty()))
}

fn strip_comment(line: &str) -> &str {
    line.split_once('#').map_or(line, |(l, _)| l).trim()
}

/// The references of a plain list with their line numbers (from 1).
pub fn lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let l = strip_comment(l);
            (!l.is_empty()).then(|| (i + 1, l.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lists_and_yaml_are_told_apart() {
        let list = "# images\nnginx:1\n\n  quay.io/a/b:2  # pinned\nlocalhost:5000/x\n";
        assert!(!is_yaml(list));
        assert_eq!(
            lines(list),
            vec![
                (2, "nginx:1".to_string()),
                (4, "quay.io/a/b:2".to_string()),
                (5, "localhost:5000/x".to_string())
            ]
        );
        assert!(is_yaml("kind: Pod\n"));
        assert!(is_yaml("---\n- a\n"));
        assert!(is_yaml("spec:\n  image: x\n"));
    }
}

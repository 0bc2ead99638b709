//! (placeholder: output)

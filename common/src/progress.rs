//! (placeholder: progress)

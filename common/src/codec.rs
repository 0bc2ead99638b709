//! (placeholder: codec)

//! (placeholder: manifest)

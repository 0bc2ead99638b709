//! (placeholder: daemon)

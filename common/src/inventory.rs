//! (placeholder: inventory)

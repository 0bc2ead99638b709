//! (placeholder: sign)

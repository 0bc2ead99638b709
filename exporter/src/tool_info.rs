//! How `partial-save` names itself in what it writes (bundle manifests, send ledgers): one
//! place, read by the export (`run`) and the ledger commands (`ledger_cmd`) alike.

use partial_common::manifest::ToolInfo;

/// `partial-save` and its version.
pub fn tool() -> ToolInfo {
    ToolInfo {
        name: "partial-save".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

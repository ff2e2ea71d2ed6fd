//! Errors for board configs: each names the device-tree node at fault and the reason.

use alloc::string::String;
use core::fmt;

/// A refused board config: the node at fault and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Full path of the node at fault, e.g. `/hypervisor/hello-b`.
    pub node: String,
    pub kind: ErrorKind,
}

/// Why a board config was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    // filled in by parse/validate
    Other(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "node {}: {}", self.node, self.kind)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrorKind::Other(s) => f.write_str(s),
        }
    }
}

//! Architecture-specific code, built for the target only: the sole place with inline assembly
//! and real register access. Only AArch64 exists.

pub mod aarch64;

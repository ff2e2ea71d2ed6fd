//! Architecture-specific code. Only AArch64 exists today; everything here is built for the target
//! only and is the sole place with inline assembly and real register access.

pub mod aarch64;

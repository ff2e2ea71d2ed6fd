//! Device-tree parser: turns a board-config DTB (platform description plus the `/hypervisor`
//! node) into a [`BoardConfig`], without judging whether the partitioning is sound (that is
//! `validate`'s job).
//!
//! The same bytes are parsed by the host tools and by the hypervisor at boot, so nothing here may
//! panic on any input. Three steps, one module each:
//!
//! 1. [`structure`]: the `fdt` crate (0.1.5) panics on some malformed blobs, so
//!    [`check_structure`] first walks the whole blob and refuses anything `fdt` could trip over;
//! 2. [`tree`]: only then is `fdt` used, to index the nodes (paths, parents, phandles) and to
//!    decode properties with checked accessors;
//! 3. [`board`]: the board parser reads the platform (RAM, reserved memory, CPUs, GIC, PSCI,
//!    devices) and the `/hypervisor` node out of that index into the model.

mod board;
mod structure;
mod tree;

pub use structure::check_structure;

use alloc::boxed::Box;

use crate::error::ConfigError;
use crate::model::BoardConfig;

/// The parser's results. The error is boxed: it is large (the node's path and the reason), and
/// every `?` of a large error copies it, which costs code size at each of the parser's many
/// call sites in the hypervisor image.
type Result<T> = core::result::Result<T, Box<ConfigError>>;

/// Parses a board config from a flattened device tree blob. Does not validate it.
pub fn parse(dtb: &[u8]) -> core::result::Result<BoardConfig, ConfigError> {
    parse_boxed(dtb).map_err(|e| *e)
}

fn parse_boxed(dtb: &[u8]) -> Result<BoardConfig> {
    check_structure(dtb)?;
    let fdt = fdt::Fdt::new(dtb).map_err(|_| structure::blob_error("bad header"))?;
    let tree = tree::Tree::build(&fdt)?;
    let reservations = structure::memory_reservations(dtb)?;
    board::Parser::new(&tree)?.run(&reservations)
}

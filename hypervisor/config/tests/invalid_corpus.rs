//! Compiles the board configs under `board-configs/` with `dtc` and loads them: every board of
//! `board-configs/`, `board-configs/test/` and `board-configs/bench/` must load cleanly, and
//! every file of `board-configs/test/invalid/` must be refused with an error containing the
//! substring its first line announces (`// expect: <substring>`).
//!
//! `dtc` is a required build tool of the project, so a missing `dtc` fails these tests.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Compiles `path` (relative to the repository root) the documented way:
/// `dtc -I dts -O dtb -i board-configs <file>` from the repository root.
fn compile(path: &Path) -> Vec<u8> {
    let out = Command::new("dtc")
        .current_dir(repo_root())
        .args([
            "-q",
            "-I",
            "dts",
            "-O",
            "dtb",
            "-i",
            "board-configs",
            "-o",
            "-",
        ])
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run dtc (a required tool; install device-tree-compiler): {e}")
        });
    assert!(
        out.status.success(),
        "dtc failed on {}:\n{}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn load(path: &str) -> Result<bulkhead_config::BoardConfig, bulkhead_config::ConfigError> {
    bulkhead_config::load(&compile(Path::new(path)))
}

#[test]
fn reference_config_loads() {
    let c = load("board-configs/qemu-virt-hello.dts").unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = c.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hello-a", "hello-b"]);
}

#[test]
fn stage2_blocks_are_on_unless_the_board_says_no() {
    let hello = load("board-configs/qemu-virt-hello.dts").unwrap_or_else(|e| panic!("{e}"));
    assert!(hello.hypervisor.stage2_blocks);
    let linux = load("board-configs/qemu-virt-linux.dts").unwrap_or_else(|e| panic!("{e}"));
    assert!(!linux.hypervisor.stage2_blocks);
}

/// The `.dts` files directly in `dir` (relative to the repository root), sorted.
fn dts_files(dir: &str) -> Vec<PathBuf> {
    let dir = repo_root().join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "dts"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_board_config_loads() {
    let boards: Vec<_> = [
        dts_files("board-configs"),
        dts_files("board-configs/test"),
        dts_files("board-configs/bench"),
    ]
    .concat();
    assert!(boards.len() >= 5, "expected the boards, found {boards:?}");
    for file in boards {
        let rel = file
            .strip_prefix(repo_root())
            .expect("under the repository");
        if let Err(e) = bulkhead_config::load(&compile(rel)) {
            panic!("{}: {e}", file.display());
        }
    }
}

/// The default board keeps working under the device and DMA rules: Linux reaches virtio31 by
/// trapping (its page holds virtio24..30), and says it can reach all memory.
#[test]
fn default_board_traps_virtio31_and_is_dma_trusted() {
    let c = load("board-configs/qemu-virt-linux.dts").unwrap_or_else(|e| panic!("{e}"));
    let linux = &c.partitions[0];
    assert_eq!(linux.name, "linux");
    let devices: Vec<_> = linux
        .devices
        .iter()
        .map(|d| (c.platform.devices[d.device].path.as_str(), d.access))
        .collect();
    assert_eq!(
        devices,
        [(
            "/virtio_mmio@a003e00",
            bulkhead_config::DeviceAccess::Trapped
        )]
    );
    assert!(linux.dma_trusted);
    let exposure = c
        .dma_exposure(bulkhead_config::PartitionId(0))
        .expect("linux can reach all memory")
        .to_string();
    assert!(
        exposure.starts_with("partition linux can reach all memory"),
        "{exposure}"
    );
    assert_eq!(c.dma_exposure(bulkhead_config::PartitionId(1)), None);
}

#[test]
fn trespass_config_loads() {
    let c = load("board-configs/test/qemu-virt-trespass.dts").unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<_> = c.partitions.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["hello-a", "trespasser"]);
    assert_eq!(c.partitions[1].image, "trespasser");
    assert_eq!(c.platform.cpus[c.partitions[1].cpus[0].index()].mpidr, 1);
}

#[test]
fn invalid_corpus_is_refused() {
    let files = dts_files("board-configs/test/invalid");
    assert!(
        files.len() >= 20,
        "expected the invalid corpus, found {files:?}"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable corpus file");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("// expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `// expect: ...`", file.display()))
            .trim();
        let rel = file
            .strip_prefix(repo_root())
            .expect("file under the repository");
        match bulkhead_config::load(&compile(rel)) {
            Ok(_) => panic!(
                "{}: loaded, expected an error containing {expect:?}",
                file.display()
            ),
            Err(e) => assert!(
                e.to_string().contains(expect),
                "{}: error {:?} does not contain {expect:?}",
                file.display(),
                e.to_string()
            ),
        }
    }
}

//! Every board config in `board-configs/test/invalid/` must be refused, with the reason its
//! first line promises (`// expect: <substring>`): by `cargo xtask check` on the host, and by
//! the hypervisor itself at boot when the config is packed unchecked.
//!
//! `cargo xtask check` also finds every image the build would (a missing file is refused, not
//! `ok`) and says which partitions can reach all memory. And every other board config in the
//! repository (the boards, the bench boards, the test boards) passes it: a rule added to the
//! validation must not leave one of them behind.

use std::path::PathBuf;
use std::time::Duration;

use bulkhead_tests::{build_board, check, expected_error, repo_root, run_board_unchecked};

/// QEMU run time allowed for a boot the hypervisor refuses. Measured: 0.11 s from QEMU start to
/// exit (3 runs of memory-overlap, 0.107-0.108 s, on the 2-core dev machine: the hypervisor
/// checks the config first thing and powers off). 4x would be too tight for QEMU's own start-up
/// jitter on a loaded machine, so this is a floor of 5 s (about 45x).
const TIMEOUT: Duration = Duration::from_secs(5);

const INVALID_DIR: &str = "board-configs/test/invalid";

/// The bad configs, sorted, each with the substring its error must contain.
fn invalid_configs() -> Vec<(PathBuf, String)> {
    let dir = repo_root().join(INVALID_DIR);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("cannot read a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "dts"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .dts files in {}", dir.display());
    files
        .into_iter()
        .map(|path| {
            let source = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let expect = expected_error(&source).unwrap_or_else(|| {
                panic!(
                    "{} must start with a `// expect: <substring>` line",
                    path.display()
                )
            });
            (path, expect.to_owned())
        })
        .collect()
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn check_accepts_every_other_board_config() {
    let mut checked = 0;
    for dir in ["board-configs", "board-configs/bench", "board-configs/test"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
            .unwrap_or_else(|e| panic!("cannot read {dir}: {e}"))
            .map(|entry| entry.expect("cannot read a directory entry").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "dts"))
            .collect();
        files.sort();
        for path in files {
            let out = check(&format!("{dir}/{}", file_name(&path)));
            out.assert_success();
            checked += 1;
        }
    }
    assert!(checked >= 5, "found only {checked} board configs");
}

#[test]
fn check_refuses_every_invalid_config() {
    for (path, expect) in invalid_configs() {
        let relative = format!("{INVALID_DIR}/{}", file_name(&path));
        let out = check(&relative);
        out.assert_failure();
        out.assert_contains(&file_name(&path));
        out.assert_contains(&expect);
    }
}

/// Packs each invalid config that can be packed without checking and boots it: the hypervisor
/// must print `invalid board config` with the same reason and power off. Configs that cannot
/// even be parsed (or packed) unchecked are skipped; at least one must boot.
#[test]
fn hypervisor_refuses_invalid_configs_at_boot() {
    let mut booted = Vec::new();
    for (path, expect) in invalid_configs() {
        let board = format!(
            "test/invalid/{}",
            path.file_stem().unwrap().to_string_lossy()
        );
        if !build_board(&board, true).status.success() {
            eprintln!("{board}: cannot be packed unchecked; not booted");
            continue;
        }
        let out = run_board_unchecked(&board, TIMEOUT);
        out.assert_exited_by_itself();
        let refusal = out.assert_line(0, "with `invalid board config`", |line| {
            line.contains("invalid board config")
        });
        if !out.lines()[refusal].contains(&expect) {
            out.fail(&format!(
                "the refusal at boot does not contain the expected {expect:?}"
            ));
        }
        booted.push(board);
    }
    assert!(
        !booted.is_empty(),
        "no invalid config in {INVALID_DIR} could be packed with --unchecked to boot"
    );
    eprintln!("refused at boot: {}", booted.join(", "));
}

/// A board whose only partition boots a file that does not exist: the config is valid, but
/// `check` must look for the image as `build` does and refuse it, naming the node and the
/// path. Written to a temporary directory (the platform included by absolute path).
#[test]
fn check_refuses_a_missing_image_file() {
    let dir = std::env::temp_dir().join(format!("bulkhead-bad-configs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("cannot create a temporary directory");
    let platform = repo_root().join("board-configs/platforms/qemu-virt.dtsi");
    let board = dir.join("missing-image-file.dts");
    let source = format!(
        "/dts-v1/;\n/include/ \"{}\"\n/ {{ hypervisor {{\n\
         compatible = \"bulkhead,hypervisor\"; memory = <0 0x40000000 0 0x4000000>;\n\
         console = <&uart0>;\n\
         guest {{ compatible = \"bulkhead,partition\"; cpus = <&cpu0>;\n\
         memory = <0 0x40000000 0 0x1000000 0 0x48000000>; image = \"guest.bin\"; }};\n\
         }}; }};\n",
        platform.display()
    );
    std::fs::write(&board, source).expect("cannot write the test board");
    let out = check(board.to_str().expect("a UTF-8 path"));
    out.assert_failure();
    out.assert_contains(&format!(
        "node /hypervisor/guest: image \"guest.bin\" not found: no file {}",
        dir.join("guest.bin").display()
    ));
    out.assert_not_contains(": ok (");
    std::fs::remove_dir_all(&dir).ok();
}

/// The default board's Linux partition owns a bus master without an IOMMU: `check` accepts the
/// board, since it says `dma-trusted`, and says plainly what that means.
#[test]
fn check_says_the_default_boards_linux_can_reach_all_memory() {
    let out = check("board-configs/qemu-virt-linux.dts");
    out.assert_success();
    out.assert_contains("qemu-virt-linux.dts: ok (2 partitions)");
    out.assert_contains(
        "qemu-virt-linux.dts: warning: partition linux can reach all memory, the hypervisor's \
         and other partitions' included: it is `dma-trusted` and owns bus master \
         /virtio_mmio@a003e00 (its node says `dma-coherent`), which no IOMMU confines",
    );
    out.assert_not_contains("partition ticker can reach");
}

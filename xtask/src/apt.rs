//! apt for xtask's host dependencies: which suites and components the configured sources give
//! (`apt-get indextargets`), a source file for one that is missing, and a [`Plan`] of steps
//! (write a source file, run `apt-get ...`) that is either carried out, when we run as root, or
//! turned into the exact shell commands a user should type.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Where xtask puts the apt source files it adds.
pub const SOURCES_DIR: &str = "/etc/apt/sources.list.d";
/// The Debian mirror used when no configured source names one.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian/";
/// The key Debian's own archives are signed with (package `debian-archive-keyring`).
pub const DEBIAN_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// One `deb` index apt is configured to download: a suite (as written in the source, e.g.
/// `bookworm-backports`), a component and the repository's URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexTarget {
    pub suite: String,
    pub component: String,
    pub uri: String,
}

/// The `deb` package indexes of every configured source.
pub fn configured_targets() -> Result<Vec<IndexTarget>> {
    let out = Command::new("apt-get")
        .args([
            "indextargets",
            "--format",
            "$(TARGET_OF) $(IDENTIFIER) $(RELEASE) $(COMPONENT) $(REPO_URI)",
        ])
        .output()
        .context("cannot run apt-get indextargets")?;
    if !out.status.success() {
        bail!(
            "`apt-get indextargets` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(parse_targets(&String::from_utf8_lossy(&out.stdout)))
}

/// Parses `apt-get indextargets --format '$(TARGET_OF) $(IDENTIFIER) $(RELEASE) $(COMPONENT)
/// $(REPO_URI)'`: binary package indexes only, one per suite and component.
fn parse_targets(text: &str) -> Vec<IndexTarget> {
    let mut targets: Vec<IndexTarget> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [target_of, identifier, suite, component, uri] = fields[..] else {
            continue;
        };
        if target_of != "deb" || identifier != "Packages" {
            continue;
        }
        let target = IndexTarget {
            suite: suite.to_owned(),
            component: component.to_owned(),
            uri: uri.to_owned(),
        };
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    targets
}

/// Whether some configured source gives `component` of `suite`.
pub fn has_component(targets: &[IndexTarget], suite: &str, component: &str) -> bool {
    targets
        .iter()
        .any(|t| t.suite == suite && t.component == component)
}

/// The Debian mirror the configured sources of `suite` use (else [`DEFAULT_MIRROR`]).
pub fn mirror(targets: &[IndexTarget], suite: &str) -> String {
    targets
        .iter()
        .find(|t| t.suite == suite && t.uri.contains("/debian"))
        .map(|t| t.uri.clone())
        .unwrap_or_else(|| DEFAULT_MIRROR.to_owned())
}

/// This Debian release's code name (`VERSION_CODENAME` of `/etc/os-release`, e.g. `bookworm`).
pub fn codename() -> Result<String> {
    let text = std::fs::read_to_string("/etc/os-release").context("cannot read /etc/os-release")?;
    parse_codename(&text).context("/etc/os-release has no VERSION_CODENAME: not a Debian system?")
}

fn parse_codename(os_release: &str) -> Option<String> {
    os_release
        .lines()
        .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .filter(|v| !v.is_empty())
}

/// The source file xtask adds for `component` of `suite` from `mirror`: its path and deb822
/// contents.
pub fn source_file(suite: &str, component: &str, mirror: &str) -> (PathBuf, String) {
    let path = PathBuf::from(SOURCES_DIR).join(format!("bulkhead-{suite}-{component}.sources"));
    let contents = format!(
        "# Added by Bulkhead's xtask (xtask/src/deps.rs) for its host tools.\n\
         Types: deb\n\
         URIs: {mirror}\n\
         Suites: {suite}\n\
         Components: {component}\n\
         Signed-By: {DEBIAN_KEYRING}\n"
    );
    (path, contents)
}

/// One step of a [`Plan`].
#[derive(Clone, Debug, PartialEq, Eq)]
enum Step {
    /// Write an apt source file.
    WriteFile { path: PathBuf, contents: String },
    /// Run a command (`apt-get ...`).
    Run(Vec<String>),
}

/// Steps that install something with apt, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    steps: Vec<Step>,
}

impl Plan {
    /// Adds a source file for `component` of `suite` unless `targets` already has it. Returns
    /// whether it was missing (then the package lists need an `apt-get update`).
    pub fn add_source_if_missing(
        &mut self,
        targets: &[IndexTarget],
        suite: &str,
        component: &str,
    ) -> bool {
        if has_component(targets, suite, component) {
            return false;
        }
        // Use the mirror of this release's main suite, e.g. `bookworm` for `bookworm-backports`.
        let base = suite.split('-').next().unwrap_or(suite);
        let (path, contents) = source_file(suite, component, &mirror(targets, base));
        let step = Step::WriteFile { path, contents };
        if !self.steps.contains(&step) {
            self.steps.push(step);
        }
        true
    }

    /// Adds a command.
    pub fn run(&mut self, args: &[&str]) {
        self.steps
            .push(Step::Run(args.iter().map(|s| s.to_string()).collect()));
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The steps as shell commands for a user who is not root.
    pub fn shell_commands(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            match step {
                Step::WriteFile { path, contents } => {
                    let _ = writeln!(
                        out,
                        "    sudo tee {} >/dev/null <<'EOF'\n{}EOF",
                        path.display(),
                        contents
                    );
                }
                Step::Run(args) => {
                    let _ = writeln!(out, "    sudo {}", args.join(" "));
                }
            }
        }
        out
    }

    /// Carries out the steps (needs root).
    pub fn execute(&self) -> Result<()> {
        for step in &self.steps {
            match step {
                Step::WriteFile { path, contents } => {
                    eprintln!("xtask: adding the apt source {}", path.display());
                    std::fs::write(path, contents)
                        .with_context(|| format!("cannot write {}", path.display()))?;
                }
                Step::Run(args) => {
                    eprintln!("xtask: {}", args.join(" "));
                    let status = Command::new(&args[0])
                        .args(&args[1..])
                        .env("DEBIAN_FRONTEND", "noninteractive")
                        .status()
                        .with_context(|| format!("cannot run {}", args[0]))?;
                    if !status.success() {
                        bail!("`{}` failed ({status})", args.join(" "));
                    }
                }
            }
        }
        Ok(())
    }

    /// Carries out the steps when we are root; otherwise fails with `why` and the commands.
    pub fn execute_or_explain(&self, why: &str) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        if is_root() {
            eprintln!("xtask: {why}; installing it");
            self.execute()
        } else {
            bail!("{why}; install it as root with:\n{}", self.shell_commands())
        }
    }
}

/// Whether we run as root (`id -u` prints 0).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEXTARGETS: &str = "\
deb Packages bookworm main http://deb.debian.org/debian/
deb Translations bookworm main http://deb.debian.org/debian/
deb Packages bookworm main http://deb.debian.org/debian/
deb Packages bookworm-security main http://deb.debian.org/debian-security/
deb-src Sources bookworm contrib http://deb.debian.org/debian/
deb Packages nodistro main https://deb.nodesource.com/node_20.x/
";

    #[test]
    fn targets_are_parsed() {
        let targets = parse_targets(INDEXTARGETS);
        assert_eq!(targets.len(), 3, "{targets:?}");
        assert!(has_component(&targets, "bookworm", "main"));
        assert!(!has_component(&targets, "bookworm", "contrib"));
        assert!(!has_component(&targets, "bookworm-backports", "main"));
        assert_eq!(
            mirror(&targets, "bookworm"),
            "http://deb.debian.org/debian/"
        );
        assert_eq!(mirror(&targets, "trixie"), DEFAULT_MIRROR);
    }

    #[test]
    fn codename_is_read() {
        let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\n";
        assert_eq!(parse_codename(text).as_deref(), Some("bookworm"));
        assert_eq!(parse_codename("ID=debian\n"), None);
    }

    #[test]
    fn a_missing_source_is_added_once_and_an_existing_one_not() {
        let targets = parse_targets(INDEXTARGETS);
        let mut plan = Plan::default();
        assert!(!plan.add_source_if_missing(&targets, "bookworm", "main"));
        assert!(plan.is_empty());
        assert!(plan.add_source_if_missing(&targets, "bookworm-backports", "main"));
        assert!(plan.add_source_if_missing(&targets, "bookworm-backports", "main"));
        plan.run(&["apt-get", "update"]);
        let text = plan.shell_commands();
        assert_eq!(text.matches("sudo tee").count(), 1, "{text}");
        assert!(text
            .contains("sudo tee /etc/apt/sources.list.d/bulkhead-bookworm-backports-main.sources"));
        assert!(text.contains("Suites: bookworm-backports\n"));
        assert!(text.contains("URIs: http://deb.debian.org/debian/\n"));
        assert!(text.ends_with("    sudo apt-get update\n"), "{text}");
    }
}

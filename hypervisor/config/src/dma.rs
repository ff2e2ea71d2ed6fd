//! Which platform devices can master the bus (do DMA).
//!
//! A device tree says so only sometimes: `dma-coherent` and `iommus` mark bus masters, but many
//! say nothing (a non-coherent virtio-mmio transport, an SD controller, a DMA engine). So a node
//! is also taken for a bus master when it is of a kind known to DMA ([`KNOWN_KINDS`]), as its
//! `compatible` strings, its generic node name, `#dma-cells` or `device_type = "pci"` show. The
//! board config overrides the verdict either way (`/hypervisor` `dma-masters` and
//! `not-dma-masters`, applied by the parser).
//!
//! The list errs on the side of caution: a false "master" costs a `dma-trusted` or a
//! `not-dma-masters` in the board config, a missed one costs isolation.

use alloc::format;
use alloc::string::String;

use crate::model::{Dma, DmaReason};

/// How a `compatible` string is matched.
#[derive(Clone, Copy, Debug)]
pub enum Pattern {
    /// The whole string.
    Exact(&'static str),
    /// A substring of it.
    Contains(&'static str),
}

impl Pattern {
    fn matches(self, compatible: &str) -> bool {
        match self {
            Pattern::Exact(s) => compatible == s,
            Pattern::Contains(s) => compatible.contains(s),
        }
    }
}

/// A kind of device known to master the bus.
#[derive(Clone, Copy, Debug)]
pub struct KnownKind {
    /// What it is, with its article, for messages: "a virtio-mmio transport".
    pub kind: &'static str,
    /// `compatible` strings that mark it.
    pub compatible: &'static [Pattern],
    /// Generic node names (without unit address) that mark it.
    pub names: &'static [&'static str],
}

use Pattern::{Contains, Exact};

const DMA_CONTROLLER: &str = "a DMA controller";
const PCI_HOST_BRIDGE: &str = "a PCI host bridge (its devices master the bus)";

/// The kinds of device known to master the bus.
pub const KNOWN_KINDS: &[KnownKind] = &[
    KnownKind {
        kind: "a virtio-mmio transport",
        compatible: &[Exact("virtio,mmio")],
        names: &["virtio_mmio", "virtio"],
    },
    KnownKind {
        kind: "an SD/MMC host controller",
        compatible: &[
            Contains("sdhci"),
            Contains("usdhc"),
            Contains("mshc"),
            Contains("mmc"),
        ],
        names: &["mmc", "sdhci"],
    },
    KnownKind {
        kind: DMA_CONTROLLER,
        compatible: &[
            Contains("dma"),
            Exact("arm,pl330"),
            Exact("arm,pl080"),
            Exact("arm,pl081"),
        ],
        names: &["dma-controller", "dma"],
    },
    KnownKind {
        kind: "a network controller",
        compatible: &[
            Contains("ethernet"),
            Contains("dwmac"),
            Contains("stmmac"),
            Contains("macb"),
            Exact("cdns,gem"),
            Contains("-gem"),
            Contains("-fec"),
            Contains("eqos"),
            Contains("enetc"),
        ],
        names: &["ethernet"],
    },
    KnownKind {
        kind: "a USB host controller",
        compatible: &[
            Contains("usb"),
            Contains("ehci"),
            Contains("ohci"),
            Contains("xhci"),
            Contains("dwc2"),
            Contains("dwc3"),
            Contains("musb"),
        ],
        names: &["usb"],
    },
    KnownKind {
        kind: "a SATA controller",
        compatible: &[Contains("ahci"), Contains("sata")],
        names: &["sata"],
    },
    KnownKind {
        kind: PCI_HOST_BRIDGE,
        compatible: &[Contains("pci")],
        names: &["pcie", "pci"],
    },
    KnownKind {
        kind: "a GPU or display controller",
        compatible: &[
            Contains("mali"),
            Contains("gpu"),
            Exact("arm,pl111"),
            Exact("arm,hdlcd"),
        ],
        names: &["gpu", "display-controller"],
    },
    KnownKind {
        kind: "a crypto engine",
        compatible: &[Contains("crypto")],
        names: &["crypto"],
    },
];

/// What [`classify`] looks at in a device node.
#[derive(Clone, Copy, Debug, Default)]
pub struct NodeFacts<'a> {
    pub compatible: &'a [String],
    /// The node name without its unit address.
    pub name: &'a str,
    pub dma_coherent: bool,
    pub iommus: bool,
    /// The node has `#dma-cells`: it is a DMA controller others refer to.
    pub dma_cells: bool,
    pub device_type: Option<&'a str>,
}

/// Whether the node describes a bus master, and why (before any board-config override).
pub fn classify(node: &NodeFacts) -> Dma {
    if node.dma_coherent {
        return Dma::Master(DmaReason::Coherent);
    }
    if node.iommus {
        return Dma::Master(DmaReason::Iommus);
    }
    known_kind(node).map_or(Dma::None, Dma::Master)
}

fn known_kind(node: &NodeFacts) -> Option<DmaReason> {
    let found =
        |kind: &'static str, evidence: String| Some(DmaReason::KnownKind { kind, evidence });
    if node.dma_cells {
        return found(DMA_CONTROLLER, "`#dma-cells`".into());
    }
    if node.device_type == Some("pci") {
        return found(PCI_HOST_BRIDGE, "device_type \"pci\"".into());
    }
    for k in KNOWN_KINDS {
        if let Some(c) = node
            .compatible
            .iter()
            .find(|c| k.compatible.iter().any(|p| p.matches(c)))
        {
            return found(k.kind, format!("compatible \"{c}\""));
        }
    }
    for k in KNOWN_KINDS {
        if k.names.contains(&node.name) {
            return found(k.kind, format!("node name \"{}\"", node.name));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn kind_of(compatible: &[&str], name: &str) -> Option<&'static str> {
        let compatible = strings(compatible);
        match classify(&NodeFacts {
            compatible: &compatible,
            name,
            ..NodeFacts::default()
        }) {
            Dma::Master(DmaReason::KnownKind { kind, .. }) => Some(kind),
            _ => None,
        }
    }

    #[test]
    fn properties_come_first() {
        let compatible = strings(&["virtio,mmio"]);
        let node = NodeFacts {
            compatible: &compatible,
            dma_coherent: true,
            ..NodeFacts::default()
        };
        assert_eq!(classify(&node), Dma::Master(DmaReason::Coherent));
        let node = NodeFacts {
            iommus: true,
            ..NodeFacts::default()
        };
        assert_eq!(classify(&node), Dma::Master(DmaReason::Iommus));
    }

    #[test]
    fn known_kinds_without_properties() {
        let virtio = strings(&["virtio,mmio"]);
        assert_eq!(
            classify(&NodeFacts {
                compatible: &virtio,
                name: "virtio_mmio",
                ..NodeFacts::default()
            }),
            Dma::Master(DmaReason::KnownKind {
                kind: "a virtio-mmio transport",
                evidence: "compatible \"virtio,mmio\"".into(),
            })
        );
        let cases = [
            (vec!["arasan,sdhci-5.1"], "mmc", "an SD/MMC host controller"),
            (vec!["fsl,imx8mq-usdhc"], "x", "an SD/MMC host controller"),
            (vec!["arm,pl330", "arm,primecell"], "x", "a DMA controller"),
            (vec!["brcm,bcm2835-dma"], "x", "a DMA controller"),
            (vec!["snps,dwmac-4.10a"], "x", "a network controller"),
            (vec!["cdns,gem"], "x", "a network controller"),
            (vec!["generic-xhci"], "x", "a USB host controller"),
            (vec!["snps,dwc3"], "x", "a USB host controller"),
            (vec!["generic-ahci"], "x", "a SATA controller"),
            (
                vec!["pci-host-ecam-generic"],
                "x",
                "a PCI host bridge (its devices master the bus)",
            ),
            (vec!["test,thing"], "ethernet", "a network controller"),
            (vec![], "usb", "a USB host controller"),
        ];
        for (compatible, name, kind) in cases {
            assert_eq!(
                kind_of(&compatible, name),
                Some(kind),
                "{compatible:?} {name}"
            );
        }
    }

    #[test]
    fn other_devices_are_not_masters() {
        for (compatible, name) in [
            (vec!["arm,pl011", "arm,primecell"], "pl011"),
            (vec!["arm,pl061", "arm,primecell"], "pl061"),
            (vec!["arm,pl031", "arm,primecell"], "pl031"),
            (vec!["cfi-flash"], "flash"),
            (vec!["test,dev"], "dev"),
        ] {
            assert_eq!(kind_of(&compatible, name), None, "{compatible:?}");
        }
        let node = NodeFacts {
            dma_cells: true,
            ..NodeFacts::default()
        };
        assert!(classify(&node).is_master());
        let node = NodeFacts {
            device_type: Some("pci"),
            ..NodeFacts::default()
        };
        assert!(classify(&node).is_master());
    }
}

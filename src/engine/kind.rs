//! The names of the two engines, at the bottom of the import graph: layers ([`crate::mask`])
//! record which engine masks them, and the CLI and recipes parse it.

/// The two engines (saved lowercase: `"ldznet"`, `"draft"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// LD-ZNet: CLIP + SD UNet features + the LD-ZNet UNet per phrase.
    #[default]
    Ldznet,
    /// Training-free draft: one SD UNet pass per image, CLIP + matrix products per phrase.
    Draft,
}

impl EngineKind {
    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ldznet => "ldznet",
            Self::Draft => "draft",
        }
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "ldznet" | "ld-znet" => Ok(Self::Ldznet),
            "draft" => Ok(Self::Draft),
            other => Err(format!(
                "unknown engine `{other}` (expected ldznet or draft)"
            )),
        }
    }
}

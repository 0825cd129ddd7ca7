//! File › Save recipe / Apply recipe: the document's phrase layers as a [`Recipe`] file, and a
//! recipe (or a session, which holds one) re-run on the open image. Dropping a recipe on the
//! window applies it too ([`super::ui::open_command_for`] tells it from a session by content).
//!
//! Applying adds the recipe's layers after the existing ones (one undo step each), so nothing
//! the user made is replaced; each gets the recipe's combine op, layer ops and picks (placed
//! by fraction of the image size) and is sent to the model. The document takes the recipe's
//! draws (mode, seed, prompt template), so its masks are those `ldzmask segment --recipe`
//! writes; phrase layers already there keep their masks until they are run again (a notice
//! says so). A recipe made with other weights is applied with a warning.

use std::path::{Path, PathBuf};

use super::app::App;
use super::commands::Command;
use super::edit::new_layer_props;
use super::ui::notices::Level;
use crate::mask::LayerProps;
use crate::recipe::Recipe;

impl App {
    /// The open document's recipe (visible phrase layers, the document's draws, the weights'
    /// identity when known) and how many layers it leaves out; `None` without a document.
    pub fn document_recipe(&self) -> Option<(Recipe, usize)> {
        let doc = self.state.document.as_ref()?;
        let (w, h) = doc.masks.size();
        let (mut recipe, left_out) = Recipe::from_layers(doc.masks.layers(), w, h);
        recipe.set_draws(doc.masks.draws());
        recipe.model = self.model_identity.clone();
        Some((recipe, left_out))
    }

    pub(super) fn save_recipe_dialog(&mut self) {
        let Some(doc) = &self.state.document else {
            return;
        };
        let stem = Path::new(&doc.name)
            .file_stem()
            .map_or_else(|| "masks".into(), |s| s.to_string_lossy().into_owned());
        if let Some(path) = self
            .file_dialog()
            .add_filter("ldzmask recipe", &["json"])
            .set_file_name(format!("{stem}.recipe.json"))
            .save_file()
        {
            self.apply(Command::SaveRecipe(path));
        }
    }

    pub(super) fn apply_recipe_dialog(&mut self) {
        if let Some(path) = self
            .file_dialog()
            .add_filter("ldzmask recipe or session", &["json"])
            .pick_file()
        {
            self.apply(Command::ApplyRecipe(path));
        }
    }

    /// Writes the document's recipe (a few KB: written on the UI thread, atomically).
    pub(super) fn save_recipe(&mut self, path: &Path) {
        let Some((recipe, left_out)) = self.document_recipe() else {
            self.toasts
                .push(Level::Warning, "Open an image first.".into());
            return;
        };
        if recipe.layers.is_empty() {
            self.toasts.push(
                Level::Warning,
                "No visible phrase layer to save: a recipe re-runs phrases (painted, imported \
                 and hidden layers are not part of it)."
                    .into(),
            );
            return;
        }
        match recipe.save(path) {
            Ok(()) => {
                self.remember_folder(path);
                let left = match left_out {
                    0 => String::new(),
                    n => format!(" ({n} painted, imported or hidden layer(s) left out)"),
                };
                self.toasts.push(
                    Level::Info,
                    format!(
                        "Recipe of {} layer(s) saved to {}{left}",
                        recipe.layers.len(),
                        path.display()
                    ),
                );
            }
            Err(e) => self.toasts.push(Level::Error, e.to_string()),
        }
    }

    /// Adds a recipe's layers to the open document and runs them.
    pub(super) fn apply_recipe(&mut self, path: PathBuf) {
        self.end_stroke();
        if self.state.document.is_none() {
            self.toasts.push(
                Level::Warning,
                "Open an image first, then apply the recipe to it.".into(),
            );
            return;
        }
        // Recipes are a few KB (a session's recipe sits in a file of at most some MB): read on
        // the UI thread.
        let recipe = match Recipe::load(&path) {
            Ok(recipe) => recipe,
            Err(e) => {
                self.toasts.push(Level::Error, e.to_string());
                return;
            }
        };
        self.remember_folder(&path);
        let settings = &self.state.settings;
        let Some(doc) = &mut self.state.document else {
            return;
        };
        let (w, h) = doc.masks.size();
        let earlier_with_other_draws = doc.masks.draws() != recipe.draws()
            && doc
                .masks
                .layers()
                .iter()
                .any(|e| !e.props.phrase.trim().is_empty());
        doc.masks.set_draws(recipe.draws());
        let mut ids = Vec::with_capacity(recipe.layers.len());
        for layer in &recipe.layers {
            let props = LayerProps {
                combine: layer.combine,
                ..new_layer_props(settings, &doc.masks, &layer.phrase)
            };
            ids.push(
                doc.masks
                    .add_layer_with_ops(props, layer.ops, layer.picks_in_image(w, h)),
            );
        }
        doc.active_layer = ids.last().copied().or(doc.active_layer);
        self.sync_layers();
        for &id in &ids {
            self.request_segment(id);
        }
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into(),
        );
        self.toasts.push(
            Level::Info,
            format!("Applied {name}: {} layer(s) added", ids.len()),
        );
        if earlier_with_other_draws {
            self.toasts.push(
                Level::Info,
                format!(
                    "The image now draws as {name} says ({}); the phrase layers it had keep \
                     their masks until run again (Model › Re-run all phrases).",
                    describe_draws(&recipe)
                ),
            );
        }
        if let (Some(made_with), Some(loaded)) = (&recipe.model, &self.model_identity)
            && made_with != loaded
        {
            self.toasts.push(
                Level::Warning,
                format!(
                    "{name} was made with other weights ({}); masks may differ.",
                    made_with.describe()
                ),
            );
        }
    }
}

/// `deterministic, template 3 ("{}."), seed 0` or `official, seed 7`.
fn describe_draws(recipe: &Recipe) -> String {
    match recipe.mode {
        crate::pipeline::Mode::Deterministic => format!(
            "deterministic, template {} ({:?}), seed {}",
            recipe.template,
            crate::pipeline::PROMPT_TEMPLATES
                .get(recipe.template)
                .copied()
                .unwrap_or_default(),
            recipe.seed
        ),
        crate::pipeline::Mode::Official => format!("official, seed {}", recipe.seed),
    }
}

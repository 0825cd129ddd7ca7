//! A script that drives the app as an artist would, for the end-to-end benchmark
//! (`--bench-script FILE`, `tests/tools/app_bench.sh`): open an image, add phrases, edit a
//! phrase keystroke by keystroke at typing speed, wait, quit. The timings come from the event
//! log ([`super::event_log`]); this module only decides what happens when. It holds no egui
//! or model types: [`ScriptRunner::poll`] looks at a [`ScriptView`] of the app and answers
//! with [`Action`]s.
//!
//! The file has one step per line (`#` starts a comment):
//! - `open PATH`: open an image, then wait until its draft pass and every layer are done;
//! - `phrase TEXT`: add a phrase layer, then wait until its mask is shown;
//! - `edit TEXT`: type into the active layer's phrase until it reads TEXT (backspaces to the
//!   common prefix, then the new characters, [`KEYS_PER_SECOND`]), then wait until the
//!   layer's new mask is shown;
//! - `wait SECONDS`: let the app idle (steady memory);
//! - `quit`: close the app (unsaved work is not asked about).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Typing speed of `edit` steps (a quick typist).
pub const KEYS_PER_SECOND: u32 = 10;

/// One line of a script.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Open an image.
    Open(PathBuf),
    /// Add a phrase layer.
    Phrase(String),
    /// Type into the active layer's phrase until it reads this.
    Edit(String),
    /// Idle for a while.
    Wait(Duration),
    /// Close the app.
    Quit,
}

/// Reads a script; the error names the line.
pub fn parse_script(text: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        let need = |what: &str| -> Result<(), String> {
            if rest.is_empty() {
                Err(format!("line {}: `{word}` needs {what}", i + 1))
            } else {
                Ok(())
            }
        };
        steps.push(match word {
            "open" => {
                need("an image path")?;
                Step::Open(PathBuf::from(rest))
            }
            "phrase" => {
                need("a phrase")?;
                Step::Phrase(rest.to_owned())
            }
            "edit" => {
                need("the new phrase")?;
                Step::Edit(rest.to_owned())
            }
            "wait" => {
                let secs: f64 = rest
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| format!("line {}: `wait` needs seconds, e.g. wait 2", i + 1))?;
                Step::Wait(Duration::from_secs_f64(secs))
            }
            "quit" => Step::Quit,
            other => {
                return Err(format!(
                    "line {}: unknown step `{other}` (open, phrase, edit, wait, quit)",
                    i + 1
                ));
            }
        });
    }
    Ok(steps)
}

/// What the runner needs to know of the app.
#[derive(Debug, Clone, Copy)]
pub struct ScriptView<'a> {
    /// The model finished loading (or failed: the script goes on without it).
    pub model_settled: bool,
    /// Background work, waiting model requests or a draft pass are under way.
    pub busy: bool,
    /// The open image's id.
    pub image_id: Option<u64>,
    /// The active layer's phrase.
    pub active_phrase: Option<&'a str>,
}

/// What the app should do now.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open this image.
    Open(PathBuf),
    /// Add a phrase layer.
    AddPhrase(String),
    /// One keystroke: the active layer's phrase becomes this.
    Type(String),
    /// A step began or ended (for the event log): `(what, detail)`.
    Mark(&'static str, String),
    /// Close the app.
    Quit,
}

#[derive(Debug)]
enum State {
    /// Waiting for the model before the first step.
    Starting,
    /// Ready for the next step.
    Next,
    /// Waiting for the open image (the image id before it) to be done.
    Opening(Option<u64>),
    /// Waiting for the app to settle after `what`.
    Settling(&'static str, String),
    /// Typing: the phrases still to type, and when the next key goes.
    Typing(VecDeque<String>, Instant, String),
    /// Idle until then.
    Waiting(Instant),
    /// Done.
    Finished,
}

/// Runs a script, one poll per frame.
#[derive(Debug)]
pub struct ScriptRunner {
    steps: VecDeque<Step>,
    state: State,
}

impl ScriptRunner {
    /// A runner for `steps`.
    pub fn new(steps: Vec<Step>) -> Self {
        Self {
            steps: steps.into(),
            state: State::Starting,
        }
    }

    /// True once the script has run to its end.
    pub fn finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    /// The actions due at `now`, and how soon to poll again (`None`: on the next frame the
    /// app draws anyway, after an event). Waiting for the app never asks for frames of its
    /// own: a benchmark that redrew the window 50 times per second would measure itself (on
    /// a machine without a GPU the window is drawn by the CPU, beside the model).
    pub fn poll(&mut self, now: Instant, app: ScriptView<'_>) -> (Vec<Action>, Option<Duration>) {
        let mut out = Vec::new();
        let soon = Some(Duration::from_millis(20));
        loop {
            match &mut self.state {
                State::Starting => {
                    if !app.model_settled || app.busy {
                        return (out, None);
                    }
                    out.push(Action::Mark("model_settled", String::new()));
                    self.state = State::Next;
                }
                State::Next => {
                    let Some(step) = self.steps.pop_front() else {
                        out.push(Action::Mark("finished", String::new()));
                        self.state = State::Finished;
                        return (out, None);
                    };
                    self.state = match step {
                        Step::Open(path) => {
                            out.push(Action::Mark("open", path.display().to_string()));
                            out.push(Action::Open(path));
                            State::Opening(app.image_id)
                        }
                        Step::Phrase(text) => {
                            out.push(Action::Mark("phrase", text.clone()));
                            out.push(Action::AddPhrase(text.clone()));
                            State::Settling("phrase_done", text)
                        }
                        Step::Edit(text) => {
                            let from = app.active_phrase.unwrap_or("");
                            out.push(Action::Mark("edit", text.clone()));
                            State::Typing(keystrokes(from, &text), now, text)
                        }
                        Step::Wait(d) => State::Waiting(now + d),
                        Step::Quit => {
                            out.push(Action::Mark("quit", String::new()));
                            out.push(Action::Quit);
                            self.state = State::Finished;
                            return (out, None);
                        }
                    };
                    // A new step starts on the next frame, after its commands applied.
                    return (out, soon);
                }
                State::Opening(before) => {
                    if app.image_id == *before || app.busy {
                        return (out, None);
                    }
                    out.push(Action::Mark("open_done", String::new()));
                    self.state = State::Next;
                }
                State::Settling(what, detail) => {
                    if app.busy {
                        return (out, None);
                    }
                    out.push(Action::Mark(what, std::mem::take(detail)));
                    self.state = State::Next;
                }
                State::Typing(keys, due, text) => {
                    if now < *due {
                        return (out, Some(*due - now));
                    }
                    match keys.pop_front() {
                        Some(phrase) => {
                            out.push(Action::Type(phrase));
                            *due = now + Duration::from_secs(1) / KEYS_PER_SECOND;
                            return (out, Some(Duration::from_secs(1) / KEYS_PER_SECOND));
                        }
                        None => {
                            let text = std::mem::take(text);
                            out.push(Action::Mark("edit_typed", text.clone()));
                            self.state = State::Settling("edit_done", text);
                            return (out, soon);
                        }
                    }
                }
                State::Waiting(until) => {
                    if now < *until {
                        return (out, Some(*until - now));
                    }
                    self.state = State::Next;
                }
                State::Finished => return (out, None),
            }
        }
    }
}

/// The phrase after each keystroke from `from` to `to`: backspaces down to their common
/// prefix, then one character at a time.
pub fn keystrokes(from: &str, to: &str) -> VecDeque<String> {
    let common = from
        .chars()
        .zip(to.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = VecDeque::new();
    let mut current: Vec<char> = from.chars().collect();
    while current.len() > common {
        current.pop();
        out.push_back(current.iter().collect());
    }
    for c in to.chars().skip(common) {
        current.push(c);
        out.push_back(current.iter().collect());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    fn view(busy: bool, image_id: Option<u64>, phrase: Option<&str>) -> ScriptView<'_> {
        ScriptView {
            model_settled: true,
            busy,
            image_id,
            active_phrase: phrase,
        }
    }

    #[test]
    fn scripts_parse_and_bad_lines_are_named() {
        let steps = parse_script(
            "# bench\nopen /tmp/a.png\nphrase the red hat\nedit the blue hat\nwait 1.5\nquit\n",
        )
        .unwrap();
        assert_eq!(steps.len(), 5);
        assert_eq!(steps[3], Step::Wait(Duration::from_millis(1500)));
        assert!(parse_script("jump 3").unwrap_err().contains("line 1"));
        assert!(parse_script("\nwait soon").unwrap_err().contains("line 2"));
        assert!(
            parse_script("phrase")
                .unwrap_err()
                .contains("needs a phrase")
        );
    }

    #[test]
    fn keystrokes_go_back_to_the_common_prefix_then_type() {
        let keys: Vec<String> = keystrokes("the red hat", "the rug").into();
        assert_eq!(
            keys,
            [
                "the red ha",
                "the red h",
                "the red ",
                "the red",
                "the re",
                "the r",
                "the ru",
                "the rug"
            ]
        );
        assert!(keystrokes("same", "same").is_empty());
    }

    #[test]
    fn steps_wait_for_the_app_and_typing_keeps_its_pace() {
        let steps = parse_script("open a.png\nedit ab\nquit").unwrap();
        let mut runner = ScriptRunner::new(steps);
        let t0 = Instant::now();
        let (actions, _) = runner.poll(t0, view(true, None, None));
        assert!(actions.is_empty(), "waits for the model to settle");
        let (actions, _) = runner.poll(t0, view(false, None, None));
        assert!(actions.contains(&Action::Open("a.png".into())));
        let (actions, _) = runner.poll(t0, view(true, Some(1), None));
        assert!(actions.is_empty(), "the image is not done yet");
        let (actions, _) = runner.poll(t0, view(false, Some(1), Some("")));
        assert_eq!(actions.last(), Some(&Action::Mark("edit", "ab".into())));
        let (actions, wait) = runner.poll(t0, view(false, Some(1), Some("")));
        assert_eq!(actions, vec![Action::Type("a".into())]);
        assert_eq!(wait, Some(Duration::from_millis(100)));
        let (actions, _) = runner.poll(
            t0 + Duration::from_millis(50),
            view(true, Some(1), Some("a")),
        );
        assert!(actions.is_empty(), "the next key waits its turn");
        let t1 = t0 + Duration::from_millis(100);
        let (actions, _) = runner.poll(t1, view(true, Some(1), Some("a")));
        assert_eq!(actions, vec![Action::Type("ab".into())]);
        let t2 = t1 + Duration::from_millis(100);
        let (actions, _) = runner.poll(t2, view(true, Some(1), Some("ab")));
        assert_eq!(actions, vec![Action::Mark("edit_typed", "ab".into())]);
        let (actions, _) = runner.poll(t2, view(true, Some(1), Some("ab")));
        assert!(actions.is_empty(), "waits for the mask");
        let (actions, _) = runner.poll(t2, view(false, Some(1), Some("ab")));
        assert!(actions.contains(&Action::Mark("edit_done", "ab".into())));
        assert!(actions.contains(&Action::Quit));
        assert!(runner.finished());
    }
}

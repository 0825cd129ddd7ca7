//! The app's own instrumentation (`--event-log FILE`): one JSON line per event that an artist
//! waits for, with the time since the app started and the process's memory, so latency and
//! memory are measured from the app itself rather than from screenshots
//! (`tests/tools/app_bench.sh` reads it).
//!
//! Each line: `{"t": seconds since start, "event": name, "rss_mb": …, "peak_mb": …, "frames":
//! frames drawn so far, …fields}`.
//! Events: `start`, `model_ready`, `image_opened`, `draft_pass`, `keystroke`, `preview_sent`,
//! `phrase_sent`, `mask` (draft preview or final), `cancelled`, `overlay` (a layer's canvas
//! plane replaced after a change), `script` (the bench script's steps).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use serde_json::{Map, Value, json};

use crate::runtime::process_memory;

/// Where events go (nowhere unless a file was given).
#[derive(Debug)]
pub struct EventLog {
    out: Option<BufWriter<File>>,
    start: Instant,
    frames: u64,
}

impl Default for EventLog {
    fn default() -> Self {
        Self {
            out: None,
            start: Instant::now(),
            frames: 0,
        }
    }
}

impl EventLog {
    /// A log written to `path` (created or truncated); its clock starts now.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self {
            out: Some(BufWriter::new(File::create(path)?)),
            start: Instant::now(),
            frames: 0,
        })
    }

    /// True when events are written somewhere.
    pub fn enabled(&self) -> bool {
        self.out.is_some()
    }

    /// Seconds since the log started.
    pub fn now(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    /// Records how many frames the window has drawn so far (written with every event, so the
    /// frame rate between two events can be told).
    pub fn set_frames(&mut self, frames: u64) {
        self.frames = frames;
    }

    /// Writes one event with `fields` (an object) and flushes it, so a killed app leaves
    /// every line it got to. A write error turns the log off (logged once).
    pub fn record(&mut self, event: &str, fields: Value) {
        let Some(out) = &mut self.out else {
            return;
        };
        let mut line = Map::new();
        line.insert("t".into(), json!(self.start.elapsed().as_secs_f64()));
        line.insert("event".into(), json!(event));
        if let Some(memory) = process_memory() {
            line.insert("rss_mb".into(), json!(memory.rss_mb.round()));
            line.insert("peak_mb".into(), json!(memory.peak_mb.round()));
        }
        line.insert("frames".into(), json!(self.frames));
        if let Value::Object(fields) = fields {
            line.extend(fields);
        }
        let written = serde_json::to_writer(&mut *out, &Value::Object(line))
            .map_err(std::io::Error::other)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush());
        if let Err(e) = written {
            log::error!("event log: {e}; no more events are written");
            self.out = None;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    #[test]
    fn each_event_is_one_json_line_with_time_and_fields() {
        let dir = std::env::temp_dir().join(format!("ldzmask-event-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.jsonl");
        let mut log = EventLog::create(&path).unwrap();
        log.record("start", json!({"threads": 2}));
        log.record("mask", json!({"layer": 3, "preview": true}));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event"], "start");
        assert_eq!(lines[0]["threads"], 2);
        assert_eq!(lines[1]["preview"], true);
        assert!(lines[1]["t"].as_f64().unwrap() >= lines[0]["t"].as_f64().unwrap());
        assert!(!EventLog::default().enabled());
        std::fs::remove_dir_all(dir).unwrap();
    }
}

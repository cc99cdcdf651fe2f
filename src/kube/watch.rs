//! An open watch: the chunked response of a `?watch=1` request, one JSON event per line,
//! read so that an attempt cut off in the middle of a line loses nothing.

use anyhow::{Result, anyhow};
use reqwest::Response;
use serde::Deserialize;
use serde_json::Value;

use super::resource::Status;
use crate::http_client::describe;

/// Longest line of a watch stream (one event), and longest list or object we read.
pub const EVENT_LIMIT: usize = 16 << 20;

/// One change in a watched collection.
#[derive(Debug)]
pub enum Event {
    /// ADDED or MODIFIED: the object as it is now.
    Changed(Value),
    Deleted(Value),
    /// Nothing changed for us up to this resourceVersion.
    Bookmark(String),
    /// The watch failed; a 410 means its resourceVersion has expired.
    Error(Status),
}

pub struct Watch {
    response: Response,
    /// Bytes received after the last complete line.
    buffer: Vec<u8>,
    authority: String,
}

impl Watch {
    pub fn new(response: Response, authority: &str) -> Watch {
        Watch {
            response,
            buffer: Vec::new(),
            authority: authority.to_string(),
        }
    }

    /// The next event, or None once the server has ended the watch. Safe to cancel: a
    /// line received in part is kept for the next call.
    pub async fn next(&mut self) -> Result<Option<Event>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|&byte| byte == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return self.parse(&line).map(Some);
            }
            if self.buffer.len() > EVENT_LIMIT {
                return Err(anyhow!(
                    "the API server at {} sent a watch event over {} MiB",
                    self.authority,
                    EVENT_LIMIT >> 20
                ));
            }
            match self.response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) if self.buffer.iter().all(u8::is_ascii_whitespace) => return Ok(None),
                Ok(None) => {
                    let line = std::mem::take(&mut self.buffer);
                    return self.parse(&line).map(Some);
                }
                Err(error) => {
                    return Err(anyhow!(
                        "the watch broke: {}",
                        describe(&error, &self.authority)
                    ));
                }
            }
        }
    }

    fn parse(&self, line: &[u8]) -> Result<Event> {
        parse_event(line).map_err(|why| anyhow!("the API server at {} sent {why}", self.authority))
    }
}

fn parse_event(line: &[u8]) -> Result<Event, String> {
    #[derive(Deserialize)]
    struct Raw {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        object: Value,
    }
    let raw: Raw = serde_json::from_slice(line)
        .map_err(|error| format!("a watch event that is not JSON: {error}"))?;
    Ok(match raw.kind.as_str() {
        "ADDED" | "MODIFIED" => Event::Changed(raw.object),
        "DELETED" => Event::Deleted(raw.object),
        "BOOKMARK" => Event::Bookmark(
            raw.object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        ),
        "ERROR" => Event::Error(Status::deserialize(&raw.object).unwrap_or_default()),
        other => return Err(format!("a watch event of unknown type {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_as_the_api_server_sends_them() {
        let changed = parse_event(br#"{"type":"MODIFIED","object":{"metadata":{"name":"a"}}}"#);
        assert!(matches!(changed, Ok(Event::Changed(ref o)) if o["metadata"]["name"] == "a"));
        let bookmark = parse_event(
            br#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12"}}}"#,
        );
        assert!(matches!(bookmark, Ok(Event::Bookmark(ref at)) if at == "12"));
        let gone = parse_event(
            br#"{"type":"ERROR","object":{"kind":"Status","code":410,"reason":"Expired","message":"too old"}}"#,
        );
        assert!(matches!(gone, Ok(Event::Error(ref status)) if status.code == 410));
        assert_eq!(
            parse_event(br#"{"type":"SOMETHING"}"#).err().unwrap(),
            "a watch event of unknown type \"SOMETHING\""
        );
        assert!(
            parse_event(b"{not json")
                .err()
                .unwrap()
                .starts_with("a watch event that is not JSON")
        );
    }
}

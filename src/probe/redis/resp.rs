//! RESP, as far as a readiness check speaks it: commands as arrays of bulk strings, the
//! replies read back (simple strings, errors, integers, bulk strings), and a failed
//! command in words with the error code the server began its answer with.

use std::io;

use tokio::io::{
    AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader,
};

use crate::probe::conn::Conn;
use crate::words::io_error_words;

/// Longest reply line or bulk string read; INFO replication is well under 2 KiB.
const REPLY_LIMIT: u64 = 1 << 20;

/// Why a command failed, in words, with the error code the server began its answer with
/// (`LOADING`, `WRONGPASS` …).
pub(super) struct Problem {
    pub(super) words: String,
    pub(super) code: Option<String>,
}

impl Problem {
    pub(super) fn map_words(self, map: impl FnOnce(String) -> String) -> Problem {
        Problem {
            words: map(self.words),
            ..self
        }
    }
}

/// A RESP2 reply, as far as a readiness check reads them.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    /// An array (or a RESP3 type) we do not read the elements of.
    Other(char),
}

impl Reply {
    pub(super) fn unexpected(&self, command: &str) -> Problem {
        let words = match self {
            Reply::Simple(text) => format!("unexpected answer to {command}: {text}"),
            Reply::Integer(value) => format!("unexpected answer to {command}: {value}"),
            Reply::Bulk(_) => format!("unexpected answer to {command}: a bulk string"),
            Reply::Other(kind) => {
                format!("unexpected answer to {command}: a reply of type {kind:?}")
            }
            Reply::Error(text) => {
                // The server's own words: "LOADING Redis is loading the dataset in memory".
                return Problem {
                    code: text
                        .split_whitespace()
                        .next()
                        .filter(|code| code.chars().all(|c| c.is_ascii_uppercase()))
                        .map(str::to_string),
                    words: format!("{text} (answer to {command})"),
                };
            }
        };
        Problem { words, code: None }
    }
}

pub(super) struct Session<'a> {
    pub(super) stream: BufReader<Conn>,
    pub(super) authority: &'a str,
}

impl Session<'_> {
    pub(super) async fn call(&mut self, args: &[&str], name: &str) -> Result<Reply, Problem> {
        let io_problem = |error: io::Error| Problem {
            words: format!(
                "{}: {} (waiting for the answer to {name})",
                self.authority,
                io_error_words(&error)
            ),
            code: None,
        };
        self.stream
            .write_all(&command(args))
            .await
            .map_err(io_problem)?;
        self.stream.flush().await.map_err(io_problem)?;
        read_reply(&mut self.stream).await.map_err(io_problem)
    }

    pub(super) async fn expect_ok(&mut self, args: &[&str], name: &str) -> Result<(), Problem> {
        match self.call(args, name).await? {
            Reply::Simple(ok) if ok == "OK" => Ok(()),
            other => Err(other.unexpected(name)),
        }
    }

    /// A command answered with a bulk string of text (INFO).
    pub(super) async fn text(&mut self, args: &[&str], name: &str) -> Result<String, Problem> {
        match self.call(args, name).await? {
            Reply::Bulk(Some(bytes)) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
            other => Err(other.unexpected(name)),
        }
    }
}

/// A command as a RESP array of bulk strings.
pub(super) fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out
}

async fn read_line(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<String> {
    let mut line = Vec::new();
    reader
        .take(REPLY_LIMIT)
        .read_until(b'\n', &mut line)
        .await?;
    if line.is_empty() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    if !line.ends_with(b"\r\n") {
        return Err(not_resp("a line without CRLF"));
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn not_resp(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("the server answered with {what}: is it a Redis server?"),
    )
}

async fn read_reply(reader: &mut (impl AsyncBufRead + Unpin)) -> io::Result<Reply> {
    let line = read_line(reader).await?;
    let mut chars = line.chars();
    let kind = chars.next().ok_or_else(|| not_resp("an empty line"))?;
    let rest = chars.as_str();
    Ok(match kind {
        '+' => Reply::Simple(rest.to_string()),
        '-' => Reply::Error(rest.to_string()),
        ':' => Reply::Integer(rest.parse().map_err(|_| not_resp("a bad integer"))?),
        '$' => {
            let length: i64 = rest.parse().map_err(|_| not_resp("a bad length"))?;
            if length < 0 {
                return Ok(Reply::Bulk(None));
            }
            let length = u64::try_from(length).unwrap_or(u64::MAX);
            if length > REPLY_LIMIT {
                return Err(not_resp("a string longer than 1 MiB"));
            }
            let mut bytes = vec![0; length as usize + 2];
            reader.read_exact(&mut bytes).await?;
            bytes.truncate(length as usize);
            Reply::Bulk(Some(bytes))
        }
        '*' | '_' | ',' | '#' | '%' | '~' | '>' | '(' | '!' | '=' | '|' => Reply::Other(kind),
        other => {
            let shown: String = line.chars().take(20).collect();
            return Err(not_resp(&format!("{shown:?} (first byte {other:?})")));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replies_are_read_as_resp() {
        let cases: &[(&[u8], Option<Reply>)] = &[
            (b"+PONG\r\n", Some(Reply::Simple("PONG".into()))),
            (
                b"-LOADING Redis is loading the dataset in memory\r\n",
                Some(Reply::Error(
                    "LOADING Redis is loading the dataset in memory".into(),
                )),
            ),
            (b":42\r\n", Some(Reply::Integer(42))),
            (b"$3\r\nabc\r\n", Some(Reply::Bulk(Some(b"abc".to_vec())))),
            (b"$-1\r\n", Some(Reply::Bulk(None))),
            (b"*1\r\n$1\r\na\r\n", Some(Reply::Other('*'))),
            (b"HTTP/1.1 400 Bad Request\r\n", None),
            (b"+PONG", None),
            (b"$99999999\r\n", None),
            (b"", None),
        ];
        for (input, expected) in cases {
            let mut reader = BufReader::new(*input);
            let reply = read_reply(&mut reader).await.ok();
            assert_eq!(&reply, expected, "{:?}", String::from_utf8_lossy(input));
        }
        assert_eq!(
            command(&["AUTH", "pw"]),
            b"*2\r\n$4\r\nAUTH\r\n$2\r\npw\r\n"
        );
    }
}

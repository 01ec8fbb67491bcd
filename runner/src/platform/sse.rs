//! Reading a Server-Sent Events body (the WHATWG `text/event-stream`
//! format), one event at a time, from anything buffered: the control
//! plane's `GET /v1/sessions/{id}/events` arrives here.
//!
//! The parse is the standard's: lines end in `\n`, `\r\n` or `\r`; a line
//! `field: value` (one space after the colon dropped) sets `event`, `data`
//! (lines joined by `\n`), `id` or `retry`; a line starting with `:` is a
//! comment (keep-alives); a blank line ends the event. An event without
//! data is not dispatched, and a half event when the body ends is dropped:
//! the reader resumes after the last complete one's `id`. A line or an
//! event larger than [`MAX_EVENT_BYTES`] is an error, so a broken server
//! cannot make the reader hold unbounded memory.

use std::io::BufRead;

/// Largest event (all its lines together) the reader accepts.
pub const MAX_EVENT_BYTES: usize = 4 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// Its `event:` name (`message` when none was sent).
    pub event: String,
    /// Its `data:` lines, joined by `\n`.
    pub data: String,
    /// The last `id:` the stream sent up to and including this event (what
    /// a reconnection sends as `Last-Event-ID`).
    pub id: Option<String>,
}

/// Events from a buffered body.
pub struct SseReader<R> {
    inner: R,
    /// A `\r` ended the last line: a `\n` right after it belongs to it.
    after_cr: bool,
    last_id: Option<String>,
}

impl<R: BufRead> SseReader<R> {
    /// A reader of `inner`, which must be positioned at the start of the
    /// body.
    pub fn new(inner: R) -> SseReader<R> {
        SseReader {
            inner,
            after_cr: false,
            last_id: None,
        }
    }

    /// The last `id:` seen (also of an event not dispatched).
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// The next event, `Ok(None)` when the body ended, or the read error
    /// (a dropped connection, a timeout, an oversized event).
    pub fn next_event(&mut self) -> std::io::Result<Option<SseEvent>> {
        let mut event = String::new();
        // As the standard keeps it: every data line with a `\n` after it.
        let mut data = String::new();
        let mut size = 0usize;
        loop {
            let Some(line) = self.line()? else {
                return Ok(None);
            };
            if line.is_empty() {
                if !data.is_empty() {
                    data.pop();
                    let name = if event.is_empty() {
                        "message".to_string()
                    } else {
                        std::mem::take(&mut event)
                    };
                    return Ok(Some(SseEvent {
                        event: name,
                        data: std::mem::take(&mut data),
                        id: self.last_id.clone(),
                    }));
                }
                event.clear();
                size = 0;
                continue;
            }
            size += line.len();
            if size > MAX_EVENT_BYTES {
                return Err(too_large());
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
                None => (line.as_str(), ""),
            };
            match field {
                "event" => event = value.to_string(),
                "data" => {
                    data.push_str(value);
                    data.push('\n');
                }
                // An id with a NUL is ignored, as the standard says.
                "id" if !value.contains('\0') => self.last_id = Some(value.to_string()),
                _ => {}
            }
        }
    }

    /// One line without its terminator; `None` at the end of the body (a
    /// last line without a terminator is not a line: the event is cut).
    fn line(&mut self) -> std::io::Result<Option<String>> {
        let mut bytes = Vec::new();
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                return Ok(None);
            }
            if self.after_cr {
                self.after_cr = false;
                if buf[0] == b'\n' {
                    self.inner.consume(1);
                    continue;
                }
            }
            match buf.iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    bytes.extend_from_slice(&buf[..i]);
                    self.after_cr = buf[i] == b'\r';
                    self.inner.consume(i + 1);
                    return String::from_utf8(bytes).map(Some).map_err(|_| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "the event stream is not UTF-8",
                        )
                    });
                }
                None => {
                    let n = buf.len();
                    bytes.extend_from_slice(buf);
                    self.inner.consume(n);
                    if bytes.len() > MAX_EVENT_BYTES {
                        return Err(too_large());
                    }
                }
            }
        }
    }
}

fn too_large() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("an event of the stream is larger than {MAX_EVENT_BYTES} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> Vec<SseEvent> {
        // A one-byte buffer: every line is split across reads.
        let mut r = SseReader::new(std::io::BufReader::with_capacity(1, text));
        let mut v = Vec::new();
        while let Some(e) = r.next_event().unwrap() {
            v.push(e);
        }
        v
    }

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.map(Into::into),
        }
    }

    #[test]
    fn events_ids_comments_and_multi_line_data() {
        let got = all(
            b": keep-alive\n\nid: 1\nevent: state\ndata: {\"to\":\"active\"}\n\nid:2\nevent:activity\ndata:a\ndata:\ndata: b\n\ndata: plain\n\ndata:\ndata:c\n\n",
        );
        assert_eq!(
            got,
            vec![
                ev("state", "{\"to\":\"active\"}", Some("1")),
                ev("activity", "a\n\nb", Some("2")),
                ev("message", "plain", Some("2")),
                ev("message", "\nc", Some("2")),
            ]
        );
    }

    #[test]
    fn every_line_ending_and_a_cut_off_event() {
        let got = all(b"id: 7\r\nevent: end\rdata: x\r\n\r\ndata: y\n\nevent: state\ndata: cut");
        assert_eq!(
            got,
            vec![ev("end", "x", Some("7")), ev("message", "y", Some("7"))]
        );
    }

    #[test]
    fn an_event_without_data_is_not_dispatched_but_its_id_counts() {
        let text = b"id: 3\nevent: state\n\ndata: z\n\n";
        let mut r = SseReader::new(&text[..]);
        assert_eq!(r.next_event().unwrap(), Some(ev("message", "z", Some("3"))));
        assert_eq!(r.last_id(), Some("3"));
        assert_eq!(r.next_event().unwrap(), None);
    }

    #[test]
    fn an_oversized_line_is_an_error_not_a_memory_hog() {
        let mut text = b"data: ".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_EVENT_BYTES + 10));
        let mut r = SseReader::new(&text[..]);
        let e = r.next_event().unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }
}

//! A minimal HTTP/1.1 client for a llama-server on the loopback interface:
//! GET, and POST of JSON whose answer is read as it streams in, one
//! server-sent event at a time, each with the moment it arrived (the
//! client's clock of time to first token and between tokens). One request
//! per connection (`Connection: close`); plain, `Content-Length` and
//! chunked bodies.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A whole response.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// GET `path` from 127.0.0.1:`port`, the whole exchange within `timeout`.
pub fn get(port: u16, path: &str, timeout: Duration) -> io::Result<Response> {
    let deadline = Instant::now() + timeout;
    let stream = connect(port, timeout)?;
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let (status, mut body) = send(stream, request.as_bytes(), deadline)?;
    let mut text = String::new();
    body.read_to_string(&mut text)?;
    Ok(Response { status, body: text })
}

/// POSTs `json` to `path` and hands every `data:` line of the streamed
/// answer to `on_event` with the moment it arrived; a non-event body (an
/// error's JSON) goes to `on_event` whole. Returns the status. The answer
/// must end within `timeout`; its first line may take all of it (a server
/// sends nothing, not even its headers, while it processes a long prompt),
/// and after it the answer may pause at most `stall` between two lines.
pub fn post_stream(
    port: u16,
    path: &str,
    json: &str,
    timeout: Duration,
    stall: Duration,
    mut on_event: impl FnMut(&str, Instant),
) -> io::Result<u16> {
    let deadline = Instant::now() + timeout;
    let stream = connect(port, stall.min(timeout))?;
    // The same socket: its read timeout is narrowed once the answer flows.
    let socket = stream.try_clone()?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nAccept: text/event-stream\r\n\
         Content-Length: {}\r\n\r\n{json}",
        json.len()
    );
    let (status, body) = send(stream, request.as_bytes(), deadline)?;
    let mut lines = BufReader::new(body);
    let mut line = String::new();
    let mut flowing = false;
    loop {
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the answer did not end within {} s", timeout.as_secs()),
            ));
        }
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(status);
        }
        let at = Instant::now();
        if !flowing {
            socket.set_read_timeout(Some(stall.max(Duration::from_millis(10))))?;
            flowing = true;
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if let Some(data) = text.strip_prefix("data:") {
            on_event(data.trim_start(), at);
        } else if !text.is_empty() && !text.starts_with(':') && !text.starts_with("event:") {
            on_event(text, at);
        }
    }
}

fn connect(port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&address, timeout.max(Duration::from_millis(10)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends `request`, reads the status line and headers, and returns the
/// status and a reader of the body. Every read waits at most until
/// `read_deadline` at first; the body's reads get the same bound.
fn send(
    mut stream: TcpStream,
    request: &[u8],
    read_deadline: Instant,
) -> io::Result<(u16, Box<dyn Read>)> {
    let wait = read_deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(10));
    stream.set_read_timeout(Some(wait))?;
    stream.set_write_timeout(Some(wait))?;
    stream.write_all(request)?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = parse_status(&line)?;
    let (mut chunked, mut length) = (false, None);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(bad("the answer ended inside its headers"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "transfer-encoding" && value.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if name == "content-length" {
                length = value.parse::<u64>().ok();
            }
        }
    }
    let body: Box<dyn Read> = match (chunked, length) {
        (true, _) => Box::new(Chunked::new(reader)),
        (false, Some(n)) => Box::new(reader.take(n)),
        (false, None) => Box::new(reader),
    };
    Ok((status, body))
}

fn parse_status(line: &str) -> io::Result<u16> {
    let mut words = line.split_whitespace();
    match (words.next(), words.next().and_then(|s| s.parse().ok())) {
        (Some(version), Some(status)) if version.starts_with("HTTP/1.") => Ok(status),
        _ => Err(bad(&format!(
            "not an HTTP answer: {:?}",
            line.chars().take(80).collect::<String>()
        ))),
    }
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// A chunked body (RFC 9112 §7.1), decoded.
struct Chunked<R: BufRead> {
    inner: R,
    /// Bytes left in the current chunk; `None` before the first.
    left: Option<u64>,
    done: bool,
}

impl<R: BufRead> Chunked<R> {
    fn new(inner: R) -> Self {
        Chunked {
            inner,
            left: None,
            done: false,
        }
    }

    fn next_chunk(&mut self) -> io::Result<()> {
        if self.left.is_some() {
            // The CRLF after the previous chunk's data.
            let mut crlf = String::new();
            self.inner.read_line(&mut crlf)?;
        }
        let mut size = String::new();
        if self.inner.read_line(&mut size)? == 0 {
            return Err(bad("the chunked answer ended without its last chunk"));
        }
        let hex = size.trim().split(';').next().unwrap_or("");
        let n =
            u64::from_str_radix(hex, 16).map_err(|_| bad(&format!("bad chunk size {hex:?}")))?;
        self.left = Some(n);
        if n == 0 {
            self.done = true;
        }
        Ok(())
    }
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while !self.done && self.left.unwrap_or(0) == 0 {
            self.next_chunk()?;
        }
        if self.done || buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len().min(self.left.unwrap_or(0) as usize);
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(bad("the chunked answer ended inside a chunk"));
        }
        self.left = self.left.map(|l| l - n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves one connection with `answer`, written in the pieces given.
    fn serve_once(pieces: Vec<&'static str>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            for piece in pieces {
                conn.write_all(piece.as_bytes()).unwrap();
                conn.flush().unwrap();
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        port
    }

    #[test]
    fn a_plain_answer_is_read_whole() {
        let port = serve_once(vec![
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 26\r\n\r\n",
            "{\"error\":\"loading model\"}\nEXTRA",
        ]);
        let r = get(port, "/health", Duration::from_secs(5)).unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.body, "{\"error\":\"loading model\"}\n");
    }

    #[test]
    fn streamed_events_arrive_one_by_one_across_chunk_boundaries() {
        let port = serve_once(vec![
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n",
            "f\r\ndata: {\"a\":1}\n\n\r\n",
            "5\r\ndata:\r\n",
            "9\r\n {\"b\":2}\n\r\n",
            "0\r\n\r\n",
        ]);
        let mut events = Vec::new();
        let status = post_stream(
            port,
            "/completion",
            "{}",
            Duration::from_secs(5),
            Duration::from_secs(5),
            |e, at| events.push((e.to_string(), at)),
        )
        .unwrap();
        assert_eq!(status, 200);
        let texts: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(texts, ["{\"a\":1}", "{\"b\":2}"]);
        assert!(
            events[1].1 > events[0].1,
            "each event has its own arrival time"
        );
    }

    /// Serves one connection: waits `first` before the headers and first
    /// event (a server processing a long prompt), then `events`, each after
    /// its own pause.
    fn serve_paced(first: Duration, events: Vec<(Duration, &'static str)>) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = conn.read(&mut request);
            std::thread::sleep(first);
            let head =
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: {\"t\":0}\n\n";
            if conn.write_all(head.as_bytes()).is_err() {
                return;
            }
            for (pause, event) in events {
                std::thread::sleep(pause);
                if conn.write_all(event.as_bytes()).is_err() {
                    return;
                }
            }
        });
        port
    }

    fn stream_events(port: u16, timeout: Duration, stall: Duration) -> io::Result<usize> {
        let mut n = 0;
        post_stream(port, "/completion", "{}", timeout, stall, |_, _| n += 1)?;
        Ok(n)
    }

    /// Issue 36, item 2: the first token of a long prompt may take longer
    /// than the stall limit between tokens, which applies only once the
    /// answer flows.
    #[test]
    fn the_first_token_may_take_longer_than_a_stall_but_not_a_later_one() {
        let ms = Duration::from_millis;
        let events = vec![
            (ms(20), "data: {\"t\":1}\n\n"),
            (ms(20), "data: {\"t\":2}\n\n"),
        ];
        let port = serve_paced(ms(400), events);
        assert_eq!(stream_events(port, ms(5000), ms(100)).unwrap(), 3);

        let stalled = vec![
            (ms(20), "data: {\"t\":1}\n\n"),
            (ms(600), "data: {\"t\":2}\n\n"),
        ];
        let port = serve_paced(ms(10), stalled);
        let err = stream_events(port, ms(5000), ms(100)).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err:?}"
        );

        // The whole answer is still bounded by the timeout.
        let port = serve_paced(ms(800), Vec::new());
        assert!(stream_events(port, ms(300), ms(100)).is_err());
    }

    #[test]
    fn a_server_that_never_answers_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let started = Instant::now();
        let err = get(port, "/health", Duration::from_millis(300)).unwrap_err();
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        drop(listener);
    }

    #[test]
    fn something_that_is_not_http_is_refused() {
        let port = serve_once(vec!["SSH-2.0-OpenSSH_9.2\r\n"]);
        let err = get(port, "/", Duration::from_secs(5)).unwrap_err();
        assert!(err.to_string().contains("not an HTTP answer"), "{err}");
    }
}

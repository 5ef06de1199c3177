//! The app's clients against a llama-server: requests on its native
//! `/completion`, streamed, each on its own connection (and, in a round of
//! several, its own thread, all sent at once as N users would), timed on
//! the client's clock (time to first token with content, the gap between
//! tokens, end to end) beside the server's own `timings` (prompt and
//! generation speed and, with speculative decoding, the tokens drafted and
//! accepted). A round of concurrent requests gives the aggregate throughput
//! and the goodput: requests per second that met every latency bound.

use super::http;
use crate::protocol::RequestBounds;
use crate::request::RequestTiming;
use crate::stats;
use serde_json::json;
use std::time::{Duration, Instant};

/// One request as the app sends it.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Prompt token ids (unique per request, so no prompt cache flatters
    /// the server, unless the sweep measures that cache).
    pub prompt: Vec<i32>,
    /// Tokens to generate; end of text is ignored so that every request
    /// generates them all.
    pub max_tokens: u32,
    pub temperature: f64,
    pub seed: u64,
    /// Let the server reuse a cached prefix of the prompt.
    pub cache_prompt: bool,
}

impl Request {
    fn body(&self) -> String {
        json!({
            "prompt": self.prompt,
            "n_predict": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
            "ignore_eos": true,
            "cache_prompt": self.cache_prompt,
            "stream": true,
        })
        .to_string()
    }
}

/// How long a request may take, and pause between two events.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub timeout: Duration,
    pub stall: Duration,
}

/// The server's own account of one request (its final `timings`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerTimings {
    pub prompt_n: Option<u32>,
    pub prompt_per_second: Option<f64>,
    pub predicted_n: Option<u32>,
    pub predicted_per_second: Option<f64>,
    /// Tokens the draft proposed and the target accepted; present only
    /// when something was drafted.
    pub draft_n: Option<u32>,
    pub draft_n_accepted: Option<u32>,
}

/// One answered request, on the client's clock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reply {
    /// From sending the request to the first event that carried a token.
    pub ttft_ms: f64,
    /// From sending it to the last event that carried a token.
    pub e2e_ms: f64,
    /// Between one event with a token and the next.
    pub itl_ms: Vec<f64>,
    /// Events that carried a token.
    pub token_events: u32,
    /// When the first and the last token arrived.
    pub first_token: Option<Instant>,
    pub last_token: Option<Instant>,
    pub server: ServerTimings,
}

impl Reply {
    /// Tokens generated: the server's count where it gave one (with
    /// speculation one event can carry several tokens).
    pub fn tokens(&self) -> u32 {
        self.server.predicted_n.unwrap_or(self.token_events)
    }

    /// The request's timing on the client's clock, as `crate::request`
    /// defines its figures.
    pub fn timing(&self) -> RequestTiming {
        RequestTiming {
            ttft_ms: self.ttft_ms,
            last_token_ms: self.e2e_ms,
            tokens: self.tokens(),
        }
    }

    /// The request's generation speed on the client's clock (1000 / its
    /// time per output token after the first).
    pub fn gen_tps(&self) -> Option<f64> {
        self.timing().tps()
    }
}

/// Sends `request` and reads its answer to the end. `Err` is one line: the
/// connection failed or stalled, or the server answered with an error or
/// without a token.
pub fn complete(port: u16, request: &Request, limits: Limits) -> Result<Reply, String> {
    let mut reply = Reply::default();
    let mut error = None;
    let sent = Instant::now();
    let status = http::post_stream(
        port,
        "/completion",
        &request.body(),
        limits.timeout,
        limits.stall,
        |event, at| {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(event) else {
                return;
            };
            if let Some(e) = value.get("error") {
                error = Some(
                    e.get("message")
                        .and_then(|m| m.as_str())
                        .map_or_else(|| e.to_string(), str::to_string),
                );
                return;
            }
            let content = value.get("content").and_then(|c| c.as_str()).unwrap_or("");
            let stop = value.get("stop").and_then(|s| s.as_bool()).unwrap_or(false);
            if !stop || !content.is_empty() {
                // An event that carries a token (its text may be held back
                // until a character is whole: the count is the server's).
                reply.token_events += 1;
                let since_sent = at.duration_since(sent).as_secs_f64() * 1000.0;
                match reply.last_token {
                    Some(previous) => reply
                        .itl_ms
                        .push(at.duration_since(previous).as_secs_f64() * 1000.0),
                    None => {
                        reply.first_token = Some(at);
                        reply.ttft_ms = since_sent;
                    }
                }
                reply.last_token = Some(at);
                reply.e2e_ms = since_sent;
            }
            if let Some(t) = value.get("timings") {
                reply.server = server_timings(t);
            }
        },
    )
    .map_err(|e| format!("llama-server stopped answering: {e}"))?;
    if status != 200 || error.is_some() {
        return Err(format!(
            "llama-server refused the request ({status}): {}",
            error.unwrap_or_else(|| "no reason given".into())
        ));
    }
    if reply.token_events == 0 {
        return Err("llama-server streamed no token".into());
    }
    Ok(reply)
}

/// The server's tokens for `text` (its `/tokenize`): prompts of real text
/// cut to an exact length by the model's own tokenizer.
pub fn tokenize(port: u16, text: &str, limits: Limits) -> Result<Vec<i32>, String> {
    let mut body = String::new();
    let status = http::post_stream(
        port,
        "/tokenize",
        &json!({ "content": text }).to_string(),
        limits.timeout,
        limits.stall,
        |line, _| body.push_str(line),
    )
    .map_err(|e| format!("llama-server stopped answering /tokenize: {e}"))?;
    let value: serde_json::Value = serde_json::from_str(&body)
        .map_err(|_| format!("llama-server's /tokenize answered {status}: {body}"))?;
    value
        .get("tokens")
        .and_then(|t| t.as_array())
        .map(|tokens| {
            tokens
                .iter()
                .filter_map(|t| t.as_i64().map(|t| t as i32))
                .collect()
        })
        .ok_or_else(|| format!("llama-server's /tokenize answered {status} without tokens: {body}"))
}

fn server_timings(t: &serde_json::Value) -> ServerTimings {
    let count = |name: &str| t.get(name).and_then(|v| v.as_u64()).map(|v| v as u32);
    let rate = |name: &str| t.get(name).and_then(|v| v.as_f64());
    ServerTimings {
        prompt_n: count("prompt_n"),
        prompt_per_second: rate("prompt_per_second"),
        predicted_n: count("predicted_n"),
        predicted_per_second: rate("predicted_per_second"),
        draft_n: count("draft_n"),
        draft_n_accepted: count("draft_n_accepted"),
    }
}

/// Requests sent at once, each by its own client, and what they got.
#[derive(Debug, Clone, PartialEq)]
pub struct Round {
    pub replies: Vec<Reply>,
    /// From sending the first request to the end of the last answer.
    pub wall_ms: f64,
}

/// Sends all `requests` at once, one thread each, and waits for every
/// answer. `Err` names the first request that failed.
pub fn round(port: u16, requests: &[Request], limits: Limits) -> Result<Round, String> {
    let started = Instant::now();
    let answers: Vec<Result<Reply, String>> = std::thread::scope(|scope| {
        let clients: Vec<_> = requests
            .iter()
            .map(|r| scope.spawn(move || complete(port, r, limits)))
            .collect();
        clients
            .into_iter()
            .map(|c| {
                c.join()
                    .unwrap_or_else(|_| Err("a client thread panicked".into()))
            })
            .collect()
    });
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut replies = Vec::with_capacity(answers.len());
    for (i, answer) in answers.into_iter().enumerate() {
        match answer {
            Ok(reply) => replies.push(reply),
            Err(why) if requests.len() > 1 => {
                return Err(format!("request {} of {}: {why}", i + 1, requests.len()));
            }
            Err(why) => return Err(why),
        }
    }
    Ok(Round { replies, wall_ms })
}

impl Round {
    /// Tokens all clients got per second while they were generating, as
    /// llama-batched-bench's S_TG: the tokens after each request's first,
    /// over the time from the first of the first tokens to the last token.
    /// (The in-process child's aggregate is its sequences' speed times
    /// their count, the same quantity.)
    pub fn aggregate_tps(&self) -> Option<f64> {
        let first = self.replies.iter().filter_map(|r| r.first_token).min()?;
        let last = self.replies.iter().filter_map(|r| r.last_token).max()?;
        let tokens: u32 = self
            .replies
            .iter()
            .map(|r| r.tokens().saturating_sub(1))
            .sum();
        let span = last.duration_since(first).as_secs_f64();
        (span > 0.0 && tokens > 0).then(|| f64::from(tokens) / span)
    }

    /// Drafted tokens the target accepted, over all requests; `None` when
    /// nothing was drafted (no speculative decoding, or it was refused).
    pub fn acceptance(&self) -> Option<f64> {
        let (mut drafted, mut accepted) = (0u64, 0u64);
        for r in &self.replies {
            drafted += u64::from(r.server.draft_n.unwrap_or(0));
            accepted += u64::from(r.server.draft_n_accepted.unwrap_or(0));
        }
        (drafted > 0).then(|| accepted as f64 / drafted as f64)
    }

    /// Requests per second that met every one of `bounds`.
    pub fn goodput_within(&self, bounds: &RequestBounds) -> f64 {
        self.goodput(|r| {
            let within = |value: Option<f64>, bound: Option<f64>| {
                bound.is_none_or(|b| value.is_some_and(|v| v <= b))
            };
            within(Some(r.ttft_ms), bounds.ttft_ms)
                && within(Some(r.e2e_ms), bounds.e2e_ms)
                && within(
                    stats::quantile(&r.itl_ms, 0.95).or(Some(0.0)),
                    bounds.itl_ms,
                )
        })
    }

    /// Requests per second that met every bound: `meets` says which did.
    pub fn goodput(&self, meets: impl Fn(&Reply) -> bool) -> f64 {
        let good = self.replies.iter().filter(|r| meets(r)).count();
        if self.wall_ms > 0.0 {
            good as f64 / (self.wall_ms / 1000.0)
        } else {
            0.0
        }
    }

    /// The `q` quantile (0.5: median, 0.95: p95) of a figure of the
    /// round's replies.
    pub fn quantile(&self, q: f64, figure: impl Fn(&Reply) -> Option<f64>) -> Option<f64> {
        let values: Vec<f64> = self.replies.iter().filter_map(figure).collect();
        stats::quantile(&values, q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A llama-server's streamed answer to one request: `tokens` events of
    /// one token each, `gap` apart, then the final event with its timings.
    fn answer(tokens: u32, drafted: Option<(u32, u32)>) -> Vec<String> {
        let mut events =
            vec!["HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n".to_string()];
        for i in 0..tokens {
            events.push(format!("data: {{\"content\":\"t{i}\",\"stop\":false}}\n\n"));
        }
        let draft = drafted
            .map(|(n, ok)| format!(",\"draft_n\":{n},\"draft_n_accepted\":{ok}"))
            .unwrap_or_default();
        events.push(format!(
            "data: {{\"content\":\"\",\"stop\":true,\"timings\":{{\"prompt_n\":8,\"prompt_per_second\":400.0,\"predicted_n\":{tokens},\"predicted_per_second\":50.0{draft}}}}}\n\n"
        ));
        events
    }

    /// Serves `connections` requests, each answered with `events` written
    /// `gap` apart, after reading the request's headers.
    fn serve(connections: usize, events: Vec<String>, gap: Duration) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut handlers = Vec::new();
            for _ in 0..connections {
                let (mut conn, _) = listener.accept().unwrap();
                let events = events.clone();
                handlers.push(std::thread::spawn(move || {
                    let mut request = [0u8; 8192];
                    let _ = conn.read(&mut request);
                    for e in events {
                        conn.write_all(e.as_bytes()).unwrap();
                        conn.flush().unwrap();
                        std::thread::sleep(gap);
                    }
                }));
            }
            for h in handlers {
                let _ = h.join();
            }
        });
        port
    }

    fn request() -> Request {
        Request {
            prompt: vec![1, 2, 3],
            max_tokens: 4,
            temperature: 0.0,
            seed: 1,
            cache_prompt: false,
        }
    }

    const LIMITS: Limits = Limits {
        timeout: Duration::from_secs(10),
        stall: Duration::from_secs(5),
    };

    #[test]
    fn a_streamed_answer_gives_client_and_server_timings() {
        let port = serve(1, answer(4, Some((6, 3))), Duration::from_millis(30));
        let reply = complete(port, &request(), LIMITS).unwrap();
        assert_eq!(reply.token_events, 4);
        assert_eq!(reply.tokens(), 4);
        assert_eq!(reply.itl_ms.len(), 3);
        assert!(
            reply.ttft_ms > 0.0 && reply.ttft_ms <= reply.e2e_ms,
            "{reply:?}"
        );
        assert_eq!(reply.server.prompt_per_second, Some(400.0));
        assert_eq!(
            (reply.server.draft_n, reply.server.draft_n_accepted),
            (Some(6), Some(3))
        );
        // Three gaps of about 30 ms between four tokens.
        let tps = reply.gen_tps().unwrap();
        assert!(tps > 0.0 && tps < 100.0, "{tps}");
    }

    #[test]
    fn a_round_of_concurrent_clients_counts_every_token_and_the_acceptance() {
        let port = serve(3, answer(4, Some((10, 4))), Duration::from_millis(10));
        let requests = vec![request(); 3];
        let round = round(port, &requests, LIMITS).unwrap();
        assert_eq!(round.replies.len(), 3);
        // Three clients generating at once: about three times one's speed.
        let aggregate = round.aggregate_tps().unwrap();
        let one = round.replies[0].gen_tps().unwrap();
        assert!(
            aggregate > 2.0 * one && aggregate < 4.0 * one,
            "{aggregate} {one}"
        );
        assert_eq!(round.acceptance(), Some(0.4));
        assert_eq!(round.goodput(|_| false), 0.0);
        let all = round.goodput(|_| true);
        assert!((all - 3.0 / (round.wall_ms / 1000.0)).abs() < 1e-9);
        assert!(round.quantile(0.5, |r| Some(r.ttft_ms)).is_some());
    }

    /// Issue 36, item 10: tokens whose text is empty (a control token, or
    /// text held back until a character is whole) are tokens: the first one
    /// is the time to first token, on the same event as the first token's
    /// arrival, never 0 (which would pass every latency bound).
    #[test]
    fn a_reply_of_tokens_without_text_has_a_time_to_first_token() {
        let events = vec![
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n".to_string(),
            "data: {\"content\":\"\",\"stop\":false}\n\n".to_string(),
            "data: {\"content\":\"\",\"stop\":false}\n\n".to_string(),
            "data: {\"content\":\"\",\"stop\":false}\n\n".to_string(),
            "data: {\"content\":\"\",\"stop\":true,\"timings\":{\"predicted_n\":3}}\n\n"
                .to_string(),
        ];
        let port = serve(1, events, Duration::from_millis(30));
        let reply = complete(port, &request(), LIMITS).unwrap();
        assert_eq!(reply.token_events, 3);
        assert!(reply.ttft_ms >= 25.0, "{reply:?}");
        assert!(reply.e2e_ms > reply.ttft_ms + 40.0, "{reply:?}");
        assert_eq!(reply.itl_ms.len(), 2);
        let bounds = RequestBounds {
            ttft_ms: Some(1.0),
            ..Default::default()
        };
        let round = Round {
            replies: vec![reply],
            wall_ms: 100.0,
        };
        assert_eq!(round.goodput_within(&bounds), 0.0, "it missed a 1 ms bound");
    }

    #[test]
    fn without_a_draft_there_is_no_acceptance_rate() {
        let port = serve(1, answer(2, None), Duration::from_millis(5));
        let round = round(port, &[request()], LIMITS).unwrap();
        assert_eq!(round.acceptance(), None);
    }

    #[test]
    fn an_error_answer_and_a_silent_answer_are_reasons() {
        let body = "{\"error\":{\"message\":\"prompt is too long\"}}\n";
        let refused = vec![
            format!(
                "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ),
            body.to_string(),
        ];
        let port = serve(1, refused, Duration::from_millis(5));
        let err = complete(port, &request(), LIMITS).unwrap_err();
        assert!(err.contains("(400): prompt is too long"), "{err}");
        let silent = vec!["HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_string()];
        let port = serve(1, silent, Duration::from_millis(5));
        let err = complete(port, &request(), LIMITS).unwrap_err();
        assert!(err.contains("no token"), "{err}");
        let port = serve(2, answer(2, None), Duration::from_millis(5));
        let mut two = vec![request(); 2];
        two[1].max_tokens = 2;
        assert!(round(port, &two, LIMITS).is_ok());
    }
}

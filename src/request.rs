//! The app's request, measured: its figures defined once, for every runtime
//! that times one (llama-sweep's own child, the clients of a llama-server,
//! llama-cpp-python in verify). The names are those of vLLM's serving
//! benchmark and llama-server's `timings`:
//!
//! - time to first token (TTFT): from sending the request (the round's
//!   start, for requests that arrive together) to its first generated token;
//! - time per output token (TPOT): the time after the first token over the
//!   tokens after the first, `(e2e − ttft) / (tokens − 1)`, per request;
//! - the request's generation speed, `request_tps = 1000 / TPOT`: what
//!   llama-server reports as `predicted_per_second`, and what a user who
//!   says "my app generates 6.56 t/s" has measured;
//! - inter-token latency (ITL): every gap between two tokens of a request;
//! - end to end (e2e): from sending the request to its last token;
//! - output throughput (`output_tps`): every request's tokens over the
//!   round, from the first request sent to the last token received.
//!
//! A round is one repetition: the n_parallel requests sent together. Its
//! TPOT is the mean of its requests' (those that generated two tokens or
//! more), and its `request_tps` the inverse of that mean, so that the two
//! always agree. llama-bench's `tg` (tokens decoded into an empty cache) is
//! a kernel benchmark, not a request: it is kept as a column, for parity
//! with llama.cpp's own tools.

/// One request as a runtime timed it, in ms from when it was sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequestTiming {
    /// To its first generated token.
    pub ttft_ms: f64,
    /// To its last generated token.
    pub last_token_ms: f64,
    /// Tokens it generated.
    pub tokens: u32,
}

impl RequestTiming {
    /// Time per output token after the first, ms; `None` for a request
    /// that generated fewer than two tokens.
    pub fn tpot_ms(&self) -> Option<f64> {
        let span = self.last_token_ms - self.ttft_ms;
        (self.tokens > 1 && span > 0.0).then(|| span / f64::from(self.tokens - 1))
    }

    /// The request's generation speed, tokens/s: 1000 / TPOT.
    pub fn tps(&self) -> Option<f64> {
        self.tpot_ms().map(|tpot| 1000.0 / tpot)
    }
}

/// One round's figures: the requests sent together in one repetition.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundFigures {
    /// Each request's time to first token, in the order given.
    pub ttft_ms: Vec<f64>,
    /// The mean of the requests' TPOT, ms (`None`: none generated two
    /// tokens).
    pub tpot_ms: Option<f64>,
    /// 1000 / `tpot_ms`, tokens/s.
    pub request_tps: Option<f64>,
    /// The mean of the requests' end to end, ms.
    pub e2e_ms: Option<f64>,
    /// Every request's tokens over the time to the round's last token,
    /// tokens/s.
    pub output_tps: Option<f64>,
}

/// The figures of a round of `requests`.
pub fn round(requests: &[RequestTiming]) -> RoundFigures {
    let tpot_ms = mean(requests.iter().filter_map(RequestTiming::tpot_ms));
    let last = requests
        .iter()
        .map(|r| r.last_token_ms)
        .fold(None, |max: Option<f64>, t| {
            Some(max.map_or(t, |m| m.max(t)))
        });
    let tokens: u32 = requests.iter().map(|r| r.tokens).sum();
    RoundFigures {
        ttft_ms: requests.iter().map(|r| r.ttft_ms).collect(),
        tpot_ms,
        request_tps: tpot_ms.map(|t| 1000.0 / t),
        e2e_ms: mean(requests.iter().map(|r| r.last_token_ms)),
        output_tps: last
            .filter(|&l| l > 0.0 && tokens > 0)
            .map(|l| f64::from(tokens) / (l / 1000.0)),
    }
}

/// Each repetition's time per output token, ms, from its request
/// generation speed (one is the other's inverse).
pub fn tpot_ms_of(request_tps: &[f64]) -> Vec<f64> {
    request_tps
        .iter()
        .filter(|&&r| r > 0.0)
        .map(|r| 1000.0 / r)
        .collect()
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    fn request(ttft_ms: f64, last_token_ms: f64, tokens: u32) -> RequestTiming {
        RequestTiming {
            ttft_ms,
            last_token_ms,
            tokens,
        }
    }

    /// Recorded token times of one request: the first at 939 ms, then 63
    /// more, 18 ms apart (the quick start's request of 256 + 64 tokens).
    #[test]
    fn one_request_from_its_token_times() {
        let times: Vec<f64> = (0..64).map(|i| 939.0 + 18.0 * f64::from(i)).collect();
        let r = request(times[0], *times.last().unwrap(), times.len() as u32);
        assert!(close(r.tpot_ms().unwrap(), 18.0));
        assert!(close(r.tps().unwrap(), 1000.0 / 18.0));
        let f = round(&[r]);
        assert_eq!(f.ttft_ms, [939.0]);
        assert!(close(f.request_tps.unwrap(), 1000.0 / 18.0));
        assert!(close(f.e2e_ms.unwrap(), 939.0 + 63.0 * 18.0));
        // 64 tokens in 2073 ms.
        assert!(close(f.output_tps.unwrap(), 64.0 / 2.073));
    }

    /// Two users at once: the second waits for the first's prompt, then
    /// both generate in the same batches.
    #[test]
    fn two_requests_at_once_are_per_request_and_aggregate() {
        let a = request(100.0, 100.0 + 9.0 * 20.0, 10);
        let b = request(200.0, 200.0 + 9.0 * 30.0, 10);
        let f = round(&[a, b]);
        assert_eq!(f.ttft_ms, [100.0, 200.0]);
        // TPOT 20 and 30 ms: a mean of 25 ms, 40 t/s per request.
        assert!(close(f.tpot_ms.unwrap(), 25.0));
        assert!(close(f.request_tps.unwrap(), 40.0));
        assert!(close(f.e2e_ms.unwrap(), (280.0 + 470.0) / 2.0));
        // 20 tokens by the last one's 470 ms.
        assert!(close(f.output_tps.unwrap(), 20.0 / 0.47));
    }

    /// A request that ends at its first token (end of text, or a one-token
    /// answer) has no TPOT; it still counts in e2e and the throughput.
    #[test]
    fn a_request_that_ends_early_has_no_time_per_token() {
        let short = request(100.0, 100.0, 1);
        assert_eq!(short.tpot_ms(), None);
        assert_eq!(short.tps(), None);
        let f = round(&[short, request(150.0, 150.0 + 4.0 * 10.0, 5)]);
        assert!(close(f.tpot_ms.unwrap(), 10.0));
        assert!(close(f.request_tps.unwrap(), 100.0));
        assert!(close(f.output_tps.unwrap(), 6.0 / 0.19));
        let alone = round(&[short]);
        assert_eq!((alone.tpot_ms, alone.request_tps), (None, None));
        assert!(close(alone.output_tps.unwrap(), 10.0));
        let none = round(&[]);
        assert_eq!((none.e2e_ms, none.output_tps), (None, None));
    }
}

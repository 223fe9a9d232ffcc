//! The assistant's Prometheus metrics: per-turn latency histograms and call counters, served
//! as text on the HTTP port's `/metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Buckets for turn latencies, in seconds (20 ms to 10 s).
const LATENCY_BUCKETS: &[f64] = &[
    0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
];

/// Every metric the assistant keeps.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Seconds from the end of the caller's speech to each stage of the turn
    /// (`stage` = endpoint, transcript, decision, first_audio).
    pub turn_seconds: HistogramVec,
    /// Calls started.
    pub calls: IntCounter,
    /// Calls in progress.
    pub active_calls: IntGauge,
    /// Transcriptions run (`kind` = turn, speculative, recording).
    pub transcriptions: IntCounterVec,
    /// Speculative transcripts used vs discarded (`outcome` = used, discarded).
    pub speculative: IntCounterVec,
    /// Turns ended early because the words already completed the menu.
    pub early_ends: IntCounter,
    /// Times a caller talked over a prompt.
    pub barge_ins: IntCounter,
    /// Cases filed.
    pub cases_filed: IntCounter,
    /// Streams ended with an error status (`code`).
    pub stream_errors: IntCounterVec,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("ivr".into()), None).unwrap_or_else(|_| Registry::new());
        let turn_seconds = HistogramVec::new(
            HistogramOpts::new(
                "turn_seconds",
                "Seconds from the end of the caller's speech to each stage of the turn",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["stage"],
        )
        .expect("static histogram options are valid");
        let calls = IntCounter::new("calls_total", "Calls started").expect("valid");
        let active_calls = IntGauge::new("active_calls", "Calls in progress").expect("valid");
        let transcriptions = IntCounterVec::new(
            Opts::new("transcriptions_total", "Transcriptions run"),
            &["kind"],
        )
        .expect("valid");
        let speculative = IntCounterVec::new(
            Opts::new(
                "speculative_transcripts_total",
                "Speculative transcripts started at a pause, by what became of them",
            ),
            &["outcome"],
        )
        .expect("valid");
        let early_ends = IntCounter::new(
            "early_turn_ends_total",
            "Turns ended before the end silence because the words completed the menu",
        )
        .expect("valid");
        let barge_ins = IntCounter::new("barge_ins_total", "Times a caller talked over a prompt")
            .expect("valid");
        let cases_filed = IntCounter::new("cases_filed_total", "Cases filed").expect("valid");
        let stream_errors = IntCounterVec::new(
            Opts::new(
                "stream_errors_total",
                "Converse streams ended with an error",
            ),
            &["code"],
        )
        .expect("valid");
        let m = Metrics {
            registry,
            turn_seconds,
            calls,
            active_calls,
            transcriptions,
            speculative,
            early_ends,
            barge_ins,
            cases_filed,
            stream_errors,
        };
        for c in [
            Box::new(m.turn_seconds.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.calls.clone()),
            Box::new(m.active_calls.clone()),
            Box::new(m.transcriptions.clone()),
            Box::new(m.speculative.clone()),
            Box::new(m.early_ends.clone()),
            Box::new(m.barge_ins.clone()),
            Box::new(m.cases_filed.clone()),
            Box::new(m.stream_errors.clone()),
        ] {
            // Names are distinct constants: registration cannot collide.
            let _ = m.registry.register(c);
        }
        m
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_latency_is_exposed_as_a_histogram() {
        let m = Metrics::new();
        m.turn_seconds
            .with_label_values(&["first_audio"])
            .observe(0.42);
        m.calls.inc();
        let text = m.render();
        assert!(
            text.contains("ivr_turn_seconds_bucket{stage=\"first_audio\",le=\"0.5\"} 1"),
            "{text}"
        );
        assert!(text.contains("ivr_calls_total 1"));
    }
}

//! The mock upstream the bench sends its load to, directly and through the gateway.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tollgate_testkit::{Answer, Gate, Pace, Recording, Reply, Stream, Upstream, anthropic, openai};

/// The test kit's mock upstream, on whatever runtime calls this: OpenAI's chat completions and
/// Anthropic's Messages, each answer rendered once and every event its own body frame, as a
/// real upstream writes them. What a chat stream's request body says steers it (the gateway
/// forwards unknown fields): `bench_hold: true` holds it after its first chunk while `gate` is
/// closed, `bench_pace_ms` paces its chunks. It records nothing: a log would only grow.
pub async fn start_upstream(chunks: usize, gate: Arc<Gate>) -> SocketAddr {
    let answer = |model: &str, completion: usize| Answer {
        model: model.to_owned(),
        text: "Hello there, this is a benchmark answer.".to_owned(),
        pieces: (0..chunks).map(|i| format!("tok{i} ")).collect(),
        tool: None,
        usage: Some(tollgate_testkit::Usage::new(12, completion as u64)),
    };
    let frames =
        |frames: Vec<String>| -> Vec<Bytes> { frames.into_iter().map(Bytes::from).collect() };
    let completion = Bytes::from(openai::chat(&answer("real-model", 9)).to_string());
    // With the usage chunk, asked for or not.
    let completion_events = frames(openai::chat_stream(&answer("real-model", chunks)).whole());
    let message = Bytes::from(anthropic::message(&answer("real-claude", 9)).to_string());
    let mut events = anthropic::events(&answer("real-claude", chunks));
    // Without the kit's ping, as this bench's Anthropic streams always were.
    events
        .head
        .retain(|event| !event.starts_with("event: ping"));
    let message_events = frames(events.whole());

    let upstream = Upstream::serve(Recording::Off, move |request| {
        let streaming = request.body["stream"] == true;
        if request.path == "/v1/messages" {
            return match streaming {
                false => Reply::body(200, message.clone()),
                true => Reply::Stream(Stream::sse(message_events.iter().cloned())),
            };
        }
        if !streaming {
            return Reply::body(200, completion.clone());
        }
        let pace = if request.body["bench_hold"] == true {
            Pace::Held(gate.clone())
        } else if let Some(ms) = request.body["bench_pace_ms"].as_u64() {
            Pace::Between(Duration::from_millis(ms))
        } else {
            Pace::Free
        };
        Reply::Stream(Stream::sse(completion_events.iter().cloned()).paced(pace))
    })
    .await;
    upstream.addr()
}

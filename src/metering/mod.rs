//! Metering: what a request cost, recorded once and never lost.
//!
//! - [`event`]: the [`UsageEvent`] and the builder the data plane calls when a request ends.
//! - [`tally`]: the [`Tally`] of requests, tokens and cost that events carry and sums are.
//! - [`price`]: config prices as integers; [`cost`] in micro-dollars.
//! - [`tokenizer`]: estimates when an upstream reports no usage.
//! - [`outcome`]: how a routed request ended, and the request log line.
//! - [`writer`] and [`spill`]: the batch writer behind [`UsageRecorder::record`].

pub mod delivered;
pub mod event;
mod journal;
mod observed;
pub mod outcome;
mod pieces;
pub mod price;
pub mod spill;
pub mod tally;
pub mod tokenizer;
mod vocabulary;
pub mod writer;

pub use event::UsageEvent;
pub use outcome::{Billed, Books, Ending, Endpoint, Meter, Prompt, RequestOutcome, record};
pub use price::{Price, PriceBook, cost};
pub use tally::Tally;
pub use writer::{UsageRecorder, UsageWriter, WriterError, WriterHandle};

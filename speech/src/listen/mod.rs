//! Listening (in progress).

use std::time::Duration;

use crate::{Pcm, Result};

/// Placeholder gate until the VAD lands: energy above -45 dBFS for `min_speech`.
pub fn contains_speech(pcm: &Pcm, min_speech: Duration) -> Result<bool> {
    let frame = pcm.rate().samples_in(Duration::from_millis(16)).max(1);
    let loud = pcm
        .samples()
        .chunks(frame)
        .filter(|c| {
            let e: f32 = c.iter().map(|s| s * s).sum::<f32>() / c.len() as f32;
            e.sqrt() > 0.0056
        })
        .count();
    Ok(pcm.rate().duration_of(loud * frame) >= min_speech)
}

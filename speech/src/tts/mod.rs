//! Speaking (in progress): the speech markup shared by the verbalizer and the synthesizers.

use std::time::Duration;

/// A piece of what is to be spoken: words, or a pause between them.
///
/// The verbalizer produces these (for example a case number read in groups with pauses), the
/// synthesizers consume them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Segment {
    /// Words to speak, already verbalized (no digits left to interpret).
    Text(String),
    /// Silence of this length.
    Pause(Duration),
}

/// How fast to speak. Seniors and callers on poor lines ask for slower speech ("8" / "slower").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SpeechRate {
    /// The voice's natural pace.
    #[default]
    Normal,
    /// About 20 % slower.
    Slow,
    /// About 40 % slower.
    Slower,
}

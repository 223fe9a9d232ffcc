//! Robot call scripts: what the robot caller says, keys and expects, one command a line.
//!
//! ```text
//! # a complaint, by voice
//! wait-prompt
//! expect thank you for calling
//! say I want to file a complaint
//! expect complaint
//! key 2
//! silence 1.5
//! play recordings/address.wav
//! expect-transfer sip:operators@
//! hangup
//! ```
//!
//! Blank lines and lines starting with `#` are ignored (a `#` inside a line is text: `key #`
//! keys the hash). The commands:
//!
//! | command | argument |
//! |---|---|
//! | `say TEXT` | words to speak (numbers are read out by the verbalizer) |
//! | `play FILE.wav` | a WAV file, relative to the script's directory |
//! | `key DIGITS` | keypad keys `0-9 * #`, spaces between them allowed |
//! | `silence SECONDS` | how long to say nothing (decimal, more than 0, at most 600) |
//! | `wait-prompt` | none |
//! | `expect REGEX` | a regular expression, matched case-insensitively |
//! | `expect-transfer [REGEX]` | optional: the transfer target must match it |
//! | `hangup` | none; nothing may follow it |
//!
//! [`Script::parse`] reads the whole script and reports every problem at once, each as
//! `origin:line: message` ([`ScriptError`]). Parsing does no IO; [`Script::load`] reads the
//! file and resolves `play` paths against its directory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use regex::{Regex, RegexBuilder};

/// The longest `silence` a script may ask for.
pub const MAX_SILENCE: Duration = Duration::from_secs(600);

/// A parsed script.
#[derive(Clone, Debug)]
pub struct Script {
    /// Where the script came from (its path), for messages.
    pub origin: String,
    /// The commands, in order.
    pub steps: Vec<Step>,
}

/// One command of a script with the line it is on.
#[derive(Clone, Debug)]
pub struct Step {
    /// 1-based line number.
    pub line: usize,
    /// The command.
    pub command: Command,
}

/// A script command.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Command {
    /// Speak these words.
    Say(String),
    /// Play this WAV file.
    Play(PathBuf),
    /// Press these keys, one after another.
    Key(String),
    /// Say nothing for this long.
    Silence(Duration),
    /// Wait until the assistant has spoken and stopped.
    WaitPrompt,
    /// Wait until the prompts since the previous `expect` match.
    Expect(Regex),
    /// Wait for a transfer, optionally to a matching target.
    ExpectTransfer(Option<Regex>),
    /// Hang up and wait for the call to end.
    Hangup,
}

impl fmt::Display for Command {
    /// The command as it would be written in a script.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Say(text) => write!(f, "say {text}"),
            Command::Play(path) => write!(f, "play {}", path.display()),
            Command::Key(keys) => write!(f, "key {keys}"),
            Command::Silence(d) => write!(f, "silence {}", d.as_secs_f64()),
            Command::WaitPrompt => f.write_str("wait-prompt"),
            Command::Expect(re) => write!(f, "expect {}", re.as_str()),
            Command::ExpectTransfer(None) => f.write_str("expect-transfer"),
            Command::ExpectTransfer(Some(re)) => write!(f, "expect-transfer {}", re.as_str()),
            Command::Hangup => f.write_str("hangup"),
        }
    }
}

/// Everything wrong with a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    /// The problems, in line order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ScriptError {}

/// One problem in a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The script's origin.
    pub origin: String,
    /// 1-based line number (0 for the script as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.origin, self.line, self.message)
    }
}

impl Script {
    /// Reads and parses the script at `path`; relative `play` paths are resolved against the
    /// script's directory.
    pub fn load(path: &Path) -> Result<Script, ScriptError> {
        let origin = path.display().to_string();
        let src = std::fs::read_to_string(path).map_err(|e| ScriptError {
            problems: vec![Problem {
                origin: origin.clone(),
                line: 0,
                message: format!("cannot read the script: {e}"),
            }],
        })?;
        let mut script = Script::parse(&src, &origin)?;
        if let Some(dir) = path.parent() {
            for step in &mut script.steps {
                if let Command::Play(file) = &mut step.command {
                    if file.is_relative() {
                        *file = dir.join(&*file);
                    }
                }
            }
        }
        Ok(script)
    }

    /// Parses a script; `origin` names it in problems.
    pub fn parse(src: &str, origin: &str) -> Result<Script, ScriptError> {
        let mut steps = Vec::new();
        let mut problems = Vec::new();
        let mut hangup_line = None;
        for (i, raw) in src.lines().enumerate() {
            let line = i + 1;
            let text = raw.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            let problem = |message: String| Problem {
                origin: origin.to_owned(),
                line,
                message,
            };
            if let Some(at) = hangup_line {
                problems.push(problem(format!(
                    "nothing can follow `hangup` (line {at}): the call is over"
                )));
                continue;
            }
            match parse_command(text) {
                Ok(command) => {
                    if matches!(command, Command::Hangup) {
                        hangup_line = Some(line);
                    }
                    steps.push(Step { line, command });
                }
                Err(message) => problems.push(problem(message)),
            }
        }
        if steps.is_empty() && problems.is_empty() {
            problems.push(Problem {
                origin: origin.to_owned(),
                line: 0,
                message: "the script has no commands".into(),
            });
        }
        if problems.is_empty() {
            Ok(Script {
                origin: origin.to_owned(),
                steps,
            })
        } else {
            Err(ScriptError { problems })
        }
    }
}

const COMMANDS: &str = "say, play, key, silence, wait-prompt, expect, expect-transfer or hangup";

fn parse_command(text: &str) -> Result<Command, String> {
    let (word, arg) = match text.split_once(char::is_whitespace) {
        Some((word, arg)) => (word, arg.trim()),
        None => (text, ""),
    };
    let needs = |what: &str| -> Result<(), String> {
        if arg.is_empty() {
            Err(format!("`{word}` needs {what}"))
        } else {
            Ok(())
        }
    };
    let takes_nothing = || -> Result<(), String> {
        if arg.is_empty() {
            Ok(())
        } else {
            Err(format!("`{word}` takes no argument (found `{arg}`)"))
        }
    };
    match word {
        "say" => {
            needs("the words to say")?;
            Ok(Command::Say(arg.to_owned()))
        }
        "play" => {
            needs("a WAV file")?;
            Ok(Command::Play(PathBuf::from(arg)))
        }
        "key" => {
            needs("the keys to press (0-9, *, #)")?;
            let keys: String = arg.chars().filter(|c| !c.is_whitespace()).collect();
            if let Some(bad) = keys.chars().find(|c| !is_key(*c)) {
                return Err(format!(
                    "`{bad}` is not a keypad key (expected 0-9, * or #)"
                ));
            }
            Ok(Command::Key(keys))
        }
        "silence" => {
            needs("a number of seconds")?;
            let seconds: f64 = arg
                .parse()
                .map_err(|_| format!("`{arg}` is not a number of seconds"))?;
            if !seconds.is_finite() || seconds <= 0.0 || seconds > MAX_SILENCE.as_secs_f64() {
                return Err(format!(
                    "silence of {arg} s: expected more than 0 and at most {} seconds",
                    MAX_SILENCE.as_secs()
                ));
            }
            Ok(Command::Silence(Duration::from_secs_f64(seconds)))
        }
        "wait-prompt" => {
            takes_nothing()?;
            Ok(Command::WaitPrompt)
        }
        "expect" => {
            needs("a regular expression")?;
            Ok(Command::Expect(regex(arg)?))
        }
        "expect-transfer" => Ok(Command::ExpectTransfer(if arg.is_empty() {
            None
        } else {
            Some(regex(arg)?)
        })),
        "hangup" => {
            takes_nothing()?;
            Ok(Command::Hangup)
        }
        other => Err(format!("unknown command `{other}` (expected {COMMANDS})")),
    }
}

fn is_key(c: char) -> bool {
    c.is_ascii_digit() || c == '*' || c == '#'
}

fn regex(pattern: &str) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(true)
        .build()
        .map_err(|e| {
            // The regex crate explains syntax errors over several lines with a caret diagram;
            // the last line is the reason.
            let text = e.to_string();
            let reason = text.lines().last().unwrap_or("").trim().to_owned();
            format!("`{pattern}` is not a valid regular expression: {reason}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Script {
        match Script::parse(src, "t.call") {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    fn problems(src: &str) -> Vec<String> {
        match Script::parse(src, "t.call") {
            Ok(s) => panic!("parsed: {s:?}"),
            Err(e) => e.problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn every_command_parses_with_its_line() {
        let s = parse(
            "# comment\n\nsay I want to file a complaint\nplay a b.wav\nkey 1 2#*\nsilence 1.5\n\
             wait-prompt\nexpect thank you|welcome\nexpect-transfer\nexpect-transfer ^sip:\n\
             hangup\n",
        );
        let lines: Vec<usize> = s.steps.iter().map(|s| s.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9, 10, 11]);
        let c = |i: usize| &s.steps[i].command;
        assert!(matches!(c(0), Command::Say(t) if t == "I want to file a complaint"));
        assert!(matches!(c(1), Command::Play(p) if p == Path::new("a b.wav")));
        assert!(matches!(c(2), Command::Key(k) if k == "12#*"));
        assert!(matches!(c(3), Command::Silence(d) if *d == Duration::from_millis(1500)));
        assert!(matches!(c(4), Command::WaitPrompt));
        assert!(matches!(c(5), Command::Expect(re) if re.is_match("THANK YOU for calling")));
        assert!(matches!(c(6), Command::ExpectTransfer(None)));
        assert!(
            matches!(c(7), Command::ExpectTransfer(Some(re)) if re.is_match("SIP:ops@x") && !re.is_match("tel:1"))
        );
        assert!(matches!(c(8), Command::Hangup));
    }

    #[test]
    fn commands_print_as_written() {
        let s = parse("say hello there\nkey 12\nsilence 0.5\nexpect a.b\nexpect-transfer");
        let printed: Vec<String> = s.steps.iter().map(|s| s.command.to_string()).collect();
        assert_eq!(
            printed,
            [
                "say hello there",
                "key 12",
                "silence 0.5",
                "expect a.b",
                "expect-transfer"
            ]
        );
    }

    #[test]
    fn a_hash_inside_a_line_is_not_a_comment() {
        let s = parse("key #\nsay press # to go back");
        assert!(matches!(&s.steps[0].command, Command::Key(k) if k == "#"));
        assert!(matches!(&s.steps[1].command, Command::Say(t) if t == "press # to go back"));
    }

    #[test]
    fn every_problem_is_reported_with_file_and_line() {
        let p = problems(
            "say\nplay\nkey 12a\nkey\nsilence\nsilence soon\nsilence 0\nsilence -1\nsilence 601\n\
             silence NaN\nwait-prompt now\nexpect\nexpect (unclosed\nexpect-transfer [z-a]\n\
             dance\nhangup please\n",
        );
        assert_eq!(
            p,
            [
                "t.call:1: `say` needs the words to say",
                "t.call:2: `play` needs a WAV file",
                "t.call:3: `a` is not a keypad key (expected 0-9, * or #)",
                "t.call:4: `key` needs the keys to press (0-9, *, #)",
                "t.call:5: `silence` needs a number of seconds",
                "t.call:6: `soon` is not a number of seconds",
                "t.call:7: silence of 0 s: expected more than 0 and at most 600 seconds",
                "t.call:8: silence of -1 s: expected more than 0 and at most 600 seconds",
                "t.call:9: silence of 601 s: expected more than 0 and at most 600 seconds",
                "t.call:10: silence of NaN s: expected more than 0 and at most 600 seconds",
                "t.call:11: `wait-prompt` takes no argument (found `now`)",
                "t.call:12: `expect` needs a regular expression",
                "t.call:13: `(unclosed` is not a valid regular expression: error: unclosed group",
                "t.call:14: `[z-a]` is not a valid regular expression: error: invalid character class range, the start must be <= the end",
                "t.call:15: unknown command `dance` (expected say, play, key, silence, wait-prompt, expect, expect-transfer or hangup)",
                "t.call:16: `hangup` takes no argument (found `please`)",
            ]
        );
    }

    #[test]
    fn nothing_may_follow_hangup() {
        assert_eq!(
            problems("hangup\n\n# fine\nsay too late\n"),
            ["t.call:4: nothing can follow `hangup` (line 1): the call is over"]
        );
    }

    #[test]
    fn a_script_without_commands_is_refused() {
        assert_eq!(
            problems("# only a comment\n\n"),
            ["t.call:0: the script has no commands"]
        );
    }

    #[test]
    fn load_resolves_play_paths_against_the_script_directory() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("call.txt");
        std::fs::write(&path, "play hello.wav\nplay /abs/x.wav\n").expect("write script");
        let s = Script::load(&path).expect("script loads");
        assert!(
            matches!(&s.steps[0].command, Command::Play(p) if *p == dir.path().join("hello.wav"))
        );
        assert!(matches!(&s.steps[1].command, Command::Play(p) if p == Path::new("/abs/x.wav")));
        assert_eq!(s.origin, path.display().to_string());
    }

    #[test]
    fn load_names_a_missing_file() {
        let e = Script::load(Path::new("/nonexistent/call.txt")).expect_err("missing file");
        assert!(
            e.to_string()
                .starts_with("/nonexistent/call.txt:0: cannot read the script:"),
            "{e}"
        );
    }
}
